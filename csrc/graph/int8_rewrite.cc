#include "graph/int8_rewrite.h"

#include <algorithm>
#include <cmath>
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
  // The float op's attrs the quantized op keeps (the rest, such as T and
  // num_args, it spells its own way).
  std::vector<const char*> kept_attrs;
  bool transposable_weights;  // MatMul's transpose_b moves the channel axis
};

const std::vector<Rewrite>& Rewrites() {
  static const std::vector<Rewrite> rewrites = [] {
    const std::vector<const char*> matmul = {"transpose_b", "fused_ops", "leakyrelu_alpha"};
    const std::vector<const char*> conv = {"strides",   "padding",   "explicit_paddings",
                                           "dilations", "fused_ops", "epsilon",
                                           "leakyrelu_alpha"};
    return std::vector<Rewrite>{{"MatMul", kernels::kQuantizedMatMul, matmul, true},
                                {kernels::kFusedMatMul, kernels::kQuantizedMatMul, matmul, true},
                                {"Conv2D", kernels::kQuantizedConv2D, conv, false},
                                {kernels::kFusedConv2D, kernels::kQuantizedConv2D, conv, false}};
  }();
  return rewrites;
}

const Rewrite* RewriteFor(const NodeDef& node) {
  if (!OnQcpu(node)) return nullptr;
  const auto t = node.attr().find("T");
  if (t == node.attr().end() || t->second.type() != tensorflow::DT_FLOAT) return nullptr;
  const auto transpose_a = node.attr().find("transpose_a");
  if (transpose_a != node.attr().end() && transpose_a->second.b()) return nullptr;
  const auto format = node.attr().find("data_format");
  if (format != node.attr().end() && format->second.s() != "NHWC") return nullptr;
  for (const Rewrite& r : Rewrites())
    if (node.op() == r.float_op) return &r;
  return nullptr;
}

// The u8 scale and zero point of FakeQuantWithMinMaxArgs with 8 bits over
// [min, max], nudged as TF nudges them so that 0.0 is exact. False for a
// node that is not one, or whose range is empty.
bool FakeQuantParameters(const NodeDef& node, float& scale, int& zero_point) {
  if (node.op() != "FakeQuantWithMinMaxArgs") return false;
  const auto attr = [&](const char* name) {
    const auto it = node.attr().find(name);
    return it == node.attr().end() ? AttrValue() : it->second;
  };
  if (attr("num_bits").i() != 8 || attr("narrow_range").b()) return false;
  const float min = attr("min").f(), max = attr("max").f();
  scale = (max - min) / 255.f;
  if (!(scale > 0) || !std::isfinite(scale)) return false;
  zero_point = static_cast<int>(std::clamp(std::round(-min / scale), 0.f, 255.f));
  return true;
}

NodeDef& AddNode(tensorflow::GraphDef& graph, const NodeDef& user, const std::string& suffix,
                 const char* op, const std::string& input) {
  NodeDef& node = *graph.add_node();
  node.set_name(user.name() + "/int8flow_" + suffix);
  node.set_op(op);
  node.set_device(user.device());
  node.add_input(input);
  return node;
}

}  // namespace

std::map<std::string, int> QuantizeForInt8(tensorflow::GraphDef& graph, bool dynamic,
                                           const std::set<std::string>& preserve) {
  std::map<std::string, int> counts;
  std::set<std::string> bypassed;  // FakeQuants whose consumer now reads their input
  std::unordered_map<std::string, int> index;
  for (int i = 0; i < graph.node_size(); ++i) index[graph.node(i).name()] = i;
  const int original_nodes = graph.node_size();  // the loop adds nodes
  for (int i = 0; i < original_nodes; ++i) {
    const Rewrite* rewrite = RewriteFor(graph.node(i));
    if (rewrite == nullptr) continue;
    const NodeDef original = graph.node(i);
    std::vector<std::string> data_inputs, control_inputs;
    for (const std::string& input : original.input())
      (input[0] == '^' ? control_inputs : data_inputs).push_back(input);
    if (data_inputs.size() < 2) continue;
    // Activations through a FakeQuant: quantized with its range, whatever
    // the dynamic setting, as the graph's author asked.
    const TensorRef source = ParseTensorRef(data_inputs[0]);
    const auto producer = index.find(source.node);
    float scale = 1.f;
    int zero_point = 0;
    const bool fixed_range = source.port == 0 && producer != index.end() &&
                             FakeQuantParameters(graph.node(producer->second), scale, zero_point) &&
                             graph.node(producer->second).input_size() > 0;
    if (!fixed_range && !dynamic) continue;
    const std::string x = fixed_range ? graph.node(producer->second).input(0) : data_inputs[0];
    if (fixed_range) bypassed.insert(source.node);

    NodeDef& activations = AddNode(graph, original, "quantize_input", kernels::kQuantize, x);
    (*activations.mutable_attr())["T"].set_type(tensorflow::DT_UINT8);
    (*activations.mutable_attr())["mode"].set_s(fixed_range ? "static" : "dynamic");
    (*activations.mutable_attr())["static_scale"].set_f(scale);
    (*activations.mutable_attr())["static_zero_point"].set_i(zero_point);
    NodeDef& weights = AddNode(graph, original, "quantize_weights", kernels::kQuantizeWeights, data_inputs[1]);
    const auto transpose_b = original.attr().find("transpose_b");
    const bool transposed = rewrite->transposable_weights && transpose_b != original.attr().end() &&
                            transpose_b->second.b();
    (*weights.mutable_attr())["channel_axis"].set_i(transposed ? 0 : -1);

    NodeDef& node = *graph.mutable_node(i);  // add_node may have moved it
    node.set_op(rewrite->quantized_op);
    node.clear_input();
    for (const std::string& input : {activations.name(), weights.name(), activations.name() + ":1",
                                     activations.name() + ":2", weights.name() + ":1"})
      node.add_input(input);
    for (size_t a = 2; a < data_inputs.size(); ++a) node.add_input(data_inputs[a]);
    for (const std::string& input : control_inputs) node.add_input(input);
    auto& attrs = *node.mutable_attr();
    attrs.clear();
    for (const char* name : rewrite->kept_attrs) {
      const auto kept = original.attr().find(name);
      if (kept != original.attr().end()) attrs[name] = kept->second;
    }
    attrs["Tin"].set_type(tensorflow::DT_UINT8);
    attrs["Tout"].set_type(tensorflow::DT_FLOAT);
    attrs["out_scale"].set_f(1.f);
    attrs["out_zero_point"].set_i(0);
    attrs["addend_scale"].set_f(1.f);
    attrs["addend_zero_point"].set_i(0);
    AttrValue::ListValue& arg_types = *attrs["Targs"].mutable_list();
    for (size_t a = 2; a < data_inputs.size(); ++a) arg_types.add_type(tensorflow::DT_FLOAT);
    ++counts[std::string(fixed_range ? "INT8 static " : "INT8 dynamic ") + rewrite->float_op];
  }
  // A FakeQuant left with no reader would still run (on CPU: it has no QCPU
  // kernel), and cost two copies per call.
  const std::set<std::string> consumed = ConsumedNodes(graph);
  std::set<std::string> dead;
  for (const std::string& name : bypassed)
    if (!consumed.count(name) && !preserve.count(name)) dead.insert(name);
  RemoveNodes(graph, dead);
  return counts;
}

}  // namespace int8flow::graph
