#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// LogicalAnd/Or/Not, ZerosLike, ConcatV2, SigmoidGrad, TanhGrad, BiasAddGrad, Split and SplitV on
// `device_type`: what recurrent layers' loop bodies need on QCPU.
void RegisterLoopKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
