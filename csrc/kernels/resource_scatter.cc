// Sparse updates of a float variable on QCPU: ResourceScatterAdd/Sub/Update.
//
// Keras' SGD (without momentum), RMSprop and Adagrad update an Embedding's
// table row by row (its gradient is IndexedSlices). TF colocates the update
// with the variable, on QCPU, and with no QCPU kernel for it fit failed to
// place the graph. A variable is a C++ resource that the C API cannot reach
// (its variable functions are in kernels_experimental.h, which no 2.19+ wheel
// exports): this file alone reads it through TF's own headers, as TF's kernel
// does, for the one TF minor int8flow is built against.
#include "kernels/resource_scatter.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernel_registration.h"
#include "kernels/onednn_util.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"

namespace int8flow::kernels {
namespace {

enum class Update { kAdd, kSub, kAssign };

// `var`'s buffer, for writing: its own, copied first when a read still shares
// it (TF's copy-on-write of a variable).
tensorflow::Tensor* WritableVariable(tensorflow::OpKernelContext* c, tensorflow::Var* var) {
  tensorflow::Tensor* params = var->tensor();
  if (!params->RefCountIsOne()) {
    tensorflow::Tensor copy;
    const absl::Status status = c->allocate_temp(params->dtype(), params->shape(), &copy);
    Require(status.ok(),
            [&] { return "allocating the variable's copy: " + std::string(status.message()); });
    std::memcpy(const_cast<char*>(copy.tensor_data().data()), params->tensor_data().data(),
                params->tensor_data().size());
    *params = copy;
  }
  return params;
}

template <Update kUpdate>
class ResourceScatterKernel {
 public:
  explicit ResourceScatterKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    // The C API's kernel context is TF's OpKernelContext (tensorflow/c/kernels.cc).
    auto* c = reinterpret_cast<tensorflow::OpKernelContext*>(ctx.raw());
    tensorflow::core::RefCountPtr<tensorflow::Var> var;
    const absl::Status found =
        tensorflow::LookupResource(c, tensorflow::HandleFromInput(c, 0), &var);
    Require(found.ok(), std::string(found.message()));
    OwnedTensor indices_tensor = ctx.input(1), updates_tensor = ctx.input(2);
    const auto indices = IntValues(indices_tensor.get());
    const auto updates_shape = Shape(updates_tensor.get());
    const float* updates = Data<float>(updates_tensor.get());
    tensorflow::mutex_lock lock(*var->mu());
    const tensorflow::Tensor& current = *var->tensor();
    Require(current.IsInitialized(), "the variable is not initialized");
    Require(
        current.dtype() == tensorflow::DT_FLOAT,
        "the variable holds " + tensorflow::DataTypeString(current.dtype()) + ", the update float");
    Require(current.dims() >= 1, "params must be at least 1 dimensional");
    const int64_t rows = current.dim_size(0),
                  row_size = current.NumElements() / std::max<int64_t>(rows, 1);
    // Updates are indices.shape + params.shape[1:], or one scalar for every element.
    const bool scalar = updates_shape.empty();
    Require(scalar || NumElements(updates_shape) == static_cast<int64_t>(indices.size()) * row_size,
            [&] {
              return "Must have updates.shape = indices.shape + params.shape[1:] or updates.shape "
                     "= [], got "
                     "updates.shape " +
                     ShapeString(updates_shape) + ", indices.shape " +
                     ShapeString(Shape(indices_tensor.get()));
            });
    // Every index first, as TF's kernel: a bad one leaves the table as it was.
    for (size_t i = 0; i < indices.size(); ++i)
      Require(indices[i] >= 0 && indices[i] < rows, [&] {
        return "indices[" + std::to_string(i) + "] = " + std::to_string(indices[i]) +
               " is not in [0, " + std::to_string(rows) + ")";
      });
    tensorflow::Tensor* params = WritableVariable(c, var.get());
    float* table = reinterpret_cast<float*>(const_cast<char*>(params->tensor_data().data()));
    for (size_t i = 0; i < indices.size(); ++i) {
      float* row = table + indices[i] * row_size;
      const float* update = scalar ? updates : updates + i * row_size;
      for (int64_t k = 0; k < row_size; ++k) {
        const float u = scalar ? update[0] : update[k];
        if (kUpdate == Update::kAdd) row[k] += u;
        if (kUpdate == Update::kSub) row[k] -= u;
        if (kUpdate == Update::kAssign) row[k] = u;
      }
    }
  }
};

}  // namespace

void RegisterResourceScatterKernels(const char* device_type, TF_Status* status) {
  const auto ok = [&] { return TF_GetCode(status) == TF_OK; };
  // The handle and the indices live in host memory on every device.
  for (TF_DataType index : {TF_INT32, TF_INT64}) {
    const std::vector<std::pair<const char*, TF_DataType>> types = {{"dtype", TF_FLOAT},
                                                                    {"Tindices", index}};
    if (ok())
      RegisterKernel<ResourceScatterKernel<Update::kAdd>>(
          {"ResourceScatterAdd", types, {"resource"}}, device_type, status);
    if (ok())
      RegisterKernel<ResourceScatterKernel<Update::kSub>>(
          {"ResourceScatterSub", types, {"resource"}}, device_type, status);
    if (ok())
      RegisterKernel<ResourceScatterKernel<Update::kAssign>>(
          {"ResourceScatterUpdate", types, {"resource"}}, device_type, status);
  }
}

}  // namespace int8flow::kernels
