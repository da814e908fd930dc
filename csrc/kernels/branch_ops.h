#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// int64 arithmetic and comparisons, float comparisons and Pow on
// `device_type`, below TF's CPU kernels' priority: for the conds of Keras
// optimizers, whose branches run on QCPU alone.
void RegisterBranchKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
