#pragma once

#include "tensorflow/c/tf_status.h"

namespace int8flow::kernels {

// _QcpuLstmCell and _QcpuGruCell (ops/op_names.h), float32, on `device_type`.
void RegisterRecurrentCellKernels(const char* device_type, TF_Status* status);

}  // namespace int8flow::kernels
