#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// TensorListGetItem and TensorListPopBack of bools on `device_type`: a masked
// recurrent layer's loops read its mask so, and QCPU had no kernel for them
// (TF has float and int ones).
void RegisterTensorListKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
