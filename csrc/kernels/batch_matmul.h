#pragma once

#include <string>

#include "kernels/onednn_util.h"
#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// BatchMatMulV2, BatchMatMul (float32) and _QcpuQuantizedBatchMatMul on
// `device_type`.
void RegisterBatchMatMulKernels(const char* device_type, TF_Status* status);

// ---- the batched matmul step, shared with Einsum (einsum.cc) -----------------

// Row-major strides of `dims`.
dnnl::memory::dims DenseStrides(const dnnl::memory::dims& dims);

struct MatMulStep {
  dnnl::matmul primitive;
  dnnl::memory::desc a, b, dst, scratchpad;
  dnnl::memory::desc packed_b;  // set when b is to be packed
  std::string impl;             // oneDNN's implementation, as "brg:avx512_core"
};

// `pack_b`: let oneDNN choose b's layout; the caller packs b into packed_b.
// `bias`: none when empty.
MatMulStep MakeMatMul(const dnnl::memory::desc& a, const dnnl::memory::desc& b,
                      const dnnl::memory::desc& dst, bool pack_b = false,
                      const dnnl::primitive_attr& attr = UserScratchpadAttr(),
                      const dnnl::memory::desc& bias = {});

}  // namespace int8flow::kernels
