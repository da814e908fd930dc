#include "graph/pattern_matcher.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graph/fusion_patterns.h"
#include "graph/graph_util.h"
#include "ops/op_names.h"
#include "tensorflow/core/framework/op.h"

namespace int8flow::graph {
namespace {

using tensorflow::NodeDef;

// Ops whose inputs may match in any order.
bool IsCommutative(const std::string& op) {
  return op == "AddV2" || op == "Add" || op == "AddN" || op == "Mul" || op == "Maximum" ||
         op == "Minimum" || op == "SquaredDifference";
}

// True when `node` is a float Const whose every element equals `value`.
bool IsConstEqualTo(const NodeDef& node, double value) {
  const std::vector<float> values = ConstFloatValues(node);
  if (values.empty()) return false;
  for (float v : values)
    if (std::fabs(v - value) > 1e-6 * std::fabs(value)) return false;
  return true;
}

// Bool attr `name` of `node`: its value, or its op's default when unset;
// nullopt when the op has no such attr (MatMul has no adj_x).
std::optional<bool> BoolAttr(const NodeDef& node, const std::string& name) {
  const auto value = node.attr().find(name);
  if (value != node.attr().end()) return value->second.b();
  const tensorflow::OpDef* op_def = nullptr;
  if (!tensorflow::OpRegistry::Global()->LookUpOpDef(node.op(), &op_def).ok()) return std::nullopt;
  for (const auto& attr : op_def->attr())
    if (attr.name() == name && attr.has_default_value()) return attr.default_value().b();
  return std::nullopt;
}

bool TakesFusedOps(const std::string& op) {
  const tensorflow::OpDef* op_def = nullptr;
  if (!tensorflow::OpRegistry::Global()->LookUpOpDef(op, &op_def).ok()) return false;
  for (const auto& attr : op_def->attr())
    if (attr.name() == "num_args") return true;
  return false;
}

std::vector<std::string> DataInputs(const NodeDef& node) {
  std::vector<std::string> inputs;
  for (const auto& input : node.input())
    if (input.empty() || input[0] != '^') inputs.push_back(input);
  return inputs;
}

class Matcher {
 public:
  Matcher(tensorflow::GraphDef& graph, const GraphShapes& shapes,
          const std::set<std::string>& preserve)
      : graph_(graph), shapes_(shapes), preserve_(preserve) {}

  int Apply(const FusionPattern& pattern) {
    pattern_ = &pattern;
    Index();
    labels_.clear();
    label_reads_.clear();
    for (size_t i = 0; i < pattern.nodes.size(); ++i) {
      labels_[pattern.nodes[i].label] = i;
      for (const std::string& input : pattern.nodes[i].inputs)
        ++label_reads_[ParseTensorRef(input).node];
    }
    std::unordered_set<const NodeDef*> consumed;
    std::set<std::string> removed;
    std::vector<NodeDef> added;  // appended after the scan, which holds pointers
    std::unordered_map<std::string, std::string> extra_readers;  // removed node -> its new tensor
    int rewrites = 0;
    for (NodeDef& root : *graph_.mutable_node()) {
      if (consumed.count(&root)) continue;
      Binding binding;
      if (!MatchNode(pattern.nodes.size() - 1, root, binding) || !Fusable(binding, consumed))
        continue;
      for (const auto& [label, node] : binding.nodes) {
        consumed.insert(node);
        if (node != &root) removed.insert(node->name());
      }
      for (size_t i = 0; i < pattern.extra_outputs.size(); ++i)
        extra_readers[binding.nodes.at(pattern.extra_outputs[i])->name()] =
            FusedName(root) + ":" + std::to_string(i + 1);
      Rewrite(root, binding, added);
      ++rewrites;
    }
    for (NodeDef& node : added) *graph_.add_node() = std::move(node);
    RemoveNodes(graph_, removed);
    ReadFromReplacements(extra_readers);
    return rewrites;
  }

 private:
  struct Binding {
    std::unordered_map<std::string, const NodeDef*> nodes;  // label -> node
    std::unordered_map<std::string, std::string> captures;  // $name -> tensor
  };

  std::string FusedName(const NodeDef& root) const {
    return pattern_->reshape_after.empty() ? root.name() : root.name() + "/_QcpuFused";
  }

