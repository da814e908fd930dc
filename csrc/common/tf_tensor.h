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

// The values of an int32 or int64 tensor (shape arguments, axes, paddings),
// widened to int64; empty for any other dtype.
inline std::vector<int64_t> IntValues(const TF_Tensor* t) {
  const int64_t n = static_cast<int64_t>(TF_TensorElementCount(t));
  if (TF_TensorType(t) == TF_INT32) {
    const int32_t* v = Data<int32_t>(t);
    return std::vector<int64_t>(v, v + n);
  }
  if (TF_TensorType(t) == TF_INT64) {
    const int64_t* v = Data<int64_t>(t);
    return std::vector<int64_t>(v, v + n);
  }
  return {};
}

}  // namespace int8flow
