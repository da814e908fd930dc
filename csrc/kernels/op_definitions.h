// Our private ops: what the graph pass rewrites into. Their names start with
// _Qcpu, so they never collide with TF's or another plugin's.
#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// _QcpuFusedMatMul(a, b, args...): MatMul, then `fused_ops` in order:
//   "BiasAdd" (args[0], a vector of N), "Add" (the next arg, shaped like the
//   product), and at most one activation from activations.h.
inline constexpr char kFusedMatMul[] = "_QcpuFusedMatMul";

void RegisterOpDefinitions(TF_Status* status);

}  // namespace int8flow::kernels
