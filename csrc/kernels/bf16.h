// Opt-in bf16 for the float MatMul, BatchMatMul, Einsum and convolutions
// (INT8FLOW_PRECISION=bf16, int8flow.enable_bf16(); runtime.h): the
// primitive reads bf16 inputs and weights, sums in f32 and writes f32, at
// twice f32's rate where the CPU has AVX512-BF16 or AMX. Weights are packed
// to bf16 once (packed_weights.h); activations go through a ReorderStep
// built with the primitive, at each call. INT8 kernels are unaffected.
#pragma once

#include "kernels/onednn_util.h"
#include "runtime/runtime.h"

namespace int8flow::kernels {

// Whether this call of a float kernel runs bf16. Kernels key their
// primitive caches by it, so enable_bf16() applies at the next call.
inline bool Bf16Call(bool quantized) { return !quantized && runtime::Bf16Enabled(); }

// `type` as a bf16 primitive reads it: f32 becomes bf16 when `bf16`.
dnnl::memory::data_type ComputeType(dnnl::memory::data_type type, bool bf16);
// `desc`, dims and strides kept, with ComputeType elements.
dnnl::memory::desc ComputeDesc(const dnnl::memory::desc& desc, bool bf16);

// `build(bf16)`; where oneDNN has no bf16 primitive for the shape (it
// throws building one), `build(false)`, with one warning naming `op`.
template <class Build>
auto BuildPreferringBf16(bool bf16, const char* op, Build build) {
  if (bf16) {
    try {
      return build(true);
    } catch (const dnnl::error&) {
      runtime::WarnOnce(std::string("oneDNN has no bf16 ") + op +
                        " for some shapes here; they run f32");
    }
  }
  return build(false);
}

}  // namespace int8flow::kernels
