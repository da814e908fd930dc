// TensorListGetItem and TensorListPopBack of bools, which TF registers no
// device kernel for.
//
// A masked Keras RNN (Embedding(mask_zero=True), or a mask passed in) reads
// its mask, step by step, from a TensorList of bools inside the loop body,
// which runs on QCPU alone (loop_ops.cc says why), and its gradient loop pops
// the steps' masks back; without these kernels its predict and fit failed
// with NotFound. A TensorList is a C++ object inside a
// DT_VARIANT tensor, which the C API cannot open: this file alone reads it
// through TF's own headers (tensor_list.h), which hold for the one TF minor
// int8flow is built against.
#include "kernels/tensor_list.h"

#include <cstring>
#include <string>
#include <vector>

#include "kernels/half_as_float.h"
#include "kernels/kernel_registration.h"
#include "kernels/onednn_util.h"
#include "tensorflow/c/tf_tensor.h"
#include "tensorflow/core/framework/tensor_util.h"  // DeepCopy
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/framework/variant.h"
#include "tensorflow/core/kernels/tensor_list.h"

namespace int8flow::kernels {
namespace {

std::string TypeName(TF_DataType dtype) {
  return tensorflow::DataTypeString(static_cast<tensorflow::DataType>(dtype));
}

// The list in the scalar variant `handle`.
const tensorflow::TensorList& AnyListOf(const OwnedTensor& handle) {
  Require(TF_NumDims(handle.get()) == 0 && TF_TensorElementCount(handle.get()) == 1, [&] {
    return "expected a scalar list handle, got shape " + ShapeString(Shape(handle.get()));
  });
  const auto* variant = static_cast<const tensorflow::Variant*>(TF_TensorData(handle.get()));
  const tensorflow::TensorList* list = variant->get<tensorflow::TensorList>();
  Require(list != nullptr, "Input handle is not a list. Saw: '" + variant->TypeName() + "'");
  return *list;
}

// The same, of `element_dtype` elements.
const tensorflow::TensorList& ListOf(const OwnedTensor& handle, TF_DataType element_dtype) {
  const tensorflow::TensorList& list = AnyListOf(handle);
  const auto list_dtype = static_cast<TF_DataType>(list.element_dtype);
  Require(list_dtype == element_dtype, "Invalid data types; op elements " +
                                           TypeName(element_dtype) + " but list elements " +
                                           TypeName(list_dtype));
  return list;
}

// into[k] += add[k], in the elements' type (float32, or bf16/float16 summed
// in float32 and rounded, as TF's Eigen adds them).
template <class T>
void AddElements(const tensorflow::Tensor& add, tensorflow::Tensor& into) {
  T* to = reinterpret_cast<T*>(const_cast<char*>(into.tensor_data().data()));
  const T* from = reinterpret_cast<const T*>(add.tensor_data().data());
  for (int64_t k = 0, m = add.NumElements(); k < m; ++k)
    to[k] = static_cast<T>(static_cast<float>(to[k]) + static_cast<float>(from[k]));
}

// Output `i`: the list element `element`, or zeros of `element_shape` for one
// never set (DT_INVALID), as TF reads it.
void OutputElement(KernelContext& ctx, int i, const tensorflow::Tensor& element,
                   const OwnedTensor& element_shape, TF_DataType dtype) {
  if (element.dtype() == tensorflow::DT_INVALID) {
    const auto dims = IntValues(element_shape.get());
    bool defined = TF_NumDims(element_shape.get()) == 1;
    for (int64_t d : dims) defined = defined && d >= 0;
    Require(defined, [&] {
      return "Trying to read an uninitialized tensor but element_shape is not fully "
             "defined: " +
             ShapeString(dims);
    });
    OwnedTensor out = ctx.allocate_output(i, dims, dtype);
    std::memset(TF_TensorData(out.get()), 0, TF_TensorByteSize(out.get()));
    return;
  }
  std::vector<int64_t> dims;
  for (int d = 0; d < element.dims(); ++d) dims.push_back(element.dim_size(d));
  OwnedTensor out = ctx.allocate_output(i, dims, dtype);
  const auto data = element.tensor_data();
  Require(data.size() == NumElements(dims) * TF_DataTypeSize(dtype), [&] {
    return "a list element of " + std::to_string(data.size()) + " bytes for shape " +
           ShapeString(dims);
  });
  std::memcpy(TF_TensorData(out.get()), data.data(), data.size());
}

// The loop body's read of step `index` (the forward pass).
class TensorListGetItemKernel {
 public:
  explicit TensorListGetItemKernel(TF_OpKernelConstruction* ctx)
      : element_dtype_(GetTypeAttr(ctx, "element_dtype")) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor handle = ctx.input(0), index = ctx.input(1), element_shape = ctx.input(2);
    const tensorflow::TensorList& list = ListOf(handle, element_dtype_);
    const auto at = IntValues(index.get());
    const int64_t size = static_cast<int64_t>(list.tensors().size());
    Require(at.size() == 1 && at[0] >= 0 && at[0] < size, [&] {
      return "Trying to access element " + (at.size() == 1 ? std::to_string(at[0]) : "?") +
             " in a list with " + std::to_string(size) + " elements.";
    });
    OutputElement(ctx, 0, list.tensors()[at[0]], element_shape, element_dtype_);
  }

