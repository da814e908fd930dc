// Float <-> u8/s8 conversion, in vectorized OpenMP loops: memory-bound
// element-wise work that needs no oneDNN primitive.
//
// Rounding and non-finite values, the same in every mode:
//   q = clamp(round_half_even(x * (1 / scale)) + zero_point, qmin, qmax),
//   NaN becomes the zero point (0.0), +-Inf the end of the range. A dynamic
//   range is the values' [min, max], widened to hold 0 so that 0.0 is exact:
//   u8 maps it onto [0, 255] with a zero point, s8 onto [-127, 127]
//   symmetrically (zero point 0). An all-zero or empty tensor gets scale 1.
//   A tensor holding NaN or +-Inf gets scale NaN: it has no finite range, and
//   the quantized ops and Dequantize turn that scale into NaN outputs, so a
//   non-finite input is never silently replaced by a finite result.
#include "kernels/quantize.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

#include "kernels/onednn_util.h"
#include "kernels/quantization.h"
#include "kernels/vector_loops.h"
#include "ops/int8_math.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

struct Range {
  float min = 0.f, max = 0.f;
  bool finite = true;  // no NaN or +-Inf among the values
};

// The finite values' range, with 0 in it, and whether all values are finite.
INT8FLOW_VECTOR_CLONES Range RangeOf(const float* x, int64_t n) {
  float lo = 0.f, hi = 0.f;
  int nonfinite = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : nonfinite)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const bool finite = (v >= -FLT_MAX) & (v <= FLT_MAX);
    nonfinite |= !finite;
    lo = std::min(lo, finite ? v : 0.f);
    hi = std::max(hi, finite ? v : 0.f);
  }
  return {lo, hi, nonfinite == 0};
}

Range ValueRange(const float* x, int64_t n) {
  std::vector<Range> parts(omp_get_max_threads());
  ForChunks(n, [&](int64_t begin, int64_t end, int part) {
    parts[part] = RangeOf(x + begin, end - begin);
  });
  Range all;
  for (const Range& r : parts)
    all = {std::min(all.min, r.min), std::max(all.max, r.max), all.finite && r.finite};
  return all;
}

template <class Q>
INT8FLOW_VECTOR_CLONES void QuantizeRange(const float* x, int64_t n, float scale,
                                          int32_t zero_point, Q* q) {
  constexpr float qmin = std::is_signed_v<Q> ? -128.f : 0.f;
  constexpr float qmax = std::is_signed_v<Q> ? 127.f : 255.f;
  const float zp = static_cast<float>(zero_point);
  // Clamped to [qmin - zp, qmax - zp] first (integer bounds, so clamping
  // and rounding commute), then adding and subtracting 1.5 * 2^23 rounds
  // half to even (the FP default mode), as nearbyint does, but vectorizes.
  constexpr float kRound = 12582912.f;
  const float lo = qmin - zp, hi = qmax - zp;
  const float inverse_scale = 1.f / scale;  // a multiply per element, not a divide
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * inverse_scale;
    const float r = (std::min(std::max(v, lo), hi) + kRound) - kRound + zp;
    q[i] = static_cast<Q>(static_cast<int32_t>(v == v ? r : zp));  // NaN: the zero point
  }
}

template <class Q>
void QuantizeValues(const float* x, int64_t n, float scale, int32_t zero_point, Q* q) {
  ForChunks(n, [&](int64_t begin, int64_t end, int) {
    QuantizeRange(x + begin, end - begin, scale, zero_point, q + begin);
  });
}

template <class Q>
INT8FLOW_VECTOR_CLONES void DequantizeRange(const Q* q, int64_t n, float scale, int32_t zero_point,
                                            float* y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zero_point) * scale;
}

template <class Q>
void DequantizeValues(const Q* q, int64_t n, float scale, int32_t zero_point, float* y) {
  ForChunks(n, [&](int64_t begin, int64_t end, int) {
    DequantizeRange(q + begin, end - begin, scale, zero_point, y + begin);
  });
}

bool IsUint8(TF_DataType dtype) { return dtype == TF_UINT8; }

class QuantizeKernel {
 public:
  explicit QuantizeKernel(TF_OpKernelConstruction* ctx)
      : dtype_(GetTypeAttr(ctx, "T")),
        dynamic_(GetStringAttr(ctx, "mode") == "dynamic"),
        static_scale_(GetFloatAttr(ctx, "static_scale")),
        static_zero_point_(GetIntAttr(ctx, "static_zero_point")) {
    Require(dtype_ == TF_UINT8 || dtype_ == TF_INT8, "T must be uint8 or int8");
    if (dynamic_) return;
    RequireScale(static_scale_, "static_scale");
    RequireZeroPoint(static_zero_point_, IsUint8(dtype_), "static_zero_point");
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    const int64_t n = static_cast<int64_t>(TF_TensorElementCount(x.get()));
    const float* values = Data<float>(x.get());
    float scale = static_scale_;
    int32_t zero_point = static_cast<int32_t>(static_zero_point_);
    if (dynamic_) DynamicParameters(values, n, scale, zero_point);
    OwnedTensor y = ctx.allocate_output(0, shape, dtype_);
    if (IsUint8(dtype_))
      QuantizeValues(values, n, scale, zero_point, Data<uint8_t>(y.get()));
    else
      QuantizeValues(values, n, scale, zero_point, Data<int8_t>(y.get()));
    *Data<float>(ctx.allocate_output(1, {}, TF_FLOAT).get()) = scale;
    *Data<int32_t>(ctx.allocate_output(2, {}, TF_INT32).get()) = zero_point;
  }

