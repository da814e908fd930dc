// The INT8 side of a quantized MatMul or convolution node
// (_QcpuQuantizedMatMul, _QcpuQuantizedConv2D, ...): which of its inputs hold
// the scales and zero points, and how they reach oneDNN. The float kernels
// hold one too, disabled, so one kernel class serves both precisions.
//
// oneDNN v3 takes every scale and zero point as a runtime argument, so one
// primitive per shape serves all calls whatever the dynamic ranges:
//   y_f32 = src_scale * weight_scale[c] * sum((src - src_zp) * w) + bias[c],
//   then the fused post-ops, then, for an int8 output, y / out_scale + out_zp.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "kernels/kernel_registration.h"
#include "kernels/packed_weights.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace int8flow::kernels {

struct ChannelConstants;  // channel_constants.h

class QuantizedOperands {
 public:
  // Enabled when the node has the quantized ops' "Tin" attr. `convolution`:
  // oneDNN keeps a convolution on s8 activations from saturating by itself
  // (it halves the weights in its reorder), so only u8 ones need 7 bits.
  // `depthwise`: no channel sums, so no int16 pair sums either: 8 bits.
  QuantizedOperands(TF_OpKernelConstruction* ctx, bool convolution, bool depthwise = false);

  bool enabled() const { return enabled_; }
  // Inputs after the two operands: the activations' scale and zero point,
  // and the weights' scales.
  int num_inputs() const { return enabled_ ? 3 : 0; }
  dnnl::memory::data_type src_type() const { return src_type_; }
  dnnl::memory::data_type weights_type() const;
  dnnl::memory::data_type dst_type() const { return dst_type_; }
  TF_DataType out_dtype() const;

  // One call's values.
  struct Values {
    float src_scale = 1.f;
    int32_t src_zero_point = 0;
    std::vector<float> weight_scales;
    dnnl::memory::desc weight_scales_desc;  // of weight_scales, kept across calls (ArgMemory)
    float dst_scale = 1.f;
    int32_t dst_zero_point = 0;
    bool nonfinite_src = false;  // src_scale is NaN: the activations held NaN or +-Inf
  };
  // Reads the activations' scale and zero point, inputs `first` and
  // `first + 1`, and takes the weights' scales from `constants` (WeightScales
  // of input `first + kWeightScalesOffset`). Empty values for a float op. An
  // activations' scale of NaN (the dynamic scale of non-finite values) sets
  // `nonfinite_src`; it is an error for an int8 output, which cannot hold NaN.
  Values Read(const KernelContext& ctx, int first, const ChannelConstants& constants) const;
  static constexpr int kWeightScalesOffset = 2;
  // The weights' scales input `scales`, one per channel or one for all,
  // checked, each times a folded per-channel `channel_scale` (a BatchNorm's)
  // when there is one.
  std::vector<float> WeightScales(const TF_Tensor* scales, int64_t channels,
                                  const std::vector<float>& channel_scale) const;
  // The weights packed for the node's primitive, from `cache`: a float op's
  // with `float_scale` folded in; a quantized op's s8 ones at 7 bits where
  // the CPU needs it (PackedWeights::GetInt8), undone in `values`.
  dnnl::memory PackWeights(PackedWeights& cache, OwnedTensor weights,
                           const std::vector<float>& float_scale, const dnnl::memory::desc& user,
                           const dnnl::memory::desc& packed, Values& values) const;
  // Which zero points a primitive for `values` takes, as kSrcZeroPoint |
  // kDstZeroPoint bits: only the nonzero ones. A zero one is the common case
  // (activations after a ReLU), and with any zero point oneDNN 3.2 leaves its
  // brgemm convolutions for older AMX kernels, measured 1.3-2x slower. Part
  // of the primitive cache key.
  static constexpr int kSrcZeroPoint = 1, kDstZeroPoint = 2;
  int ZeroPointsUsed(const Values& values) const;
  // Scale masks, and zero-point masks as ZeroPointsUsed says; `weights_mask`:
  // oneDNN's mask selecting the output-channel dim of the weights.
  void Configure(dnnl::primitive_attr& attr, int weights_mask, const Values& values) const;
  // Adds the runtime scale and zero-point arguments; they point into
  // `values`, which must outlive the execution.
  void AddArgs(Values& values, std::unordered_map<int, dnnl::memory>& args) const;
  // Fills `out` with what an all-zero result with no post-ops becomes.
  void FillZero(TF_Tensor* out) const;
  // Fills `out` with NaN when the activations were not finite, and says so:
  // the kernel then skips its primitive. Every element, because one NaN or
  // Inf in a tensor leaves no finite scale to quantize the rest with.
  bool FillNonFinite(const Values& values, TF_Tensor* out) const;

 private:
  bool enabled_ = false;
  dnnl::memory::data_type src_type_ = dnnl::memory::data_type::f32;
  dnnl::memory::data_type dst_type_ = dnnl::memory::data_type::f32;
  bool seven_bit_weights_ = false;  // see PackWeights
  float out_scale_ = 1.f;
  int32_t out_zero_point_ = 0;
};

// TF's dtype for a oneDNN data type of ours (f32, u8, s8), and back; another
// dtype is a KernelError.
TF_DataType TfDtype(dnnl::memory::data_type type);
dnnl::memory::data_type OneDnnType(TF_DataType dtype);

// KernelErrors unless `scale` is finite and > 0, or `zero_point` fits u8
// (`u8`) or s8; `what` names the value in the message.
void RequireScale(float scale, const char* what);
void RequireZeroPoint(int64_t zero_point, bool u8, const char* what);

}  // namespace int8flow::kernels
