#include "graph/int8_rewrite.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <vector>

#include "graph/graph_util.h"
#include "kernels/op_definitions.h"

namespace int8flow::graph {
namespace {

using tensorflow::AttrValue;
using tensorflow::NodeDef;

struct Rewrite {
  const char* float_op;      // as the fusion pass leaves it
  const char* quantized_op;  // what it becomes
  // The float op's attrs the quantized op keeps, as {float name, quantized
  // name} (the rest, such as T and num_args, it spells its own way).
  std::vector<std::pair<const char*, const char*>> kept_attrs;
  bool transposable_weights;  // a "transpose_b" moves the channel axis
  // Only with a stored 2-D int8 matrix (AddStoredInt8Weights): a batch by
  // one matrix, which the fusion pass leaves unfused when it has no bias.
  bool stored_matrix_only = false;
};

const std::vector<Rewrite>& Rewrites() {
  static const std::vector<Rewrite> rewrites = [] {
    using Kept = std::vector<std::pair<const char*, const char*>>;
    const Kept matmul = {{"transpose_b", "transpose_b"}, {"fused_ops", "fused_ops"},
                         {"leakyrelu_alpha", "leakyrelu_alpha"}};
    Kept conv = {{"fused_ops", "fused_ops"}, {"leakyrelu_alpha", "leakyrelu_alpha"}};
    for (const char* name : {"strides", "padding", "explicit_paddings", "dilations", "epsilon"})
      conv.emplace_back(name, name);
    return std::vector<Rewrite>{{"MatMul", kernels::kQuantizedMatMul, matmul, true},
                                {kernels::kFusedMatMul, kernels::kQuantizedMatMul, matmul, true},
                                {"BatchMatMulV2", kernels::kQuantizedMatMul, {{"adj_y", "transpose_b"}}, true, true},
                                {"Conv2D", kernels::kQuantizedConv2D, conv, false},
                                {kernels::kFusedConv2D, kernels::kQuantizedConv2D, conv, false}};
  }();
  return rewrites;
}

const Rewrite* RewriteFor(const NodeDef& node) {
  if (!OnQcpu(node)) return nullptr;
  const auto t = node.attr().find("T");
  if (t == node.attr().end() || t->second.type() != tensorflow::DT_FLOAT) return nullptr;
  for (const char* transposed_a : {"transpose_a", "adj_x"}) {
    const auto it = node.attr().find(transposed_a);
    if (it != node.attr().end() && it->second.b()) return nullptr;
  }
  const auto format = node.attr().find("data_format");
  if (format != node.attr().end() && format->second.s() != "NHWC") return nullptr;
  for (const Rewrite& r : Rewrites())
    if (node.op() == r.float_op) return &r;
  return nullptr;
}

NodeDef& AddNode(tensorflow::GraphDef& graph, const NodeDef& user, const std::string& suffix,
                 const char* op, const std::string& input) {
  NodeDef& node = *graph.add_node();
  node.set_name(user.name() + "/int8flow_" + suffix);
  node.set_op(op);
  node.set_device(user.device());
  if (!input.empty()) node.add_input(input);
  return node;
}

// The graph's nodes by name, and the node making a tensor ("name:port").
class NodeIndex {
 public:
  explicit NodeIndex(const tensorflow::GraphDef& graph) : graph_(graph) {
    for (int i = 0; i < graph.node_size(); ++i) index_[graph.node(i).name()] = i;
  }
  // The producer of `tensor` when it is output 0 of a node with op `op`.
  const NodeDef* Producer(const std::string& tensor, const char* op) const {
    const TensorRef ref = ParseTensorRef(tensor);
    const auto it = index_.find(ref.node);
    if (ref.port != 0 || it == index_.end() || graph_.node(it->second).op() != op) return nullptr;
    return &graph_.node(it->second);
  }

