#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// ResourceScatterAdd, ResourceScatterSub and ResourceScatterUpdate of float
// variables on `device_type`: the sparse updates SGD, RMSprop and Adagrad make
// to an Embedding's table, which QCPU had no kernel for.
void RegisterResourceScatterKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
