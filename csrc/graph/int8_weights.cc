// The INT8 rewrite's weight sources: stored int8 weights (an int8 Const or
// tensor -> Dequantize) handed over as they are, and float Const weights quantized
// once, here.
#include <algorithm>
#include <optional>
#include <vector>

#include "graph/int8_internal.h"
#include "ops/int8_math.h"

namespace int8flow::graph::int8_rewrite {
namespace {

// A depthwise filter [kh, kw, ic, multiplier] whose channel axis (2) holds
// every output channel: multiplier 1.
bool IsMultiplierOne(const std::vector<int64_t>& shape) {
  return shape.size() == 4 && shape[3] == 1;
}

// A Const of `value` (of `dtype`) on `user`'s device, its name in `name`.
void AddWeightConst(tensorflow::GraphDef& graph, const NodeDef& user, const char* suffix,
                    tensorflow::DataType dtype, tensorflow::TensorProto value, std::string& name) {
  NodeDef& node = AddNode(graph, user, suffix, "Const", "");
  (*node.mutable_attr())["dtype"].set_type(dtype);
  *(*node.mutable_attr())["value"].mutable_tensor() = std::move(value);
  name = node.name();
}

// A quantized op's weights as two Consts on `user`'s device: s8 values and
// their scales, named into `weights` and `scales`.
void AddWeightConsts(tensorflow::GraphDef& graph, const NodeDef& user,
                     tensorflow::TensorProto s8_values, tensorflow::TensorProto scale_values,
                     std::string& weights, std::string& scales) {
  AddWeightConst(graph, user, "weights_s8", tensorflow::DT_INT8, std::move(s8_values), weights);
  AddWeightConst(graph, user, "weight_scales", tensorflow::DT_FLOAT, std::move(scale_values),
                 scales);
}

// The shape of a stored-weights Dequantize's values: its qint8 Const's, or
// the int8 tensor's that an Int8Bitcast reads, when inference knows it all.
std::optional<std::vector<int64_t>> StoredShape(const NodeDef* constant, const NodeDef* bitcast,
                                                const GraphShapes& shapes) {
  if (constant != nullptr) return DimsOf(constant->attr().at("value").tensor().tensor_shape());
  std::optional<std::vector<int64_t>> dims = shapes.Output(bitcast->name(), 0);
  if (dims && std::any_of(dims->begin(), dims->end(), [](int64_t d) { return d < 0; }))
    return std::nullopt;
  return dims;
}

}  // namespace

std::vector<float> ScaledScales(const NodeDef& dequantize, const NodeDef& min, const NodeDef& max,
                                size_t channels) {
  const std::vector<float> lows = FloatValues(min, channels), highs = FloatValues(max, channels);
  if (lows.empty() || highs.empty()) return {};
  const float lowest = AttrOf(dequantize, "narrow_range").b() ? -127.f : -128.f;
  std::vector<float> scales(channels);
  for (size_t c = 0; c < channels; ++c) scales[c] = std::max(lows[c] / lowest, highs[c] / 127.f);
  return scales;
}

bool IsScaledInt8Dequantize(const NodeDef& node, bool per_tensor) {
  const auto attr = [&](const char* name) { return AttrOf(node, name); };
  return node.op() == "Dequantize" && node.input_size() >= 3 &&
         attr("T").type() == tensorflow::DT_QINT8 && attr("mode").s() == "SCALED" &&
         (attr("dtype").type() == tensorflow::DT_FLOAT ||
          attr("dtype").type() == tensorflow::DT_INVALID) &&
         (!per_tensor || attr("axis").i() < 0);
}

const NodeDef* Int8Bitcast(const NodeIndex& nodes, const std::string& tensor) {
  const NodeDef* bitcast = nodes.Producer(tensor, "Bitcast");
  if (bitcast == nullptr || bitcast->input_size() < 1 ||
      AttrOf(*bitcast, "T").type() != tensorflow::DT_INT8 ||
      AttrOf(*bitcast, "type").type() != tensorflow::DT_QINT8)
    return nullptr;
  return bitcast;
}

bool AddStoredInt8Weights(tensorflow::GraphDef& graph, const NodeIndex& nodes,
                          const GraphShapes& shapes, const NodeDef& dequantize,
                          int64_t channel_axis, const ops::QuantizableOp& quantizable,
                          const NodeDef& user, std::string& weights, std::string& scales) {
  if (!IsScaledInt8Dequantize(dequantize, false)) return false;
  const NodeDef* q = nodes.Producer(dequantize.input(0), "Const");
  const NodeDef* bitcast = q ? nullptr : Int8Bitcast(nodes, dequantize.input(0));
  const NodeDef* min = nodes.Producer(dequantize.input(1), "Const");
  const NodeDef* max = nodes.Producer(dequantize.input(2), "Const");
  if (!(q || bitcast) || !min || !max) return false;
  const std::optional<std::vector<int64_t>> shape = StoredShape(q, bitcast, shapes);
  if (!shape) return false;
  const int64_t rank = static_cast<int64_t>(shape->size());
  if (quantizable.weight_rank && rank != quantizable.weight_rank) return false;
  if (quantizable.depthwise && !IsMultiplierOne(*shape)) return false;
  const int64_t axis = std::max<int64_t>(AttrOf(dequantize, "axis").i(), -1);
  const int64_t wanted = channel_axis < 0 ? channel_axis + rank : channel_axis;
  if (axis >= rank || (axis != -1 && axis != wanted)) return false;
  const size_t channels = axis == -1 ? 1 : static_cast<size_t>((*shape)[axis]);
  const std::vector<float> channel_scales = ScaledScales(dequantize, *min, *max, channels);
  if (channel_scales.empty()) return false;
  tensorflow::TensorProto scale_values;
  scale_values.set_dtype(tensorflow::DT_FLOAT);
  scale_values.mutable_tensor_shape()->add_dim()->set_size(static_cast<int64_t>(channels));
  for (float scale : channel_scales) scale_values.add_float_val(scale);

  if (bitcast != nullptr) {  // the int8 tensor itself, where it lives
    weights = bitcast->input(0);
    AddWeightConst(graph, user, "weight_scales", tensorflow::DT_FLOAT, std::move(scale_values),
                   scales);
    return true;
  }
  tensorflow::TensorProto s8_values = q->attr().at("value").tensor();  // the same bytes, as int8
  s8_values.set_dtype(tensorflow::DT_INT8);
  AddWeightConsts(graph, user, std::move(s8_values), std::move(scale_values), weights, scales);
  return true;
}

bool AddQuantizedConstWeights(tensorflow::GraphDef& graph, const NodeDef* constant,
                              int64_t channel_axis, bool depthwise, const NodeDef& user,
                              std::string& weights, std::string& scales) {
  if (constant == nullptr || AttrOf(*constant, "dtype").type() != tensorflow::DT_FLOAT)
    return false;
  const tensorflow::TensorShapeProto& shape = AttrOf(*constant, "value").tensor().tensor_shape();
  const std::optional<ops::WeightChannels> layout =
      ops::WeightChannelsOf(DimsOf(shape), channel_axis);
  if (!layout) return false;
  const std::vector<float> w = FloatValues(*constant, static_cast<size_t>(layout->count));
  if (w.empty()) return false;
  std::string q(static_cast<size_t>(layout->count), '\0');
  tensorflow::TensorProto scale_values;
  scale_values.set_dtype(tensorflow::DT_FLOAT);
  scale_values.mutable_tensor_shape()->add_dim()->set_size(layout->channels);
  scale_values.mutable_float_val()->Resize(static_cast<int>(layout->channels), 0.f);
  if (!ops::QuantizeWeightsPerChannel(w.data(), *layout, ops::WeightLevels(depthwise),
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

bool IsFilterOfMultiplierOne(const NodeDef* constant) {
  return constant != nullptr && AttrOf(*constant, "dtype").type() == tensorflow::DT_FLOAT &&
         IsMultiplierOne(DimsOf(AttrOf(*constant, "value").tensor().tensor_shape()));
}

}  // namespace int8flow::graph::int8_rewrite