 private:
  const tensorflow::GraphDef& graph_;
  std::unordered_map<std::string, int> index_;
};

// A float Const's values, `count` of them (a single stored value repeats);
// empty when it holds another number of them.
std::vector<float> FloatValues(const NodeDef& constant, size_t count) {
  std::vector<float> values = ConstFloatValues(constant);
  if (values.size() == 1) values.resize(count, values[0]);
  if (values.size() != count) values.clear();
  return values;
}

AttrValue AttrOf(const NodeDef& node, const char* name) {
  const auto it = node.attr().find(name);
  return it == node.attr().end() ? AttrValue() : it->second;
}

// Activations quantized with a range the graph fixes: the QDQ node (its
// input 0 is the float tensor), and the int8 type and parameters of that range.
struct FixedRange {
  const NodeDef* qdq = nullptr;
  tensorflow::DataType type = tensorflow::DT_UINT8;
  float scale = 1.f;
  int zero_point = 0;
};

// An 8-bit QDQ node making `tensor`, read as our Quantize's parameters:
// - FakeQuantWithMinMaxArgs (int8flow.quantize, TF's QAT): u8 over
//   [min, max], its zero point nudged as TF nudges it so that 0.0 is exact;
// - QuantizeAndDequantizeV4 with a given constant range, per tensor
//   (tf.quantization.quantize_and_dequantize_v2): s8 (signed_input) or u8,
//   zero point 0, with the scale TF derives from whichever end binds.
// Not found: `range.qdq` stays null.
FixedRange FixedRangeOf(const NodeIndex& nodes, const std::string& tensor) {
  FixedRange range;
  if (const NodeDef* fq = nodes.Producer(tensor, "FakeQuantWithMinMaxArgs")) {
    if (fq->input_size() < 1 || AttrOf(*fq, "num_bits").i() != 8 || AttrOf(*fq, "narrow_range").b()) return range;
    const float min = AttrOf(*fq, "min").f(), max = AttrOf(*fq, "max").f();
    range.scale = (max - min) / 255.f;
    if (!(range.scale > 0) || !std::isfinite(range.scale)) return range;
    range.zero_point = static_cast<int>(std::clamp(std::round(-min / range.scale), 0.f, 255.f));
    range.qdq = fq;
  } else if (const NodeDef* qdq = nodes.Producer(tensor, "QuantizeAndDequantizeV4")) {
    const NodeDef* min_node = qdq->input_size() == 3 ? nodes.Producer(qdq->input(1), "Const") : nullptr;
    const NodeDef* max_node = qdq->input_size() == 3 ? nodes.Producer(qdq->input(2), "Const") : nullptr;
    if (!min_node || !max_node || !AttrOf(*qdq, "range_given").b() || AttrOf(*qdq, "num_bits").i() != 8 ||
        AttrOf(*qdq, "narrow_range").b() || AttrOf(*qdq, "axis").i() != -1 ||
        AttrOf(*qdq, "round_mode").s() != "HALF_TO_EVEN")
      return range;
    const std::vector<float> lo = FloatValues(*min_node, 1), hi = FloatValues(*max_node, 1);
    if (lo.empty() || hi.empty()) return range;
    const bool is_signed = AttrOf(*qdq, "signed_input").b();
    const float q_min = is_signed ? -128.f : 0.f, q_max = is_signed ? 127.f : 255.f;
    // TF: the smaller of the two ends' factors (an end that cannot bind gives none).
    const float big = std::numeric_limits<float>::max();
    const float from_min = q_min * lo[0] > 0 ? q_min / lo[0] : big;
    const float from_max = q_max * hi[0] > 0 ? q_max / hi[0] : big;
    const float factor = std::min(from_min, from_max);
    if (!(factor < big) || !(factor > 0)) return range;
    range.type = is_signed ? tensorflow::DT_INT8 : tensorflow::DT_UINT8;
    range.scale = 1.f / factor;
    range.qdq = qdq;
  }
  return range;
}

// Weights as a QDQ graph stores them, int8 Const -> Dequantize (SCALED, per
// tensor or along `channel_axis`), handed to the quantized op as they are: an
// s8 Const and a Const of scales, added on `user`'s device. TF may not fold
// that Dequantize (it skips large constants), and then it would run on CPU
// and copy float weights over every call. False when `dequantize` is not
// that form; the caller then quantizes the float weights itself.
bool AddStoredInt8Weights(tensorflow::GraphDef& graph, const NodeIndex& nodes, const NodeDef& dequantize,
                          int64_t channel_axis, bool matrix_only, const NodeDef& user, std::string& weights,
                          std::string& scales) {
  const auto attr = [&](const char* name) { return AttrOf(dequantize, name); };
  if (dequantize.input_size() < 3 || attr("T").type() != tensorflow::DT_QINT8 || attr("mode").s() != "SCALED" ||
      (attr("dtype").type() != tensorflow::DT_FLOAT && attr("dtype").type() != tensorflow::DT_INVALID))
    return false;
  const NodeDef* q = nodes.Producer(dequantize.input(0), "Const");
  const NodeDef* min = nodes.Producer(dequantize.input(1), "Const");
  const NodeDef* max = nodes.Producer(dequantize.input(2), "Const");
  if (!q || !min || !max) return false;
  const tensorflow::TensorShapeProto& shape = q->attr().at("value").tensor().tensor_shape();
  const int64_t rank = shape.dim_size();
  if (matrix_only && rank != 2) return false;
  const int64_t axis = attr("axis").i() < 0 ? -1 : attr("axis").i();
  const int64_t wanted = channel_axis < 0 ? channel_axis + rank : channel_axis;
  if (axis != -1 && axis != wanted) return false;
  const size_t channels = axis == -1 ? 1 : static_cast<size_t>(shape.dim(axis).size());
  const std::vector<float> lows = FloatValues(*min, channels), highs = FloatValues(*max, channels);
  if (lows.empty() || highs.empty()) return false;
  // TF's SCALED rule: the scale that fits both ends.
  const float lowest = attr("narrow_range").b() ? -127.f : -128.f;
  tensorflow::TensorProto scale_values;
  scale_values.set_dtype(tensorflow::DT_FLOAT);
  scale_values.mutable_tensor_shape()->add_dim()->set_size(static_cast<int64_t>(channels));
  for (size_t c = 0; c < channels; ++c) scale_values.add_float_val(std::max(lows[c] / lowest, highs[c] / 127.f));

  NodeDef& s8 = AddNode(graph, user, "weights_s8", "Const", "");
  *s8.mutable_attr() = q->attr();  // the same bytes, as int8
  (*s8.mutable_attr())["dtype"].set_type(tensorflow::DT_INT8);
  (*s8.mutable_attr())["value"].mutable_tensor()->set_dtype(tensorflow::DT_INT8);
  weights = s8.name();
  NodeDef& scale = AddNode(graph, user, "weight_scales", "Const", "");
  (*scale.mutable_attr())["dtype"].set_type(tensorflow::DT_FLOAT);
  *(*scale.mutable_attr())["value"].mutable_tensor() = std::move(scale_values);
  scales = scale.name();
  return true;
}

// Removes `candidates` (and then the Consts only they read) that nothing reads.
void RemoveUnread(tensorflow::GraphDef& graph, std::set<std::string> candidates,
                  const std::set<std::string>& preserve) {
  while (!candidates.empty()) {
    const Readers readers = ReadersOf(graph);
    std::set<std::string> dead, next;
    for (const NodeDef& node : graph.node()) {
      if (!candidates.count(node.name()) || readers.count(node.name()) || preserve.count(node.name())) continue;
      dead.insert(node.name());
      for (const std::string& input : node.input()) next.insert(ParseTensorRef(input).node);
    }
    RemoveNodes(graph, dead);
    candidates.clear();
    for (const NodeDef& node : graph.node())
      if (next.count(node.name()) && node.op() == "Const") candidates.insert(node.name());
  }
}

}  // namespace

std::map<std::string, int> QuantizeForInt8(tensorflow::GraphDef& graph, bool dynamic,
                                           const std::set<std::string>& preserve) {
  std::map<std::string, int> counts;
  std::set<std::string> bypassed;  // FakeQuants and Dequantizes read past
  const NodeIndex nodes(graph);  // of the original nodes, which keep their places
  const int original_nodes = graph.node_size();  // the loop adds nodes
  for (int i = 0; i < original_nodes; ++i) {
    const Rewrite* rewrite = RewriteFor(graph.node(i));
    if (rewrite == nullptr) continue;
    const NodeDef original = graph.node(i);
    std::vector<std::string> data_inputs, control_inputs;
    for (const std::string& input : original.input())
      (input[0] == '^' ? control_inputs : data_inputs).push_back(input);
    if (data_inputs.size() < 2) continue;
    // Activations through a QDQ node: quantized with its range, whatever
    // the dynamic setting, as the graph's author asked.
    const FixedRange range = FixedRangeOf(nodes, data_inputs[0]);
    const bool fixed_range = range.qdq != nullptr;
    if (!fixed_range && !dynamic) continue;
    const std::string x = fixed_range ? range.qdq->input(0) : data_inputs[0];

    // The weights first: a rewrite that needs stored ones may not happen.
    bool transposed = false;
    for (const auto& [from, to] : rewrite->kept_attrs) {
      const auto it = original.attr().find(from);
      transposed |= rewrite->transposable_weights && std::string(to) == "transpose_b" &&
                    it != original.attr().end() && it->second.b();
    }
    const int64_t channel_axis = transposed ? 0 : -1;
    std::string weights, weight_scales;
    const NodeDef* dequantize = nodes.Producer(data_inputs[1], "Dequantize");
    if (dequantize && AddStoredInt8Weights(graph, nodes, *dequantize, channel_axis, rewrite->stored_matrix_only,
                                           original, weights, weight_scales)) {
      bypassed.insert(dequantize->name());
    } else if (rewrite->stored_matrix_only) {
      continue;
    } else {
      NodeDef& quantized = AddNode(graph, original, "quantize_weights", kernels::kQuantizeWeights, data_inputs[1]);
      (*quantized.mutable_attr())["channel_axis"].set_i(channel_axis);
      weights = quantized.name();
      weight_scales = quantized.name() + ":1";
    }
    if (fixed_range) bypassed.insert(range.qdq->name());
    NodeDef& activations = AddNode(graph, original, "quantize_input", kernels::kQuantize, x);
    (*activations.mutable_attr())["T"].set_type(range.type);
    (*activations.mutable_attr())["mode"].set_s(fixed_range ? "static" : "dynamic");
    (*activations.mutable_attr())["static_scale"].set_f(range.scale);
    (*activations.mutable_attr())["static_zero_point"].set_i(range.zero_point);

    NodeDef& node = *graph.mutable_node(i);  // add_node may have moved it
    node.set_op(rewrite->quantized_op);
    node.clear_input();
    for (const std::string& input : {activations.name(), weights, activations.name() + ":1",
                                     activations.name() + ":2", weight_scales})
      node.add_input(input);
    for (size_t a = 2; a < data_inputs.size(); ++a) node.add_input(data_inputs[a]);
    for (const std::string& input : control_inputs) node.add_input(input);
    auto& attrs = *node.mutable_attr();
    attrs.clear();
    for (const auto& [from, to] : rewrite->kept_attrs) {
      const auto kept = original.attr().find(from);
      if (kept != original.attr().end()) attrs[to] = kept->second;
    }
    attrs["Tin"].set_type(range.type);
    attrs["Tout"].set_type(tensorflow::DT_FLOAT);
    attrs["out_scale"].set_f(1.f);
    attrs["out_zero_point"].set_i(0);
    attrs["addend_scale"].set_f(1.f);
    attrs["addend_zero_point"].set_i(0);
    AttrValue::ListValue& arg_types = *attrs["Targs"].mutable_list();
    for (size_t a = 2; a < data_inputs.size(); ++a) arg_types.add_type(tensorflow::DT_FLOAT);
    ++counts[std::string(fixed_range ? "INT8 static " : "INT8 dynamic ") + rewrite->float_op];
  }
  // A QDQ node or Dequantize left with no reader would still run (on CPU:
  // none has a QCPU kernel), and cost copies every call.
  RemoveUnread(graph, bypassed, preserve);
  return counts;
}

}  // namespace int8flow::graph
