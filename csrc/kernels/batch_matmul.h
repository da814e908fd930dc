#pragma once

#include <optional>
#include <string>

#include "kernels/onednn_util.h"
#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// BatchMatMulV2, BatchMatMul (float32) and _QcpuQuantizedBatchMatMul on
// `device_type`.
void RegisterBatchMatMulKernels(const char* device_type, TF_Status* status);

// ---- the batched matmul step, shared with Einsum (einsum.cc) -----------------

struct MatMulStep {
  dnnl::matmul primitive;
  dnnl::memory::desc a, b, dst, scratchpad;  // a and b as the tensors hold them
  dnnl::memory::desc packed_b;               // set when b is to be packed
  // a and b into the type the primitive reads (bf16.h), where it differs.
  std::optional<ReorderStep> a_reorder, b_reorder;
  std::string impl;  // oneDNN's implementation, as "brg:avx512_core"
};

// `pack_b`: let oneDNN choose b's layout; the caller packs b into packed_b.
// `bias`: none when empty. `bf16`: f32 a and b are read as bf16 (bf16.h).
MatMulStep MakeMatMul(const dnnl::memory::desc& a, const dnnl::memory::desc& b,
                      const dnnl::memory::desc& dst, bool pack_b = false,
                      const dnnl::primitive_attr& attr = UserScratchpadAttr(),
                      const dnnl::memory::desc& bias = {}, bool bf16 = false);

}  // namespace int8flow::kernels