 private:
  const TF_DataType element_dtype_;
};

// The gradient loop's read of the values the forward loop pushed, last first:
// the list less its last element, and that element.
class TensorListPopBackKernel {
 public:
  explicit TensorListPopBackKernel(TF_OpKernelConstruction* ctx)
      : element_dtype_(GetTypeAttr(ctx, "element_dtype")) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor handle = ctx.input(0), element_shape = ctx.input(1);
    const tensorflow::TensorList& list = ListOf(handle, element_dtype_);
    Require(!list.tensors().empty(), "Trying to pop from an empty list.");
    OutputElement(ctx, 1, list.tensors().back(), element_shape, element_dtype_);
    tensorflow::TensorList rest = list.Copy();  // the input's list may have other readers
    rest.tensors().pop_back();
    OwnedTensor out = ctx.allocate_output(0, {}, TF_VARIANT);
    *static_cast<tensorflow::Variant*>(TF_TensorData(out.get())) = std::move(rest);
  }

 private:
  const TF_DataType element_dtype_;
};

// The gradient loop's sum of the gradients of one list, each a list: element
// by element, float32, bf16 or float16, an element set in none of them staying unset (TF's
// TensorListBinaryAdd, for any number of lists).
class TensorListAddNKernel {
 public:
  explicit TensorListAddNKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    const int n = ctx.num_inputs();
    std::vector<OwnedTensor> handles;
    std::vector<const tensorflow::TensorList*> lists;
    const auto dtype = static_cast<TF_DataType>(AnyListOf(ctx.input(0)).element_dtype);
    Require(dtype == TF_FLOAT || IsHalfType(dtype),
            "AddN of lists sums float32, bfloat16 or float16 elements, not " + TypeName(dtype));
    for (int i = 0; i < n; ++i) {
      handles.push_back(ctx.input(i));
      lists.push_back(&ListOf(handles.back(), dtype));
      Require(lists.back()->tensors().size() == lists[0]->tensors().size(), [&] {
        return "Trying to add two lists of tensors with different lengths. One is " +
               std::to_string(lists[0]->tensors().size()) + " and the other is " +
               std::to_string(lists.back()->tensors().size());
      });
    }
    tensorflow::TensorList sum;
    sum.element_dtype = static_cast<tensorflow::DataType>(dtype);
    sum.element_shape = lists[0]->element_shape;
    sum.max_num_elements = lists[0]->max_num_elements;
    for (size_t e = 0; e < lists[0]->tensors().size(); ++e) {
      tensorflow::Tensor total;  // unset (DT_INVALID) until an input has this element
      bool owned = false;        // whether `total` is our own buffer, or an input's
      for (const tensorflow::TensorList* list : lists) {
        const tensorflow::Tensor& t = list->tensors()[e];
        if (t.dtype() == tensorflow::DT_INVALID) continue;
        // An unset or empty element adds nothing: TF's zeros of a list are empty tensors.
        if (total.dtype() == tensorflow::DT_INVALID ||
            (total.NumElements() == 0 && t.shape() != total.shape())) {
          total = t, owned = false;
          continue;
        }
        if (t.shape() != total.shape()) {
          Require(t.NumElements() == 0,
                  "Trying to add two tensors with incompatible element shapes. One is " +
                      t.shape().DebugString() + " and the other is " + total.shape().DebugString());
          continue;
        }
        if (!owned) total = tensorflow::tensor::DeepCopy(total), owned = true;
        if (dtype == TF_FLOAT) AddElements<float>(t, total);
        if (dtype == TF_BFLOAT16) AddElements<Bf16>(t, total);
        if (dtype == TF_HALF) AddElements<_Float16>(t, total);
      }
      sum.tensors().push_back(std::move(total));
    }
    OwnedTensor out = ctx.allocate_output(0, {}, TF_VARIANT);
    *static_cast<tensorflow::Variant*>(TF_TensorData(out.get())) = std::move(sum);
  }
};

}  // namespace

void RegisterTensorListKernels(const char* device_type, TF_Status* status) {
  // The index and the element shape are int32 scalars and vectors: host memory.
  RegisterKernel<TensorListGetItemKernel>(
      {"TensorListGetItem", {{"element_dtype", TF_BOOL}}, {"index", "element_shape"}}, device_type,
      status);
  // AddN of lists: the gradients of a list the loop reads twice (a masked RNN's inputs).
  if (TF_GetCode(status) == TF_OK)
    RegisterKernel<TensorListAddNKernel>({"AddN", {{"T", TF_VARIANT}}}, device_type, status);
  if (TF_GetCode(status) == TF_OK)
    RegisterKernel<TensorListPopBackKernel>(
        {"TensorListPopBack", {{"element_dtype", TF_BOOL}}, {"element_shape"}}, device_type,
        status);
}

}  // namespace int8flow::kernels
