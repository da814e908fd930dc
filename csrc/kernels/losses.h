#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// SparseSoftmaxCrossEntropyWithLogits on `device_type`: Keras' sparse
// categorical cross-entropy, in every classifier's training step.
void RegisterLossKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
