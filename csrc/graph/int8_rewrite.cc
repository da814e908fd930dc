#include "graph/int8_rewrite.h"

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

std::map<std::string, int> QuantizeDynamically(tensorflow::GraphDef& graph) {
  std::map<std::string, int> counts;
  const int original_nodes = graph.node_size();  // the loop adds nodes
  for (int i = 0; i < original_nodes; ++i) {
    const Rewrite* rewrite = RewriteFor(graph.node(i));
    if (rewrite == nullptr) continue;
    const NodeDef original = graph.node(i);
    std::vector<std::string> data_inputs, control_inputs;
    for (const std::string& input : original.input())
      (input[0] == '^' ? control_inputs : data_inputs).push_back(input);
    if (data_inputs.size() < 2) continue;

    NodeDef& activations = AddNode(graph, original, "quantize_input", kernels::kQuantize, data_inputs[0]);
    (*activations.mutable_attr())["T"].set_type(tensorflow::DT_UINT8);
    (*activations.mutable_attr())["mode"].set_s("dynamic");
    (*activations.mutable_attr())["static_scale"].set_f(1.f);
    (*activations.mutable_attr())["static_zero_point"].set_i(0);
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
    ++counts[std::string("INT8 dynamic ") + rewrite->float_op];
  }
  return counts;
}

}  // namespace int8flow::graph