 private:
  void DynamicParameters(const float* x, int64_t n, float& scale, int32_t& zero_point) const {
    const Range r = ValueRange(x, n);
    if (!r.finite) {
      scale = std::numeric_limits<float>::quiet_NaN();
      zero_point = 0;
      return;
    }
    if (IsUint8(dtype_)) {
      scale = r.max / 255.f - r.min / 255.f;  // (max - min) could overflow to inf
      zero_point = scale > 0 ? static_cast<int32_t>(std::nearbyint(-r.min / scale)) : 0;
      zero_point = std::clamp(zero_point, 0, 255);
    } else {
      scale = std::max(r.max, -r.min) / 127.f;
      zero_point = 0;
    }
    // A range too small to divide by (all zeros, or denormals) has no scale.
    if (!(scale >= FLT_MIN)) scale = 1.f;
  }

  const TF_DataType dtype_;
  const bool dynamic_;
  const float static_scale_;
  const int64_t static_zero_point_;
};

class DequantizeKernel {
 public:
  explicit DequantizeKernel(TF_OpKernelConstruction* ctx) : dtype_(GetTypeAttr(ctx, "T")) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), scale_t = ctx.input(1), zero_point_t = ctx.input(2);
    Require(
        TF_TensorElementCount(scale_t.get()) == 1 && TF_TensorElementCount(zero_point_t.get()) == 1,
        [&] {
          return "scale and zero_point must be single values, got shapes " +
                 ShapeString(Shape(scale_t.get())) + " and " +
                 ShapeString(Shape(zero_point_t.get()));
        });
    const float scale = *Data<float>(scale_t.get());
    const int32_t zero_point = *Data<int32_t>(zero_point_t.get());
    // NaN is the scale of a dynamic quantize of non-finite values: NaN out.
    Require(std::isfinite(scale) || std::isnan(scale),
            [&] { return "scale must be finite or NaN, got " + std::to_string(scale); });
    RequireZeroPoint(zero_point, IsUint8(dtype_), "zero_point");
    const int64_t n = static_cast<int64_t>(TF_TensorElementCount(x.get()));
    OwnedTensor y = ctx.allocate_output(0, Shape(x.get()), TF_FLOAT);
    if (IsUint8(dtype_))
      DequantizeValues(Data<uint8_t>(x.get()), n, scale, zero_point, Data<float>(y.get()));
    else
      DequantizeValues(Data<int8_t>(x.get()), n, scale, zero_point, Data<float>(y.get()));
  }

 private:
  const TF_DataType dtype_;
};

// Symmetric per-channel s8 weights and their scales, cached for the weight
// buffer they came from: holding that buffer's tensor means the same address
// is the same values (packed_weights.h), so a hit is never stale.
class QuantizeWeightsKernel {
 public:
  explicit QuantizeWeightsKernel(TF_OpKernelConstruction* ctx)
      : channel_axis_(GetIntAttr(ctx, "channel_axis")),
        levels_(ops::WeightLevels(/*depthwise=*/false)) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor w = ctx.input(0);
    std::lock_guard<std::mutex> lock(mutex_);
    if (source_ && TF_TensorData(source_.get()) == TF_TensorData(w.get()) &&
        Shape(source_.get()) == Shape(w.get())) {
      ctx.set_output(0, q_.get());
      ctx.set_output(1, scales_.get());
      return;
    }
    Quantize(ctx, std::move(w));  // allocates the outputs, and keeps them
  }

 private:
  void Quantize(const KernelContext& ctx, OwnedTensor w) {
    const auto shape = Shape(w.get());
    const std::optional<ops::WeightChannels> layout = ops::WeightChannelsOf(shape, channel_axis_);
    Require(layout.has_value(), [&] {
      return "channel_axis " + std::to_string(channel_axis_) + " is outside the weights' shape " +
             ShapeString(shape);
    });
    OwnedTensor q = ctx.allocate_output(0, shape, TF_INT8);
    OwnedTensor scales = ctx.allocate_output(1, {layout->channels}, TF_FLOAT);
    const std::string error = ops::QuantizeWeightsPerChannel(
        Data<float>(w.get()), *layout, levels_, Data<int8_t>(q.get()), Data<float>(scales.get()));
    Require(error.empty(), error);
    source_ = std::move(w);
    q_ = std::move(q);
    scales_ = std::move(scales);
    account_.Set(1, layout->count + layout->channels * static_cast<int64_t>(sizeof(float)));
  }

  const int64_t channel_axis_;
  const float levels_;
  std::mutex mutex_;
  OwnedTensor source_, q_, scales_;
  CacheAccount account_{runtime::CacheKind::kQuantizedWeights};
};

}  // namespace

// Zero points are int32 scalars in host memory, where TF keeps int32 Consts:
// a chained layer reads a Const one (graph/int8_chains.cc) with no copy per call.
// The labelled Quantize reads a graph input where TF's CPU left it: no copy
// to QCPU, and no wait on TF's event manager for one (~0.1 ms a call).
void RegisterQuantizeKernels(const char* device_type, TF_Status* status) {
  for (TF_DataType dtype : {TF_UINT8, TF_INT8}) {
    RegisterKernel<QuantizeKernel>({ops::kQuantize, {{"T", dtype}}, {"zero_point"}}, device_type,
                                   status);
    if (TF_GetCode(status) != TF_OK) return;
    RegisterKernel<QuantizeKernel>(
        {ops::kQuantize, {{"T", dtype}}, {"x", "zero_point"}, ops::kHostInputLabel}, device_type,
        status);
    if (TF_GetCode(status) != TF_OK) return;
    RegisterKernel<DequantizeKernel>({ops::kDequantize, {{"T", dtype}}, {"zero_point"}},
                                     device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  RegisterKernel<QuantizeWeightsKernel>({ops::kQuantizeWeights, {}}, device_type, status);
}

}  // namespace int8flow::kernels