  // Points the readers of each removed node in `extra_readers` (output 0,
  // or a control edge) at the replacement's output that stands for it.
  void ReadFromReplacements(
      const std::unordered_map<std::string, std::string>& extra_readers) const {
    if (extra_readers.empty()) return;
    for (NodeDef& node : *graph_.mutable_node())
      for (std::string& input : *node.mutable_input()) {
        const TensorRef ref = ParseTensorRef(input);
        const auto it = extra_readers.find(ref.node);
        if (it == extra_readers.end()) continue;
        input = ref.port < 0 ? "^" + ParseTensorRef(it->second).node : it->second;
      }
  }

  bool IsExtraOutput(const std::string& label) const {
    const auto& extra = pattern_->extra_outputs;
    return std::find(extra.begin(), extra.end(), label) != extra.end();
  }

  void Index() {
    nodes_.clear();
    for (const NodeDef& node : graph_.node()) nodes_[node.name()] = &node;
    consumers_ = ReadersOf(graph_);
  }

  bool MatchNode(size_t index, const NodeDef& node, Binding& binding) const {
    const PatternNode& p = pattern_->nodes[index];
    bool op_ok = false;
    for (const auto& op : p.ops) op_ok |= node.op() == op;
    // The replacement runs where the root is placed: that must be QCPU.
    const bool is_root = index + 1 == pattern_->nodes.size();
    if (!op_ok || !(is_root ? OnQcpu(node) : OnHost(node))) return false;
    const auto t = node.attr().find("T");
    if (t != node.attr().end() && t->second.type() != tensorflow::DT_FLOAT) return false;
    for (const auto& [attr, wanted] : p.bool_attrs) {
      const auto value = BoolAttr(node, attr);
      if (value && *value != wanted) return false;
    }
    for (const auto& [attr, wanted] : p.string_attrs) {
      const auto value = node.attr().find(attr);
      if (value != node.attr().end() && value->second.s() != wanted) return false;
    }
    for (const auto& [attr, wanted] : p.int_attrs) {
      const auto value = node.attr().find(attr);
      if (value == node.attr().end() || value->second.i() != wanted) return false;
    }
    for (const auto& [label, bound] : binding.nodes)
      if (bound == &node) return false;  // one graph node, one label
    const std::vector<std::string> inputs = DataInputs(node);
    if (inputs.size() != p.inputs.size()) return false;
    // Every order of a commutative op's inputs (AddN has up to 4 here).
    std::vector<size_t> order(inputs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::vector<std::vector<size_t>> orders = {order};
    if (IsCommutative(node.op()) && inputs.size() <= 4)
      while (std::next_permutation(order.begin(), order.end())) orders.push_back(order);
    for (const auto& order : orders) {
      Binding attempt = binding;
      attempt.nodes[p.label] = &node;
      bool ok = true;
      for (size_t i = 0; ok && i < inputs.size(); ++i)
        ok = MatchInput(p.inputs[i], inputs[order[i]], attempt);
      if (ok) {
        binding = std::move(attempt);
        return true;
      }
    }
    return false;
  }

  bool MatchInput(const std::string& spec, const std::string& tensor, Binding& binding) const {
    if (spec[0] == '$') {
      auto [it, inserted] = binding.captures.emplace(spec, tensor);
      if (!inserted) return it->second == tensor;
      // Check the capture's shape now when possible, so that a commutative
      // op whose inputs fit either way round gets its other order tried.
      for (const ShapeCheck& check : pattern_->checks)
        if (check.capture == spec && CanCheck(check, binding) && !Holds(check, binding))
          return false;
      return true;
    }
    const TensorRef ref = ParseTensorRef(tensor);
    const auto producer = nodes_.find(ref.node);
    if (producer == nodes_.end()) return false;
    if (spec[0] == '=')
      return ref.port == 0 && IsConstEqualTo(*producer->second, std::stod(spec.substr(1)));
    const TensorRef wanted = ParseTensorRef(spec);  // a label, maybe with an output
    if (ref.port != wanted.port) return false;
    const auto bound = binding.nodes.find(wanted.node);
    if (bound != binding.nodes.end()) return bound->second == producer->second;
    // A node inside a match may feed only the match (Fusable). Ruling out
    // one read more often here lets a commutative op's other order match:
    // MobileNetV2's Add(project_a, project_b), where project_a also feeds
    // the next block, fuses into project_b. An extra output is read beyond
    // the match by design.
    const auto readers = consumers_.find(ref.node);
    if (readers != consumers_.end() && !IsExtraOutput(wanted.node) &&
        readers->second.size() > label_reads_.at(wanted.node))
      return false;
    return MatchNode(labels_.at(wanted.node), *producer->second, binding);
  }

  // Whether a structural match may be rewritten without changing the graph's meaning.
  bool Fusable(const Binding& binding, const std::unordered_set<const NodeDef*>& consumed) const {
    if (binding.nodes.size() != pattern_->nodes.size()) return false;
    std::unordered_set<const NodeDef*> inside;
    for (const auto& [label, node] : binding.nodes) inside.insert(node);
    const NodeDef* root = binding.nodes.at(pattern_->nodes.back().label);
    // The replacement has one output: the root's others must go unused
    // (FusedBatchNorm's batch statistics, say).
    const auto root_users = consumers_.find(root->name());
    if (root_users != consumers_.end())
      for (const NodeDef* user : root_users->second)
        for (const auto& input : user->input())
          if (input[0] != '^' && ParseTensorRef(input).node == root->name() &&
              ParseTensorRef(input).port != 0)
            return false;
    for (const auto& [label, node] : binding.nodes) {
      if (consumed.count(node)) return false;
      if (node == root) continue;
      if (preserve_.count(node->name())) return false;
      for (const auto& input : node->input())
        if (input[0] == '^') return false;
      const auto users = consumers_.find(node->name());
      if (users == consumers_.end()) continue;
      for (const NodeDef* user : users->second) {
        if (inside.count(user)) continue;
        if (!IsExtraOutput(label)) return false;
        // An extra output's readers get the replacement's output instead:
        // its output 0, which is all ReadFromReplacements rewires.
        for (const auto& input : user->input())
          if (ParseTensorRef(input).node == node->name() && ParseTensorRef(input).port > 0)
            return false;
      }
    }
    for (const ShapeCheck& check : pattern_->checks)
      if (!Holds(check, binding)) return false;
    return true;
  }

  // The int values of a Const node's tensor; nullopt for anything else.
  static std::optional<std::vector<int64_t>> IntConst(const NodeDef& node) {
    if (node.op() != "Const") return std::nullopt;
    const auto it = node.attr().find("value");
    if (it == node.attr().end()) return std::nullopt;
    const tensorflow::TensorProto& t = it->second.tensor();
    std::vector<int64_t> values;
    if (t.dtype() == tensorflow::DT_INT32) {
      values.assign(t.int_val().begin(), t.int_val().end());
      if (values.empty() && !t.tensor_content().empty()) {
        std::vector<int32_t> raw(t.tensor_content().size() / sizeof(int32_t));
        std::memcpy(raw.data(), t.tensor_content().data(), raw.size() * sizeof(int32_t));
        values.assign(raw.begin(), raw.end());
      }
    } else if (t.dtype() == tensorflow::DT_INT64) {
      values.assign(t.int64_val().begin(), t.int64_val().end());
      if (values.empty() && !t.tensor_content().empty()) {
        values.resize(t.tensor_content().size() / sizeof(int64_t));
        std::memcpy(values.data(), t.tensor_content().data(), values.size() * sizeof(int64_t));
      }
    } else {
      return std::nullopt;
    }
    // TF stores a tensor of one repeated value as that value alone ([2, 2]
    // as int_val 2), or as nothing when it is all zeros.
    int64_t elements = 1;
    for (const auto& dim : t.tensor_shape().dim()) elements *= dim.size();
    if (values.size() <= 1 && static_cast<int64_t>(values.size()) < elements)
      values.assign(elements, values.empty() ? 0 : values[0]);
    return values;
  }

  // The int values of the Const producing `tensor`.
  std::optional<std::vector<int64_t>> ConstOf(const TensorRef& tensor) const {
    const auto producer = nodes_.find(tensor.node);
    if (producer == nodes_.end() || tensor.port != 0) return std::nullopt;
    return IntConst(*producer->second);
  }

  static bool CanCheck(const ShapeCheck& check, const Binding& binding) {
    return check.kind == ShapeCheck::kScalar || check.kind == ShapeCheck::kMatrix ||
           check.kind == ShapeCheck::kSpatialPaddings || check.kind == ShapeCheck::kNonNegative ||
           ((check.kind == ShapeCheck::kSameSpatialBlock ||
             check.kind == ShapeCheck::kCropsWithinPaddings) &&
            binding.captures.count(check.of) > 0) ||
           (binding.nodes.count(check.label) > 0 &&
            (check.of.empty() || binding.nodes.count(check.of) > 0));
  }

  // Output 0 of a Relu or Relu6, or of a fused op whose last step is one.
  bool IsNonNegative(const TensorRef& tensor) const {
    const auto producer = nodes_.find(tensor.node);
    if (producer == nodes_.end() || tensor.port != 0) return false;
    const NodeDef& node = *producer->second;
    std::string last = node.op();
    if (const auto fused = node.attr().find("fused_ops"); fused != node.attr().end()) {
      const auto& ops = fused->second.list().s();
      last = ops.empty() ? "" : ops[ops.size() - 1];
    }
    return last == "Relu" || last == "Relu6";
  }

  // A variable read (maybe reshaped). The variables of the function Keras
  // compiles for predict reach Grappler without their shapes, and so does
  // what is computed from them. Where a check meets such unknown dims on a
  // variable, it trusts the variable to fit: the kernels check every shape
  // when they run and fail with InvalidArgument, never a wrong result.
  bool IsVariableRead(const TensorRef& tensor) const {
    const auto producer = nodes_.find(tensor.node);
    if (producer == nodes_.end()) return false;
    const NodeDef& node = *producer->second;
    if (node.op() == "Reshape" || node.op() == "Squeeze" || node.op() == "Identity")
      return IsVariableRead(ParseTensorRef(node.input(0)));
    return node.op() == "ReadVariableOp";
  }

  static bool FullyKnown(const std::optional<std::vector<int64_t>>& shape) {
    if (!shape) return false;
    for (int64_t d : *shape)
      if (d < 0) return false;
    return true;
  }

  // Grappler's inferred shape, or a Const's own when inference has none.
  std::optional<std::vector<int64_t>> ShapeOf(const TensorRef& tensor) const {
    if (auto shape = shapes_.Output(tensor.node, tensor.port)) return shape;
    const auto producer = nodes_.find(tensor.node);
    if (producer == nodes_.end() || producer->second->op() != "Const") return std::nullopt;
    const auto value = producer->second->attr().find("value");
    if (value == producer->second->attr().end()) return std::nullopt;
    return DimsOf(value->second.tensor().tensor_shape());
  }

  bool Holds(const ShapeCheck& check, const Binding& binding) const {
    if (check.kind == ShapeCheck::kUnitStridesAndDilations) {
      const auto& attrs = binding.nodes.at(check.label)->attr();
      const auto all_one = [&](const char* name) {
        const auto found = attrs.find(name);
        if (found == attrs.end()) return name != std::string("strides");  // dilations default to 1
        const auto& values = found->second.list().i();
        return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 1; });
      };
      return all_one("strides") && all_one("dilations");
    }
    const TensorRef captured = ParseTensorRef(binding.captures.at(check.capture));
    if (check.kind == ShapeCheck::kNonNegative) return IsNonNegative(captured);
    if (check.kind == ShapeCheck::kSameSpatialBlock) {
      const auto block = ConstOf(captured),
                 again = ConstOf(ParseTensorRef(binding.captures.at(check.of)));
      return block && again && *block == *again && block->size() == 2 &&
             std::all_of(block->begin(), block->end(), [](int64_t v) { return v >= 1; });
    }
    if (check.kind == ShapeCheck::kCropsWithinPaddings) {
      const auto crops = ConstOf(captured),
                 pads = ConstOf(ParseTensorRef(binding.captures.at(check.of)));
      if (!crops || !pads || crops->size() != 4 || pads->size() != 4) return false;
      for (size_t i = 0; i < 4; ++i)
        if ((*crops)[i] < 0 || (*crops)[i] > (*pads)[i]) return false;
      return true;
    }
    if (check.kind == ShapeCheck::kPaddingsInsideWindow) {
      const auto paddings = ConstOf(captured);
      const auto window = binding.nodes.at(check.label)->attr().find("ksize");
      if (!paddings || paddings->size() != 8 ||
          window == binding.nodes.at(check.label)->attr().end() ||
          window->second.list().i_size() != 4)
        return false;
      for (int d = 0; d < 4; ++d)
        if ((*paddings)[2 * d] >= window->second.list().i(d) ||
            (*paddings)[2 * d + 1] >= window->second.list().i(d))
          return false;
      return true;
    }
    const auto shape = ShapeOf(captured);
    if (check.kind != ShapeCheck::kSameShape && check.kind != ShapeCheck::kLastAxis &&
        IsVariableRead(captured)) {
      // The dim a per-channel check compares against: the reference's last.
      const auto last_dim_known = [&](const std::string& label) {
        const auto s = ShapeOf({binding.nodes.at(label)->name(), 0});
        return s && !s->empty() && s->back() >= 0;
      };
      const bool per_channel =
          check.kind == ShapeCheck::kVectorOfLastDim || check.kind == ShapeCheck::kTrailingDims;
      const std::string& channel_label =
          check.kind == ShapeCheck::kTrailingDims ? check.of : check.label;
      if (!FullyKnown(shape) || (per_channel && !last_dim_known(channel_label))) return true;
    }
    if (check.kind == ShapeCheck::kScalar)
      return shape && (shape->empty() || (shape->size() == 1 && (*shape)[0] == 1));
    if (check.kind == ShapeCheck::kMatrix) return shape && shape->size() == 2;
    if (check.kind == ShapeCheck::kSpatialPaddings) {
      const auto paddings = ConstOf(captured);
      if (!paddings || paddings->size() != 8) return false;
      const auto& p = *paddings;
      return p[0] == 0 && p[1] == 0 && p[6] == 0 && p[7] == 0 &&
             std::all_of(p.begin(), p.end(), [](int64_t v) { return v >= 0; });
    }
    if (check.kind == ShapeCheck::kLastAxis) {
      // -1 names the last axis whatever the rank; a positive axis needs it.
      const auto axes = ConstOf(captured);
      if (!axes || axes->size() != 1) return false;
      if ((*axes)[0] == -1) return true;
      const auto rank = ShapeOf({binding.nodes.at(check.label)->name(), 0});
      return rank && (*axes)[0] == static_cast<int64_t>(rank->size()) - 1;
    }
    const auto reference = ShapeOf({binding.nodes.at(check.label)->name(), 0});
    if (!shape || !reference || reference->empty()) return false;
    switch (check.kind) {
      case ShapeCheck::kScalar:
      case ShapeCheck::kMatrix:
      case ShapeCheck::kLastAxis:
      case ShapeCheck::kSpatialPaddings:
      case ShapeCheck::kPaddingsInsideWindow:
      case ShapeCheck::kNonNegative:
      case ShapeCheck::kSameSpatialBlock:
      case ShapeCheck::kCropsWithinPaddings:
      case ShapeCheck::kUnitStridesAndDilations: return true;  // answered above
      case ShapeCheck::kTrailingDims: {
        const auto product = ShapeOf({binding.nodes.at(check.of)->name(), 0});
        if (!product || product->empty() || shape->empty() || shape->size() > reference->size())
          return false;
        int64_t elements = 1;
        for (size_t d = 0; d < shape->size(); ++d) {
          const int64_t dim = (*reference)[reference->size() - shape->size() + d];
          if (dim < 0 || dim != (*shape)[d]) return false;
          elements *= dim;
        }
        return elements == product->back();
      }
      case ShapeCheck::kVectorOfLastDim:
        if (shape->empty() || shape->size() > reference->size()) return false;
        for (size_t d = 0; d + 1 < shape->size(); ++d)
          if ((*shape)[d] != 1) return false;
        return shape->back() >= 0 && shape->back() == reference->back();
      case ShapeCheck::kSameShape:
        // Equal where known, or the same symbolic dim (Grappler numbers the
        // unknown dims it proves equal alike, below -1); a plain unknown
        // (-1) only as the batch dim, in both. The kernel checks the shapes
        // match when it runs.
        if (shape->size() != reference->size()) return false;
        for (size_t d = 0; d < shape->size(); ++d) {
          const int64_t a = (*shape)[d], b = (*reference)[d];
          if (a == b && a < -1) continue;
          if (a < 0 || b < 0 ? d != 0 || a != b : a != b) return false;
        }
        return true;
    }
    return false;
  }

