#include "graph/int8_rewrite.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "graph/graph_util.h"
#include "kernels/op_definitions.h"
#include "kernels/quantization.h"

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
  // Only with stored int8 weights (AddStoredInt8Weights), of this rank: a
  // BatchMatMulV2 by one matrix (2), which the fusion pass leaves unfused
  // when it has no bias; a depthwise conv (4), whose TF filter [kh, kw, ic,
  // multiplier] has a channel axis of its own (2) only with multiplier 1.
  int stored_rank = 0;
  bool depthwise = false;
};

const std::vector<Rewrite>& Rewrites() {
  static const std::vector<Rewrite> rewrites = [] {
    using Kept = std::vector<std::pair<const char*, const char*>>;
    const Kept matmul = {{"transpose_b", "transpose_b"},
                         {"fused_ops", "fused_ops"},
                         {"leakyrelu_alpha", "leakyrelu_alpha"}};
    Kept conv = {{"fused_ops", "fused_ops"}, {"leakyrelu_alpha", "leakyrelu_alpha"}};
    for (const char* name : {"strides", "padding", "explicit_paddings", "dilations", "epsilon"})
      conv.emplace_back(name, name);
    return std::vector<Rewrite>{
        {"MatMul", kernels::kQuantizedMatMul, matmul, true},
        {kernels::kFusedMatMul, kernels::kQuantizedMatMul, matmul, true},
        {"BatchMatMulV2", kernels::kQuantizedMatMul, {{"adj_y", "transpose_b"}}, true, 2},
        {"Conv2D", kernels::kQuantizedConv2D, conv, false},
        {kernels::kFusedConv2D, kernels::kQuantizedConv2D, conv, false},
        {"DepthwiseConv2dNative", kernels::kQuantizedDepthwiseConv2D, conv, false, 4, true},
        {kernels::kFusedDepthwiseConv2D, kernels::kQuantizedDepthwiseConv2D, conv, false, 4, true}};
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

// A reference, so that AttrOf(...).list().s() may head a range-for; an
// empty value for a missing attr.
const AttrValue& AttrOf(const NodeDef& node, const char* name) {
  static const AttrValue* const kMissing = new AttrValue();
  const auto it = node.attr().find(name);
  return it == node.attr().end() ? *kMissing : it->second;
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
//   [min, max], its zero point nudged as TF nudges it so that 0.0 is exact
//   (on AMX, s8 symmetric when that zero point is not 0);
// - QuantizeAndDequantizeV4 with a given constant range, per tensor
//   (tf.quantization.quantize_and_dequantize_v2): s8 (signed_input) or u8,
//   zero point 0, with the scale TF derives from whichever end binds.
// Not found: `range.qdq` stays null.
FixedRange FixedRangeOf(const NodeIndex& nodes, const std::string& tensor) {
  FixedRange range;
  if (const NodeDef* fq = nodes.Producer(tensor, "FakeQuantWithMinMaxArgs")) {
    if (fq->input_size() < 1 || AttrOf(*fq, "num_bits").i() != 8 || AttrOf(*fq, "narrow_range").b())
      return range;
    const float min = AttrOf(*fq, "min").f(), max = AttrOf(*fq, "max").f();
    range.scale = (max - min) / 255.f;
    if (!(range.scale > 0) || !std::isfinite(range.scale)) return range;
    range.zero_point = static_cast<int>(std::clamp(std::round(-min / range.scale), 0.f, 255.f));
    range.qdq = fq;
    // With any zero point oneDNN 3.2 leaves its brgemm AMX kernels for
    // slower ones (1.3-3x a layer, measured), and AMX takes s8 activations
    // natively: there a range around 0 runs s8, symmetric. Elsewhere s8
    // costs more than the zero point (VNNI) or than float (AVX2).
    if (range.zero_point != 0 && kernels::CpuHasAmx()) {
      range.type = tensorflow::DT_INT8;
      range.scale = std::max(-min, max) / 127.f;
      range.zero_point = 0;
    }
  } else if (const NodeDef* qdq = nodes.Producer(tensor, "QuantizeAndDequantizeV4")) {
    const NodeDef* min_node =
        qdq->input_size() == 3 ? nodes.Producer(qdq->input(1), "Const") : nullptr;
    const NodeDef* max_node =
        qdq->input_size() == 3 ? nodes.Producer(qdq->input(2), "Const") : nullptr;
    if (!min_node || !max_node || !AttrOf(*qdq, "range_given").b() ||
        AttrOf(*qdq, "num_bits").i() != 8 || AttrOf(*qdq, "narrow_range").b() ||
        AttrOf(*qdq, "axis").i() != -1 || AttrOf(*qdq, "round_mode").s() != "HALF_TO_EVEN")
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

// A depthwise filter [kh, kw, ic, multiplier] whose channel axis (2) holds
// every output channel: multiplier 1.
bool IsMultiplierOne(const tensorflow::TensorShapeProto& shape) {
  return shape.dim_size() == 4 && shape.dim(3).size() == 1;
}

// A quantized op's weights as two Consts on `user`'s device: s8 values and
// their scales, named into `weights` and `scales`.
void AddWeightConsts(tensorflow::GraphDef& graph, const NodeDef& user,
                     tensorflow::TensorProto s8_values, tensorflow::TensorProto scale_values,
                     std::string& weights, std::string& scales) {
  for (auto [suffix, dtype, value, name] :
       {std::tuple{"weights_s8", tensorflow::DT_INT8, &s8_values, &weights},
        std::tuple{"weight_scales", tensorflow::DT_FLOAT, &scale_values, &scales}}) {
    NodeDef& node = AddNode(graph, user, suffix, "Const", "");
    (*node.mutable_attr())["dtype"].set_type(dtype);
    *(*node.mutable_attr())["value"].mutable_tensor() = std::move(*value);
    *name = node.name();
  }
}

// The scales of a qint8 SCALED Dequantize, `channels` of them, from its min
// and max Consts by TF's rule: the scale that fits both ends. Empty when the
// Consts hold another number of values.
std::vector<float> ScaledScales(const NodeDef& dequantize, const NodeDef& min, const NodeDef& max,
                                size_t channels) {
  const std::vector<float> lows = FloatValues(min, channels), highs = FloatValues(max, channels);
  if (lows.empty() || highs.empty()) return {};
  const float lowest = AttrOf(dequantize, "narrow_range").b() ? -127.f : -128.f;
  std::vector<float> scales(channels);
  for (size_t c = 0; c < channels; ++c) scales[c] = std::max(lows[c] / lowest, highs[c] / 127.f);
  return scales;
}

// A float Dequantize of qint8 in TF's SCALED mode (the form int8flow.quantize
// saves); `per_tensor` asks for axis -1 too.
bool IsScaledInt8Dequantize(const NodeDef& node, bool per_tensor) {
  const auto attr = [&](const char* name) { return AttrOf(node, name); };
  return node.op() == "Dequantize" && node.input_size() >= 3 &&
         attr("T").type() == tensorflow::DT_QINT8 && attr("mode").s() == "SCALED" &&
         (attr("dtype").type() == tensorflow::DT_FLOAT ||
          attr("dtype").type() == tensorflow::DT_INVALID) &&
         (!per_tensor || attr("axis").i() < 0);
}

// Weights as a QDQ graph stores them, int8 Const -> Dequantize (SCALED, per
// tensor or along `channel_axis`), handed to the quantized op as they are: an
// s8 Const and a Const of scales, added on `user`'s device. TF may not fold
// that Dequantize (it skips large constants), and then it would run on CPU
// and copy float weights over every call. False when `dequantize` is not
// that form; the caller then quantizes the float weights itself.
bool AddStoredInt8Weights(tensorflow::GraphDef& graph, const NodeIndex& nodes,
                          const NodeDef& dequantize, int64_t channel_axis, const Rewrite& rewrite,
                          const NodeDef& user, std::string& weights, std::string& scales) {
  if (!IsScaledInt8Dequantize(dequantize, false)) return false;
  const NodeDef* q = nodes.Producer(dequantize.input(0), "Const");
  const NodeDef* min = nodes.Producer(dequantize.input(1), "Const");
  const NodeDef* max = nodes.Producer(dequantize.input(2), "Const");
  if (!q || !min || !max) return false;
  const tensorflow::TensorShapeProto& shape = q->attr().at("value").tensor().tensor_shape();
  const int64_t rank = shape.dim_size();
  if (rewrite.stored_rank && rank != rewrite.stored_rank) return false;
  if (rewrite.depthwise && !IsMultiplierOne(shape)) return false;
  const int64_t axis = std::max<int64_t>(AttrOf(dequantize, "axis").i(), -1);
  const int64_t wanted = channel_axis < 0 ? channel_axis + rank : channel_axis;
  if (axis != -1 && axis != wanted) return false;
  const size_t channels = axis == -1 ? 1 : static_cast<size_t>(shape.dim(axis).size());
  const std::vector<float> channel_scales = ScaledScales(dequantize, *min, *max, channels);
  if (channel_scales.empty()) return false;
  tensorflow::TensorProto scale_values;
  scale_values.set_dtype(tensorflow::DT_FLOAT);
  scale_values.mutable_tensor_shape()->add_dim()->set_size(static_cast<int64_t>(channels));
  for (float scale : channel_scales) scale_values.add_float_val(scale);

  tensorflow::TensorProto s8_values = q->attr().at("value").tensor();  // the same bytes, as int8
  s8_values.set_dtype(tensorflow::DT_INT8);
  AddWeightConsts(graph, user, std::move(s8_values), std::move(scale_values), weights, scales);
  return true;
}

// Float weights held in a Const (Grappler folds a QDQ graph's small
// Dequantizes, and BatchNorm scales, into them) are quantized here, once, as
// _QcpuQuantizeWeights would on first use: the s8 Const and Const of scales
// then need no node to run per call. False when `constant` is not a float
// Const of the expected layout, or holds NaN or Inf (the kernel then says so).
bool AddQuantizedConstWeights(tensorflow::GraphDef& graph, const NodeDef* constant,
                              int64_t channel_axis, const NodeDef& user, std::string& weights,
                              std::string& scales) {
  if (constant == nullptr || AttrOf(*constant, "dtype").type() != tensorflow::DT_FLOAT)
    return false;
  const tensorflow::TensorShapeProto& shape = AttrOf(*constant, "value").tensor().tensor_shape();
  std::vector<int64_t> dims;
  for (const auto& dim : shape.dim()) dims.push_back(dim.size());
  const std::optional<kernels::WeightChannels> layout =
      kernels::WeightChannelsOf(dims, channel_axis);
  if (!layout) return false;
  const std::vector<float> w = FloatValues(*constant, static_cast<size_t>(layout->count));
  if (w.empty()) return false;
  std::string q(static_cast<size_t>(layout->count), '\0');
  tensorflow::TensorProto scale_values;
  scale_values.set_dtype(tensorflow::DT_FLOAT);
  scale_values.mutable_tensor_shape()->add_dim()->set_size(layout->channels);
  scale_values.mutable_float_val()->Resize(static_cast<int>(layout->channels), 0.f);
  if (!kernels::QuantizeWeightsPerChannel(w.data(), *layout, kernels::WeightLevels(),
                                          reinterpret_cast<int8_t*>(q.data()),
                                          scale_values.mutable_float_val()->mutable_data())
           .empty())
    return false;
  tensorflow::TensorProto s8_values;
  s8_values.set_dtype(tensorflow::DT_INT8);
  *s8_values.mutable_tensor_shape() = shape;
  s8_values.set_tensor_content(std::move(q));
  AddWeightConsts(graph, user, std::move(s8_values), std::move(scale_values), weights, scales);
  return true;
}

// A depthwise filter TF folded (Grappler folds a QDQ graph's Dequantize of
// a small one, and a BatchNorm's scale into it): a float Const [kh, kw, ic, 1].
bool IsFilterOfMultiplierOne(const NodeDef* constant) {
  return constant != nullptr && AttrOf(*constant, "dtype").type() == tensorflow::DT_FLOAT &&
         IsMultiplierOne(AttrOf(*constant, "value").tensor().tensor_shape());
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
      if (next.count(node.name()) && node.op() == "Const") candidates.insert(node.name());
  }
}

// A quantized op's inputs before its fused ops' args: the two operands, the
// activations' scale and zero point, the weights' scales.
constexpr int kQuantizedOperands = 5;

bool IsQuantizedOp(const NodeDef& node) {
  return node.op() == kernels::kQuantizedMatMul || node.op() == kernels::kQuantizedConv2D ||
         node.op() == kernels::kQuantizedDepthwiseConv2D;
}

// The input of a quantized op that its fused Add adds in, or -1.
int AddendInput(const NodeDef& node) {
  int input = kQuantizedOperands;
  for (const std::string& op : AttrOf(node, "fused_ops").list().s()) {
    if (op == "Add") return input;
    input += kernels::FusedOpArgs(op);
  }
  return -1;
}

// A static _QcpuQuantize node's range (`qdq` is that node).
FixedRange StaticRangeOf(const NodeDef& quantize) {
  return {&quantize, AttrOf(quantize, "T").type(), AttrOf(quantize, "static_scale").f(),
          static_cast<int>(AttrOf(quantize, "static_zero_point").i())};
}

bool SameRange(const FixedRange& a, const FixedRange& b) {
  return a.type == b.type && a.scale == b.scale && a.zero_point == b.zero_point;
}

// A quantized op whose float output every reader quantizes again with the
// same fixed range (static _QcpuQuantize nodes) or adds in through its fused
// Add: it outputs `range`. No chain when `range.qdq` is null.
struct Int8Chain {
  explicit Int8Chain(std::string producer_name) : producer(std::move(producer_name)) {}
  std::string producer;
  FixedRange range;
  std::set<std::string> quantizes;  // the Quantize readers it replaces
  std::set<std::string> adders;     // quantized ops adding it in
};

// `producer`'s chain, or one with no range when some reader needs floats.
Int8Chain FindChain(const NodeDef& producer, const Readers& readers) {
  Int8Chain chain(producer.name());
  const auto found = readers.find(producer.name());
  if (found == readers.end()) return chain;
  for (const NodeDef* reader : found->second) {
    for (int i = 0; i < reader->input_size(); ++i) {
      const TensorRef ref = ParseTensorRef(reader->input(i));
      if (ref.node != producer.name() || ref.port < 0) continue;  // control edges take any dtype
      if (reader->op() == kernels::kQuantize && i == 0 && AttrOf(*reader, "mode").s() == "static" &&
          (chain.range.qdq == nullptr || SameRange(chain.range, StaticRangeOf(*reader)))) {
        if (chain.range.qdq == nullptr) chain.range = StaticRangeOf(*reader);
        chain.quantizes.insert(reader->name());
      } else if (IsQuantizedOp(*reader) && i == AddendInput(*reader)) {
        chain.adders.insert(reader->name());
      } else {
        return Int8Chain(producer.name());
      }
    }
  }
  return chain;
}

// MaxPool commutes with quantizing (a rounding, non-decreasing map), so the
// static Quantize of a MaxPool's output may run on its input instead, the
// pool then on int8: a quarter of the bytes, and the pool's producer may
// chain int8 into it (ResNet's stem). Only for a MaxPool read by Quantizes
// alone, all with one range (one per quantized reader): the first moves,
// the rest read through it. Returns how many moved.
int QuantizeBeforeMaxPool(tensorflow::GraphDef& graph, const std::set<std::string>& preserve) {
  std::map<std::string, std::vector<std::string>>
      quantizes_of;  // MaxPool -> its readers, Quantizes
  {
    const Readers readers = ReadersOf(graph);
    for (const NodeDef& pool : graph.node()) {
      const auto found = readers.find(pool.name());
      if (pool.op() != "MaxPool" || AttrOf(pool, "T").type() != tensorflow::DT_FLOAT ||
          preserve.count(pool.name()) || found == readers.end())
        continue;
      std::vector<std::string> quantizes;
      for (const NodeDef* reader : found->second) {
        const TensorRef read = ParseTensorRef(reader->input(0));
        const bool same = reader->op() == kernels::kQuantize &&
                          AttrOf(*reader, "mode").s() == "static" && reader->input_size() == 1 &&
                          read.node == pool.name() && read.port == 0 &&
                          reader->device() == pool.device() &&
                          SameRange(StaticRangeOf(*reader), StaticRangeOf(*found->second.front()));
        if (!same) break;
        quantizes.push_back(reader->name());
      }
      if (quantizes.size() == found->second.size()) quantizes_of[pool.name()] = quantizes;
    }
  }
  std::map<std::string, NodeDef*> by_name;
  for (NodeDef& node : *graph.mutable_node()) by_name[node.name()] = &node;
  std::map<std::string, std::string> renamed;  // the Quantizes' outputs -> what replaces them
  std::set<std::string> removed;
  for (const auto& [pool_name, quantizes] : quantizes_of) {
    NodeDef& pool = *by_name.at(pool_name);
    NodeDef& moved = *by_name.at(quantizes.front());
    *moved.mutable_input(0) = pool.input(0);
    *pool.mutable_input(0) = moved.name();
    (*pool.mutable_attr())["T"].set_type(AttrOf(moved, "T").type());
    for (const std::string& quantize : quantizes) {
      renamed[quantize] = renamed[quantize + ":0"] = pool_name;
      renamed[quantize + ":1"] = moved.name() + ":1";
      renamed[quantize + ":2"] = moved.name() + ":2";
      renamed["^" + quantize] = "^" + pool_name;
      if (quantize != moved.name()) removed.insert(quantize);
    }
  }
  for (NodeDef& node : *graph.mutable_node()) {
    if (quantizes_of.count(node.name())) continue;  // a moved pool reads its Quantize
    for (std::string& input : *node.mutable_input())
      if (const auto it = renamed.find(input); it != renamed.end()) input = it->second;
  }
  RemoveNodes(graph, removed);
  return static_cast<int>(quantizes_of.size());
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

// An embedding as int8flow.quantize saves it: GatherV2 of a qint8 Const, then
// a per-tensor SCALED Dequantize of the rows gathered. Neither has a QCPU
// kernel for qint8, so both sat on CPU and each call copied the float rows
// over. Here the gather reads the same bytes as an int8 Const on QCPU and our
// Dequantize scales the rows there: the table stays int8 in memory. Returns
// the count rewritten.
int RewriteInt8Embeddings(tensorflow::GraphDef& graph, std::set<std::string>& bypassed) {
  struct Embedding {
    std::string dequantize, gather, device;
    std::vector<std::string> replaced;  // the qint8 table and the range Consts
    float scale;
  };
  std::vector<Embedding> embeddings;
  {
    const Readers readers = ReadersOf(graph);
    const NodeIndex nodes(graph);
    const auto only_reader = [&](const std::string& name) -> const NodeDef* {
      const auto it = readers.find(name);
      return it != readers.end() && it->second.size() == 1 ? it->second.front() : nullptr;
    };
    for (const NodeDef& node : graph.node()) {
      if (!IsScaledInt8Dequantize(node, true)) continue;
      const NodeDef* gather = nodes.Producer(node.input(0), "GatherV2");
      if (!gather || gather->input_size() < 3 || AttrOf(*gather, "batch_dims").i() != 0 ||
          only_reader(gather->name()) != &node)
        continue;
      const NodeDef* table = nodes.Producer(gather->input(0), "Const");
      const NodeDef* min = nodes.Producer(node.input(1), "Const");
      const NodeDef* max = nodes.Producer(node.input(2), "Const");
      if (!table || !min || !max || AttrOf(*table, "dtype").type() != tensorflow::DT_QINT8)
        continue;
      const std::vector<float> scale = ScaledScales(node, *min, *max, 1);
      const auto users = readers.find(node.name());
      if (scale.empty() || users == readers.end()) continue;
      for (const NodeDef* user : users->second) {
        if (!OnQcpu(*user)) continue;  // placed already: the rows go where a reader is
        embeddings.push_back({node.name(),
                              gather->name(),
                              user->device(),
                              {table->name(), min->name(), max->name()},
                              scale[0]});
        break;
      }
    }
  }
  std::map<std::string, int> index;  // of the nodes now; adding more keeps them
  for (int i = 0; i < graph.node_size(); ++i) index[graph.node(i).name()] = i;
  for (const Embedding& e : embeddings) {
    const NodeDef dequantize = graph.node(index[e.dequantize]);
    tensorflow::TensorProto values = graph.node(index[e.replaced[0]]).attr().at("value").tensor();
    values.set_dtype(tensorflow::DT_INT8);  // the same bytes
    NodeDef& table = AddNode(graph, dequantize, "table_s8", "Const", "");
    (*table.mutable_attr())["dtype"].set_type(tensorflow::DT_INT8);
    *(*table.mutable_attr())["value"].mutable_tensor() = std::move(values);
    NodeDef& scale = AddScalarConst(graph, dequantize, "scale", tensorflow::DT_FLOAT);
    scale.mutable_attr()->at("value").mutable_tensor()->add_float_val(e.scale);
    NodeDef& zero_point = AddScalarConst(graph, dequantize, "zero_point", tensorflow::DT_INT32);
    zero_point.mutable_attr()->at("value").mutable_tensor()->add_int_val(0);
    for (NodeDef* added : {&table, &scale, &zero_point}) added->set_device(e.device);

    NodeDef& gather = *graph.mutable_node(index[e.gather]);
    gather.set_input(0, table.name());
    (*gather.mutable_attr())["Tparams"].set_type(tensorflow::DT_INT8);
    gather.set_device(e.device);
    NodeDef& rows = *graph.mutable_node(index[e.dequantize]);
    rows.set_op(kernels::kDequantize);
    rows.clear_input();
    for (const std::string& input : {e.gather, scale.name(), zero_point.name()})
      rows.add_input(input);
    for (const std::string& input : dequantize.input())
      if (input[0] == '^') rows.add_input(input);
    rows.clear_attr();
    (*rows.mutable_attr())["T"].set_type(tensorflow::DT_INT8);
    rows.set_device(e.device);
    bypassed.insert(e.replaced.begin(), e.replaced.end());
  }
  return static_cast<int>(embeddings.size());
}

// Int8 between quantized layers: a producer with a chain outputs the int8
// its readers would have made (requantizing is its primitive's last step),
// and they read that. This saves a float write and a quantize pass over the
// tensor, and 3/4 of its bytes. Returns the count of chains made.
int ChainInt8(tensorflow::GraphDef& graph, const std::set<std::string>& preserve) {
  std::vector<Int8Chain> chains;
  {
    const Readers readers = ReadersOf(graph);
    for (const NodeDef& node : graph.node())
      if (IsQuantizedOp(node) && AttrOf(node, "Tout").type() == tensorflow::DT_FLOAT &&
          !preserve.count(node.name()))
        if (Int8Chain chain = FindChain(node, readers); chain.range.qdq)
          chains.push_back(std::move(chain));
  }
  std::map<std::string, int> index;  // of the nodes now; adding more keeps them
  for (int i = 0; i < graph.node_size(); ++i) index[graph.node(i).name()] = i;
  std::map<std::string, std::string> renamed;  // a Quantize's outputs -> what replaces them
  std::map<std::string, FixedRange> adders;    // -> the range of what they add in
  std::set<std::string> removed;
  for (const Int8Chain& chain : chains) {
    const FixedRange& range = chain.range;
    auto& attrs = *graph.mutable_node(index[chain.producer])->mutable_attr();
    attrs["Tout"].set_type(range.type);
    attrs["out_scale"].set_f(range.scale);
    attrs["out_zero_point"].set_i(range.zero_point);
    const NodeDef producer = graph.node(index[chain.producer]);
    NodeDef& scale = AddScalarConst(graph, producer, "out_scale", tensorflow::DT_FLOAT);
    scale.mutable_attr()->at("value").mutable_tensor()->add_float_val(range.scale);
    NodeDef& zero_point = AddScalarConst(graph, producer, "out_zero_point", tensorflow::DT_INT32);
    zero_point.mutable_attr()->at("value").mutable_tensor()->add_int_val(range.zero_point);
    for (const std::string& quantize : chain.quantizes) {
      renamed[quantize] = renamed[quantize + ":0"] = chain.producer;
      renamed[quantize + ":1"] = scale.name();
      renamed[quantize + ":2"] = zero_point.name();
      renamed["^" + quantize] = "^" + chain.producer;
      removed.insert(quantize);
    }
    for (const std::string& adder : chain.adders) adders[adder] = range;
  }
  for (NodeDef& node : *graph.mutable_node()) {
    for (std::string& input : *node.mutable_input())
      if (const auto it = renamed.find(input); it != renamed.end()) input = it->second;
    const auto adder = adders.find(node.name());
    if (adder == adders.end()) continue;
    const FixedRange& range = adder->second;
    auto& attrs = *node.mutable_attr();
    attrs["Targs"].mutable_list()->set_type(AddendInput(node) - kQuantizedOperands, range.type);
    attrs["addend_scale"].set_f(range.scale);
    attrs["addend_zero_point"].set_i(range.zero_point);
  }
  RemoveNodes(graph, removed);
  return static_cast<int>(chains.size());
}

}  // namespace

std::map<std::string, int> QuantizeForInt8(tensorflow::GraphDef& graph, bool dynamic,
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

    // The weights first: a rewrite that needs stored ones may not happen.
    bool transposed = false;
    for (const auto& [from, to] : rewrite->kept_attrs) {
      const auto it = original.attr().find(from);
      transposed |= rewrite->transposable_weights && std::string(to) == "transpose_b" &&
                    it != original.attr().end() && it->second.b();
    }
    const int64_t channel_axis = transposed ? 0 : rewrite->depthwise ? 2 : -1;
    std::string weights, weight_scales;
    const NodeDef* dequantize = nodes.Producer(data_inputs[1], "Dequantize");
    if (dequantize && AddStoredInt8Weights(graph, nodes, *dequantize, channel_axis, *rewrite,
                                           original, weights, weight_scales)) {
      bypassed.insert(dequantize->name());
    } else if (rewrite->stored_rank &&
               !(rewrite->depthwise && fixed_range &&
                 IsFilterOfMultiplierOne(nodes.Producer(data_inputs[1], "Const")))) {
      continue;
    } else if (const NodeDef* constant = nodes.Producer(data_inputs[1], "Const");
               AddQuantizedConstWeights(graph, constant, channel_axis, original, weights,
                                        weight_scales)) {
      bypassed.insert(constant->name());
    } else {
      NodeDef& quantized =
          AddNode(graph, original, "quantize_weights", kernels::kQuantizeWeights, data_inputs[1]);
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
    if (const NodeDef* arg = nodes.Producer(x, "_Arg"); arg && OnCpu(*arg))
      (*activations.mutable_attr())["_kernel"].set_s(kernels::kHostInputLabel);  // see quantize.cc

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
  if (const int embeddings = RewriteInt8Embeddings(graph, bypassed))
    counts["INT8 embedding"] = embeddings;
  // A QDQ node or Dequantize left with no reader would still run (on CPU:
  // none has a QCPU kernel), and cost copies every call.
  RemoveUnread(graph, bypassed, preserve);
  if (const int moved = QuantizeBeforeMaxPool(graph, preserve)) counts["INT8 MaxPool"] = moved;
  if (const int chained = ChainInt8(graph, preserve)) counts["INT8 chained output"] = chained;
  return counts;
}

}  // namespace int8flow::graph
