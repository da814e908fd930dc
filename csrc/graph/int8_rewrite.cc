// The INT8 rewrite's driver: the float ops it quantizes (the table of
// ops/quantizable_ops.h), each rewritten in turn, then the embeddings, the
// cleanup, the MaxPool move and the chains (int8_internal.h says which file
// holds which).
#include "graph/int8_rewrite.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "graph/int8_internal.h"
#include "ops/op_names.h"

namespace int8flow::graph {
namespace int8_rewrite {

NodeDef& AddNode(tensorflow::GraphDef& graph, const NodeDef& user, const std::string& suffix,
                 const char* op, const std::string& input) {
  NodeDef& node = *graph.add_node();
  node.set_name(user.name() + "/int8flow_" + suffix);
  node.set_op(op);
  node.set_device(user.device());
  if (!input.empty()) node.add_input(input);
  return node;
}

NodeDef& AddScalarConst(tensorflow::GraphDef& graph, const NodeDef& user, const std::string& suffix,
                        tensorflow::DataType type) {
  NodeDef& node = AddNode(graph, user, suffix, "Const", "");
  (*node.mutable_attr())["dtype"].set_type(type);
  tensorflow::TensorProto& value = *(*node.mutable_attr())["value"].mutable_tensor();
  value.set_dtype(type);
  value.mutable_tensor_shape();  // a scalar
  return node;
}

std::vector<float> FloatValues(const NodeDef& constant, size_t count) {
  std::vector<float> values = ConstFloatValues(constant);
  if (values.size() == 1) values.resize(count, values[0]);
  if (values.size() != count) values.clear();
  return values;
}

const AttrValue& AttrOf(const NodeDef& node, const char* name) {
  static const AttrValue* const kMissing = new AttrValue();
  const auto it = node.attr().find(name);
  return it == node.attr().end() ? *kMissing : it->second;
}

namespace {

// ops/quantizable_ops.h's rows, each as its float op and its fused op.
const std::vector<Rewrite>& Rewrites() {
  static const std::vector<Rewrite> rewrites = [] {
    std::vector<Rewrite> table;
    for (const ops::QuantizableOp& row : ops::kQuantizableOps) {
      std::vector<std::pair<const char*, const char*>> kept = {
          {"fused_ops", "fused_ops"}, {"leakyrelu_alpha", "leakyrelu_alpha"}};
      if (row.transpose_weights_attr) kept.emplace_back(row.transpose_weights_attr, "transpose_b");
      if (row.data_format) {  // a convolution: its geometry, and a folded BatchNorm's epsilon
        for (const char* name : {"strides", "padding", "explicit_paddings", "dilations", "epsilon"})
          kept.emplace_back(name, name);
      }
      for (const char* op : {row.op, row.fused_op})
        if (op) table.push_back({op, &row, kept});
    }
    return table;
  }();
  return rewrites;
}

const Rewrite* RewriteFor(const NodeDef& node) {
  if (!OnQcpu(node) || AttrOf(node, "T").type() != tensorflow::DT_FLOAT) return nullptr;
  for (const Rewrite& r : Rewrites()) {
    if (node.op() != r.float_op) continue;
    const ops::QuantizableOp& row = *r.quantizable;
    if (row.refused_attr && AttrOf(node, row.refused_attr).b()) return nullptr;
    const auto format = node.attr().find("data_format");
    if (row.data_format && format != node.attr().end() && format->second.s() != row.data_format)
      return nullptr;
    return &r;
  }
  return nullptr;
}

// Removes `candidates` (and then the Consts only they read) that nothing reads.
void RemoveUnread(tensorflow::GraphDef& graph, std::set<std::string> candidates,
                  const std::set<std::string>& preserve) {
  while (!candidates.empty()) {
    const Readers readers = ReadersOf(graph);
    std::set<std::string> dead, next;
    for (const NodeDef& node : graph.node()) {
      if (!candidates.count(node.name()) || readers.count(node.name()) ||
          preserve.count(node.name()))
        continue;
      dead.insert(node.name());
      for (const std::string& input : node.input()) next.insert(ParseTensorRef(input).node);
    }
    RemoveNodes(graph, dead);
    candidates.clear();
    for (const NodeDef& node : graph.node())
      if (next.count(node.name()) && (node.op() == "Const" || node.op() == "Bitcast"))
        candidates.insert(node.name());
  }
}

// The multiply-adds each input element takes part in, from the weights'
// shape (and a convolution's strides), when shape inference knows it:
// a MatMul's output width, a convolution's kh * kw * output channels over
// its stride. Quantizing the input per call costs about one pass over it,
// the INT8 product saves a share of these multiply-adds.
std::optional<double> MacsPerInputElement(const GraphShapes& shapes, const NodeDef& node,
                                          const std::string& weights, const ops::QuantizableOp& row,
                                          bool transposed) {
  const TensorRef ref = ParseTensorRef(weights);
  const std::optional<std::vector<int64_t>> dims = shapes.Output(ref.node, ref.port);
  if (!dims || dims->size() < 2 ||
      std::any_of(dims->begin(), dims->end(), [](int64_t d) { return d < 0; }))
    return std::nullopt;
  const std::vector<int64_t>& d = *dims;
  if (!row.data_format) return static_cast<double>(transposed ? d[d.size() - 2] : d.back());
  // [k..., ic, oc] (depthwise: [kh, kw, ic, multiplier]), strides [1, s..., 1].
  const size_t spatial = d.size() - 2;
  const auto& strides = AttrOf(node, "strides").list().i();
  double macs = static_cast<double>(d.back()), stride = 1.0;
  for (size_t i = 0; i < spatial; ++i) {
    macs *= static_cast<double>(d[i]);
    if (static_cast<size_t>(strides.size()) == d.size())
      stride *= static_cast<double>(strides[i + 1]);
  }
  return macs / stride;
}

// QuantizeForInt8 (int8_rewrite.h), among the helpers it runs.
std::map<std::string, int> Run(tensorflow::GraphDef& graph, const GraphShapes& shapes, bool dynamic,
                               const std::set<std::string>& preserve) {
  std::map<std::string, int> counts;
  std::set<std::string> bypassed;  // FakeQuants, Dequantizes and float weight Consts read past
  const NodeIndex nodes(graph);    // of the original nodes, which keep their places
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
    const ops::QuantizableOp& row = *rewrite->quantizable;
    const bool transposed =
        row.transpose_weights_attr && AttrOf(original, row.transpose_weights_attr).b();
    if (!fixed_range) {
      // Dynamic INT8 where its per-call quantize costs more than the product
      // saves, and rounds the input all the same: a classifier's head, a
      // narrow layer. It stays FP32 (docs/int8.md, "Dynamic INT8").
      const std::optional<double> macs =
          MacsPerInputElement(shapes, original, data_inputs[1], row, transposed);
      if (macs && *macs < ops::kMinDynamicMacsPerInput) continue;
    }

    // The weights first: a rewrite that needs stored ones may not happen.
    const int64_t channel_axis = transposed ? 0 : row.depthwise ? 2 : -1;
    std::string weights, weight_scales;
    const NodeDef* dequantize = nodes.Producer(data_inputs[1], "Dequantize");
    if (dequantize && AddStoredInt8Weights(graph, nodes, shapes, *dequantize, channel_axis, row,
                                           original, weights, weight_scales)) {
      bypassed.insert(dequantize->name());
    } else if (row.weight_rank &&
               !(row.depthwise && fixed_range &&
                 IsFilterOfMultiplierOne(nodes.Producer(data_inputs[1], "Const")))) {
      // A row of one weight rank takes stored int8 weights only (checked
      // there): a BatchMatMulV2 by one matrix, which the fusion pass leaves
      // unfused when it has no bias, and a depthwise filter, whose float
      // Const is taken in static INT8 alone (int8_rewrite.h says why).
      continue;
    } else if (const NodeDef* constant = nodes.Producer(data_inputs[1], "Const");
               AddQuantizedConstWeights(graph, constant, channel_axis, row.depthwise, original,
                                        weights, weight_scales)) {
      bypassed.insert(constant->name());
    } else {
      NodeDef& quantized =
          AddNode(graph, original, "quantize_weights", ops::kQuantizeWeights, data_inputs[1]);
      (*quantized.mutable_attr())["channel_axis"].set_i(channel_axis);
      weights = quantized.name();
      weight_scales = quantized.name() + ":1";
    }
    if (fixed_range) bypassed.insert(range.qdq->name());
    NodeDef& activations = AddNode(graph, original, "quantize_input", ops::kQuantize, x);
    (*activations.mutable_attr())["T"].set_type(range.type);
    (*activations.mutable_attr())["mode"].set_s(fixed_range ? "static" : "dynamic");
    (*activations.mutable_attr())["static_scale"].set_f(range.scale);
    (*activations.mutable_attr())["static_zero_point"].set_i(range.zero_point);
    if (const NodeDef* arg = nodes.Producer(x, "_Arg"); arg && OnCpu(*arg))
      (*activations.mutable_attr())["_kernel"].set_s(ops::kHostInputLabel);  // see quantize.cc

    NodeDef& node = *graph.mutable_node(i);  // add_node may have moved it
    node.set_op(row.quantized_op);
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
  if (const int embeddings = RewriteInt8Embeddings(graph, bypassed))
    counts["INT8 embedding"] = embeddings;
  // A QDQ node or Dequantize left with no reader would still run (on CPU:
  // none has a QCPU kernel), and cost copies every call.
  RemoveUnread(graph, bypassed, preserve);
  if (const int moved = QuantizeBeforeMaxPool(graph, preserve)) counts["INT8 MaxPool"] = moved;
  if (const int chained = ChainInt8(graph, preserve)) counts["INT8 chained output"] = chained;
  return counts;
}

}  // namespace
}  // namespace int8_rewrite

std::map<std::string, int> QuantizeForInt8(tensorflow::GraphDef& graph, const GraphShapes& shapes,
                                           bool dynamic, const std::set<std::string>& preserve) {
  return int8_rewrite::Run(graph, shapes, dynamic, preserve);
}

}  // namespace int8flow::graph
