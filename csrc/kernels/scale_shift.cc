// _QcpuScaleShift (ops/op_names.h): y = act(x * scale + offset) per channel
// (the last dim), in one pass, in place when TF can forward x. Keras 3 runs
// an inference BatchNormalization as x * inv + (beta - mean * inv), and a
// ReLU after it: three passes over the tensor on TF's CPU. Our loop, not
// oneDNN's binary with post-ops, which took 0.49 ms for [32768, 32] (its
// per-row broadcast of a short vector) where the three ops took 0.28. TF's
// roundings (a multiply, then an add: no FMA, -ffp-contract=off) and TF's
// standalone activations, NaN kept: the same answer as the unfused ops.
#include "kernels/scale_shift.h"

#include <string>
#include <vector>

#include "kernels/fused_ops.h"
#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

// The activations the fusion rows take (graph/fusion_patterns.cc).
enum class Activation { kNone, kRelu, kRelu6, kLeakyRelu };

Activation ActivationOf(const std::vector<std::string>& fused_ops) {
  const std::string last = fused_ops.empty() ? "" : fused_ops.back();
  if (last == "Relu") return Activation::kRelu;
  if (last == "Relu6") return Activation::kRelu6;
  if (last == "LeakyRelu") return Activation::kLeakyRelu;
  Require(last == "BiasAdd" || last == "Scale",
          "ScaleShift's fused_ops take Scale, BiasAdd and Relu, Relu6 or LeakyRelu, got '" + last +
              "'");
  return Activation::kNone;
}

// Rows of `channels`; each comparison is false for NaN, which passes through.
template <Activation kAct>
INT8FLOW_VECTOR_CLONES void ScaleShiftRows(const float* x, float* y, int64_t rows, int64_t channels,
                                           const float* scale, const float* offset, float alpha) {
  for (int64_t r = 0; r < rows; ++r, x += channels, y += channels)
    for (int64_t c = 0; c < channels; ++c) {
      float v = x[c] * scale[c] + offset[c];
      if constexpr (kAct == Activation::kRelu || kAct == Activation::kRelu6) v = v < 0.f ? 0.f : v;
      if constexpr (kAct == Activation::kRelu6) v = v > 6.f ? 6.f : v;
      if constexpr (kAct == Activation::kLeakyRelu) v = v < 0.f ? v * alpha : v;
      y[c] = v;
    }
}

using RowsFn = void (*)(const float*, float*, int64_t, int64_t, const float*, const float*, float);

RowsFn RowsFor(Activation a) {
  switch (a) {
    case Activation::kRelu: return &ScaleShiftRows<Activation::kRelu>;
    case Activation::kRelu6: return &ScaleShiftRows<Activation::kRelu6>;
    case Activation::kLeakyRelu: return &ScaleShiftRows<Activation::kLeakyRelu>;
    case Activation::kNone: break;
  }
  return &ScaleShiftRows<Activation::kNone>;
}

class ScaleShiftKernel {
 public:
  explicit ScaleShiftKernel(TF_OpKernelConstruction* ctx)
      : fused_(ctx, /*allow_scale=*/true),
        rows_(RowsFor(ActivationOf(GetStringListAttr(ctx, "fused_ops")))),
        alpha_(GetFloatAttr(ctx, "leakyrelu_alpha")) {
    Require(!fused_.has_addend(), "ScaleShift's fused_ops take no Add");
  }

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 1);
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    Require(!shape.empty(), "x must have at least one dimension");
    const int64_t channels = shape.back();
    std::vector<float> scale, offset;
    fused_.FoldAffine(args, channels, scale, offset);
    if (scale.empty()) scale.assign(channels, 1.f);
    if (offset.empty()) offset.assign(channels, 0.f);
    OwnedTensor y = ctx.forward_input_or_allocate_output(shape, 0, x);
    if (NumElements(shape) == 0) return;
    const float* in = Data<float>(x.get());
    float* out = Data<float>(y.get());
    ForRows(NumElements(shape) / channels, channels, [&](int64_t first, int64_t last, int) {
      rows_(in + first * channels, out + first * channels, last - first, channels, scale.data(),
            offset.data(), alpha_);
    });
  }

 private:
  const FusedOps fused_;
  const RowsFn rows_;
  const float alpha_;
};

}  // namespace

void RegisterScaleShiftKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<ScaleShiftKernel>({ops::kScaleShift}, device_type, status);
}

}  // namespace int8flow::kernels
