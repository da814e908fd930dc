#include "kernels/quantization.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/channel_constants.h"
#include "kernels/onednn_util.h"
#include "ops/int8_math.h"

namespace int8flow::kernels {

using dnnl::memory;

TF_DataType TfDtype(memory::data_type type) {
  switch (type) {
    case memory::data_type::u8: return TF_UINT8;
    case memory::data_type::s8: return TF_INT8;
    default: return TF_FLOAT;
  }
}

memory::data_type OneDnnType(TF_DataType dtype) {
  switch (dtype) {
    case TF_UINT8: return memory::data_type::u8;
    case TF_INT8: return memory::data_type::s8;
    case TF_FLOAT: return memory::data_type::f32;
    default:
      throw KernelError("unsupported dtype " + std::to_string(dtype) + " for a quantized op");
  }
}

namespace {

// A scalar input: its one value, or a clear error.
template <class T>
T ScalarInput(const KernelContext& ctx, int index, TF_DataType dtype, const char* what) {
  OwnedTensor t = ctx.input(index);
  Require(TF_TensorType(t.get()) == dtype && TF_TensorElementCount(t.get()) == 1, [&] {
    return std::string(what) + " must be a single " + (dtype == TF_FLOAT ? "float" : "int32") +
           ", got shape " + ShapeString(Shape(t.get()));
  });
  return *Data<T>(t.get());
}

}  // namespace

void RequireScale(float scale, const char* what) {
  Require(std::isfinite(scale) && scale > 0, [&] {
    return std::string(what) + " must be finite and > 0, got " + std::to_string(scale);
  });
}

void RequireZeroPoint(int64_t zero_point, bool u8, const char* what) {
  Require(zero_point >= (u8 ? 0 : -128) && zero_point <= (u8 ? 255 : 127), [&] {
    return std::string(what) + " " + std::to_string(zero_point) + " is outside the " +
           (u8 ? "uint8" : "int8") + " range";
  });
}

QuantizedOperands::QuantizedOperands(TF_OpKernelConstruction* ctx, bool convolution,
                                     bool depthwise) {
  if (!TF_OpKernelConstruction_HasAttr(ctx, "Tin", nullptr)) return;
  enabled_ = true;
  src_type_ = OneDnnType(GetTypeAttr(ctx, "Tin"));
  dst_type_ = OneDnnType(GetTypeAttr(ctx, "Tout"));
  out_scale_ = GetFloatAttr(ctx, "out_scale");
  const int64_t zero_point = GetIntAttr(ctx, "out_zero_point");
  if (dst_type_ != memory::data_type::f32) {
    RequireScale(out_scale_, "out_scale");
    RequireZeroPoint(zero_point, dst_type_ == memory::data_type::u8, "out_zero_point");
  }
  out_zero_point_ = static_cast<int32_t>(zero_point);
  seven_bit_weights_ =
      !ops::CpuHasVnni() && !depthwise && (!convolution || src_type_ == memory::data_type::u8);
}

memory::data_type QuantizedOperands::weights_type() const {
  return enabled_ ? memory::data_type::s8 : memory::data_type::f32;
}

TF_DataType QuantizedOperands::out_dtype() const { return TfDtype(dst_type_); }

int QuantizedOperands::ZeroPointsUsed(const Values& v) const {
  if (!enabled_) return 0;
  return (v.src_zero_point != 0 ? kSrcZeroPoint : 0) |
         (dst_type_ != memory::data_type::f32 && v.dst_zero_point != 0 ? kDstZeroPoint : 0);
}

void QuantizedOperands::Configure(dnnl::primitive_attr& attr, int weights_mask,
                                  const Values& values) const {
  if (!enabled_) return;
  const int zero_points = ZeroPointsUsed(values);
  attr.set_scales_mask(DNNL_ARG_SRC, 0);
  if (zero_points & kSrcZeroPoint) attr.set_zero_points_mask(DNNL_ARG_SRC, 0);
  attr.set_scales_mask(DNNL_ARG_WEIGHTS, weights_mask);
  if (dst_type_ != memory::data_type::f32) attr.set_scales_mask(DNNL_ARG_DST, 0);
  if (zero_points & kDstZeroPoint) attr.set_zero_points_mask(DNNL_ARG_DST, 0);
}

dnnl::memory QuantizedOperands::PackWeights(PackedWeights& cache, OwnedTensor weights,
                                            const std::vector<float>& float_scale,
                                            const memory::desc& user, const memory::desc& packed,
                                            Values& values) const {
  if (!enabled_) return cache.Get(std::move(weights), float_scale, user, packed);
  // Without VNNI a u8·s8 pair can saturate its int16 sum: oneDNN leaves
  // that to the caller for matmul and for convolutions on u8 (measured: a
  // 20% error), so such weights run at 7 bits, as ONNX Runtime's reduce_range.
  const auto [memory, factor] = cache.GetInt8(std::move(weights), seven_bit_weights_, user, packed);
  for (float& scale : values.weight_scales) scale /= factor;
  return memory;
}

QuantizedOperands::Values QuantizedOperands::Read(const KernelContext& ctx, int first,
                                                  const ChannelConstants& constants) const {
  Values v;
  if (!enabled_) return v;
  v.src_scale = ScalarInput<float>(ctx, first, TF_FLOAT, "the activations' scale");
  v.nonfinite_src = std::isnan(v.src_scale);
  Require(
      !v.nonfinite_src || dst_type_ == memory::data_type::f32,
      "the activations hold NaN or Inf (their scale is NaN): an int8 output cannot represent that");
  if (!v.nonfinite_src) RequireScale(v.src_scale, "the activations' scale");
  v.src_zero_point = ScalarInput<int32_t>(ctx, first + 1, TF_INT32, "the activations' zero point");
  RequireZeroPoint(v.src_zero_point, src_type_ == memory::data_type::u8,
                   "the activations' zero point");
  v.weight_scales = constants.weight_scales;
  v.weight_scales_desc = constants.weight_scales_desc;
  v.dst_scale = out_scale_;
  v.dst_zero_point = out_zero_point_;
  return v;
}

std::vector<float> QuantizedOperands::WeightScales(const TF_Tensor* scales, int64_t channels,
                                                   const std::vector<float>& channel_scale) const {
  const int64_t count = static_cast<int64_t>(TF_TensorElementCount(scales));
  Require(Shape(scales).size() <= 1 && (count == channels || count == 1), [&] {
    return "the weights' scales must be one per output channel (" + std::to_string(channels) +
           ") or a single one, got shape " + ShapeString(Shape(scales));
  });
  const float* s = Data<float>(scales);
  std::vector<float> result(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const float scale = s[count == 1 ? 0 : c];
    Require(std::isfinite(scale) && scale >= 0, [&] {
      return "the weights' scales must be finite and >= 0, got " + std::to_string(scale) +
             " for channel " + std::to_string(c);
    });
    result[c] = scale * (channel_scale.empty() ? 1.f : channel_scale[c]);
  }
  return result;
}

void QuantizedOperands::AddArgs(Values& v, std::unordered_map<int, memory>& args) const {
  if (!enabled_) return;
  // Kept for good: ArgMemory reuses memories per desc.
  static const memory::desc scalar_f32({1}, memory::data_type::f32, memory::format_tag::a);
  static const memory::desc scalar_s32({1}, memory::data_type::s32, memory::format_tag::a);
  const int zero_points = ZeroPointsUsed(v);
  args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, ArgMemory(scalar_f32, &v.src_scale));
  if (zero_points & kSrcZeroPoint)
    args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
                 ArgMemory(scalar_s32, &v.src_zero_point));
  args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS,
               ArgMemory(v.weight_scales_desc, v.weight_scales.data()));
  if (dst_type_ != memory::data_type::f32)
    args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, ArgMemory(scalar_f32, &v.dst_scale));
  if (zero_points & kDstZeroPoint)
    args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST,
                 ArgMemory(scalar_s32, &v.dst_zero_point));
}

bool QuantizedOperands::FillNonFinite(const Values& values, TF_Tensor* out) const {
  if (!values.nonfinite_src) return false;
  float* y = static_cast<float*>(TF_TensorData(out));
  std::fill(y, y + TF_TensorElementCount(out), std::numeric_limits<float>::quiet_NaN());
  return true;
}

void QuantizedOperands::FillZero(TF_Tensor* out) const {
  const int value = dst_type_ == memory::data_type::f32 ? 0 : out_zero_point_;
  std::memset(TF_TensorData(out), value & 0xff, TF_TensorByteSize(out));
}

}  // namespace int8flow::kernels
