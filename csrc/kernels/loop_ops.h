#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// LogicalAnd/Or/Not, ZerosLike, ConcatV2, SigmoidGrad, TanhGrad, BiasAddGrad, Split, SplitV,
// Tile of bools and Cast on `device_type`: what recurrent layers' loop bodies and optimizers'
// cond branches need on QCPU.
void RegisterLoopKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