  // "prefix@label" -> prefix + the op of the node matched as `label`.
  static std::string Expand(const std::string& spec, const Binding& binding) {
    const auto at = spec.find('@');
    if (at == std::string::npos) return spec;
    return spec.substr(0, at) + binding.nodes.at(spec.substr(at + 1))->op();
  }

  // The replacement takes the root's place; with `reshape_after`, it gets a
  // name of its own (in `added`) and the root becomes the Reshape (Squeeze)
  // of it.
  void Rewrite(NodeDef& root, const Binding& binding, std::vector<NodeDef>& added) const {
    NodeDef fused;
    fused.set_name(pattern_->reshape_after.empty() ? root.name() : root.name() + "/_QcpuFused");
    fused.set_op(Expand(pattern_->op, binding));
    fused.set_device(root.device());
    for (const auto& capture : pattern_->inputs) fused.add_input(binding.captures.at(capture));
    for (const auto& input : root.input())
      if (input[0] == '^') fused.add_input(input);
    auto& attrs = *fused.mutable_attr();
    attrs["T"].set_type(tensorflow::DT_FLOAT);
    // An op with the attrs gets them even with nothing fused (Pad+Conv): TF
    // rejects a node without a required attr, and with it the whole pass.
    if (TakesFusedOps(fused.op())) {
      auto* list = attrs["fused_ops"].mutable_list();
      int64_t num_args = 0;  // the inputs after the op's own (2, or Conv2DBackpropInput's 3)
      for (const auto& op : pattern_->fused_ops) {
        list->add_s(Expand(op, binding));
        num_args += ops::FusedOpArgs(list->s(list->s_size() - 1));
      }
      attrs["num_args"].set_i(num_args);
    }
    for (const AttrCopy& copy : pattern_->attrs) {
      const auto node = binding.nodes.find(copy.label);
      if (node == binding.nodes.end()) continue;
      const auto value = node->second->attr().find(copy.from);
      if (value != node->second->attr().end()) attrs[copy.to] = value->second;
    }
    for (const AttrFromConst& from : pattern_->const_attrs) {
      // Named: a range-for over *ConstOf(...) would outlive the optional.
      std::vector<int64_t> values = *ConstOf(ParseTensorRef(binding.captures.at(from.capture)));
      if (from.form == AttrFromConst::kSpatialDims) {
        values = {1, values.at(0), values.at(1), 1};
      } else if (from.form == AttrFromConst::kPaddingsLessCrops) {
        const std::vector<int64_t> crops =
            *ConstOf(ParseTensorRef(binding.captures.at(from.crops)));
        for (size_t i = 0; i < values.size(); ++i) values[i] -= crops.at(i);
        values.insert(values.begin(), {0, 0});
        values.insert(values.end(), {0, 0});
      }
      auto* list = attrs[from.to].mutable_list();
      list->clear_i();
      for (int64_t v : values) list->add_i(v);
    }
    for (const auto& [attr, value] : pattern_->string_attrs) attrs[attr].set_s(value);
    if (pattern_->reshape_after.empty()) {
      root = std::move(fused);
      return;
    }
    const NodeDef& matched = *binding.nodes.at(pattern_->reshape_after);
    NodeDef reshape;
    reshape.set_name(root.name());
    reshape.set_op(matched.op());
    reshape.set_device(root.device());
    reshape.add_input(fused.name());
    const std::vector<std::string> inputs = DataInputs(matched);
    for (size_t i = 1; i < inputs.size(); ++i) reshape.add_input(inputs[i]);  // a Reshape's shape
    for (const auto& input : root.input())
      if (input[0] == '^') reshape.add_input(input);
    *reshape.mutable_attr() = matched.attr();
    (*reshape.mutable_attr())["T"].set_type(tensorflow::DT_FLOAT);
    added.push_back(std::move(fused));
    root = std::move(reshape);
  }

  tensorflow::GraphDef& graph_;
  const GraphShapes& shapes_;
  const std::set<std::string>& preserve_;
  const FusionPattern* pattern_ = nullptr;
  std::unordered_map<std::string, size_t> labels_;
  std::unordered_map<std::string, size_t> label_reads_;  // label -> the pattern's reads of it
  std::unordered_map<std::string, const NodeDef*> nodes_;
  Readers consumers_;
};

}  // namespace

std::map<std::string, int> ApplyFusions(tensorflow::GraphDef& graph, const GraphShapes& shapes,
                                        const std::set<std::string>& preserve) {
  Matcher matcher(graph, shapes, preserve);
  std::map<std::string, int> applied;
  for (const FusionPattern& pattern : FusionPatterns())
    if (const int n = matcher.Apply(pattern)) applied[pattern.name] += n;
  return applied;
}

}  // namespace int8flow::graph
