// RAII and shape helpers for TF_Tensor, shared by every kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tensorflow/c/tf_tensor.h"

namespace int8flow {

struct TfTensorDeleter {
  void operator()(TF_Tensor* t) const { TF_DeleteTensor(t); }
};
// An owned TF_Tensor: kernels get new references from TF_GetInput and
// TF_AllocateOutput, and must drop each one.
using OwnedTensor = std::unique_ptr<TF_Tensor, TfTensorDeleter>;

inline std::vector<int64_t> Shape(const TF_Tensor* t) {
  std::vector<int64_t> dims(TF_NumDims(t));
  for (int i = 0; i < static_cast<int>(dims.size()); ++i) dims[i] = TF_Dim(t, i);
  return dims;
}

template <typename T>
T* Data(const TF_Tensor* t) {
  return static_cast<T*>(TF_TensorData(t));
}

}  // namespace int8flow
