// The one helper every QCPU kernel registers through.
//
// A kernel is a class with a constructor taking TF_OpKernelConstruction* and
// a `void Compute(KernelContext&)`. Errors are exceptions: KernelError for the
// caller's mistakes (bad shapes, dtypes, attrs), anything else is reported as
// an internal error. TF sees a failed op, never a crash.
#pragma once

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/tf_status.h"
#include "common/tf_tensor.h"
#include "kernels/kernel_trace.h"
#include "runtime/runtime.h"
#include "tensorflow/c/kernels.h"

namespace int8flow::kernels {

class KernelError : public std::runtime_error {
 public:
  explicit KernelError(const std::string& message, TF_Code code = TF_INVALID_ARGUMENT)
      : std::runtime_error(message), code_(code) {}
  TF_Code code() const { return code_; }

 private:
  TF_Code code_;
};

// Throws KernelError(message) unless `condition` holds.
inline void Require(bool condition, const std::string& message) {
  if (!condition) throw KernelError(message);
}
// The same with the message built only on failure: for checks in loops, or
// messages that format floats (measured: 0.7 ms per call for 3072 of them).
template <class MakeMessage,
          class = std::enable_if_t<std::is_invocable_r_v<std::string, MakeMessage>>>
void Require(bool condition, MakeMessage make_message) {
  if (!condition) throw KernelError(make_message());
}

// Throws when a TF C API call failed.
inline void Check(const OwnedStatus& status, const char* what) {
  if (!status.ok()) throw KernelError(std::string(what) + ": " + status.message(), TF_INTERNAL);
}

class KernelContext;
// A float32 kernel's view of a bf16/float16 node (half_as_float.h): its
// inputs widened, its float32 outputs staged and rounded when it returns.
class HalfStaging;
namespace detail {
OwnedTensor StagedInput(HalfStaging& staging, const KernelContext& ctx, OwnedTensor t);
OwnedTensor StagedOutput(HalfStaging& staging, const KernelContext& ctx, int i,
                         const std::vector<int64_t>& dims);
void StagedSetOutput(HalfStaging& staging, const KernelContext& ctx, int i, const TF_Tensor* t);
}  // namespace detail

// What a kernel's Compute sees: the context, and typed access to it.
class KernelContext {
 public:
  explicit KernelContext(TF_OpKernelContext* ctx, HalfStaging* staging = nullptr)
      : ctx_(ctx), staging_(staging) {}
  TF_OpKernelContext* raw() const { return ctx_; }
  int num_inputs() const { return TF_NumInputs(ctx_); }

  OwnedTensor input(int i) const {
    OwnedStatus status;
    TF_Tensor* t = nullptr;
    TF_GetInput(ctx_, i, &t, status.get());
    Check(status, "reading an input");
    if (staging_) return detail::StagedInput(*staging_, *this, OwnedTensor(t));
    return OwnedTensor(t);
  }
  // Input `i`'s shape, read without widening it (HalfStaging).
  std::vector<int64_t> input_shape(int i) const {
    OwnedStatus status;
    TF_Tensor* t = nullptr;
    TF_GetInput(ctx_, i, &t, status.get());
    Check(status, "reading an input");
    return Shape(OwnedTensor(t).get());
  }
  OwnedTensor allocate_output(int i, const std::vector<int64_t>& dims, TF_DataType dtype) const {
    if (staging_ && dtype == TF_FLOAT) return detail::StagedOutput(*staging_, *this, i, dims);
    OwnedStatus status;
    size_t bytes = TF_DataTypeSize(dtype);
    for (int64_t d : dims) bytes *= static_cast<size_t>(d);
    TF_Tensor* t = TF_AllocateOutput(ctx_, i, dtype, dims.data(), static_cast<int>(dims.size()),
                                     bytes, status.get());
    if (!status.ok())
      throw KernelError("allocating an output: " + status.message(), TF_RESOURCE_EXHAUSTED);
    return OwnedTensor(t);
  }
  // Output 0 shaped `dims`, in the buffer of input `index` when TF allows
  // (same shape, no other reader: in place), else a new one. `held` is the
  // caller's tensor of that input: it is let go for the call and read again
  // after, since it holds a reference to the buffer and TF forwards only a
  // buffer nothing else holds (held through the call, no input was ever
  // forwarded). Its data pointer stays valid: the buffer lives on either way.
  OwnedTensor forward_input_or_allocate_output(const std::vector<int64_t>& dims, int index,
                                               OwnedTensor& held) const {
    if (staging_) return detail::StagedOutput(*staging_, *this, 0, dims);
    held.reset();
    OwnedStatus status;
    int forwarded = -1;
    TF_Tensor* t = TF_ForwardInputOrAllocateOutput(
        ctx_, &index, 1, 0, dims.data(), static_cast<int>(dims.size()), &forwarded, status.get());
    held = input(index);
    if (!status.ok())
      throw KernelError("allocating an output: " + status.message(), TF_RESOURCE_EXHAUSTED);
    return OwnedTensor(t);
  }
  // Makes output `i` share `t`'s buffer (a cached result).
  void set_output(int i, const TF_Tensor* t) const {
    if (staging_) return detail::StagedSetOutput(*staging_, *this, i, t);
    OwnedStatus status;
    TF_SetOutput(ctx_, i, t, status.get());
    Check(status, "setting an output");
  }
  // Scratch memory from the device allocator, alive until the tensor is dropped.
  OwnedTensor allocate_temp(size_t bytes) const {
    OwnedStatus status;
    const int64_t dims[] = {static_cast<int64_t>(bytes)};
    TF_AllocatorAttributes attrs{TF_ALLOCATOR_ATTRIBUTES_STRUCT_SIZE, 0};
    TF_Tensor* t = TF_AllocateTemp(ctx_, TF_UINT8, dims, 1, &attrs, status.get());
    if (!status.ok())
      throw KernelError("allocating scratch memory: " + status.message(), TF_RESOURCE_EXHAUSTED);
    return OwnedTensor(t);
  }
  std::string name() const {
    const TF_StringView view = TF_GetOpKernelName(ctx_);
    return std::string(view.data, view.len);
  }

 private:
  TF_OpKernelContext* ctx_;
  HalfStaging* staging_;
};

// Attribute readers for kernel constructors; a missing attr is a KernelError.
bool GetBoolAttr(TF_OpKernelConstruction* ctx, const char* name);
float GetFloatAttr(TF_OpKernelConstruction* ctx, const char* name);
int64_t GetIntAttr(TF_OpKernelConstruction* ctx, const char* name);
TF_DataType GetTypeAttr(TF_OpKernelConstruction* ctx, const char* name);
std::vector<TF_DataType> GetTypeListAttr(TF_OpKernelConstruction* ctx, const char* name);
std::string GetStringAttr(TF_OpKernelConstruction* ctx, const char* name);
std::vector<std::string> GetStringListAttr(TF_OpKernelConstruction* ctx, const char* name);
std::vector<int64_t> GetIntListAttr(TF_OpKernelConstruction* ctx, const char* name);
std::string NodeName(TF_OpKernelConstruction* ctx);
// The op of the node being built, a private twin read as its standard op:
// lets one kernel class serve several ops.
std::string OpType(TF_OpKernelConstruction* ctx);
// KernelErrors when the node holds an attr its op (one of ours) does not
// declare: TF's graph runtime would let it through, ignored.
void RejectUndeclaredAttrs(TF_OpKernelConstruction* ctx);

struct KernelSpec {
  const char* op;
  // Each pair: a type attr of the op, and the one dtype this kernel takes.
  std::vector<std::pair<const char*, TF_DataType>> types = {{"T", TF_FLOAT}};
  std::vector<const char*> host_memory = {};
  // Set: only nodes whose `_kernel` attr names it get this kernel.
  const char* label = nullptr;
  // A kernel for loop and cond bodies, which TF runs on QCPU alone; elsewhere
  // TF's CPU kernel, faster or native, runs the node. It registers below that
  // kernel's priority, which eager placement follows; TF's graph placer puts
  // a node on its default device (QCPU) anyway, so the pass sends the ones
  // it sees to TF's CPU, unless a QCPU node feeds them (graph/placement.cc).
  bool loop_only = false;
  // An async kernel (it still computes before returning): TF's executor then
  // hands each node the op's output makes ready to its thread pool, where
  // after any other QCPU kernel it runs them inline, one thread for the whole
  // graph (a PluggableDevice's kernels are never "expensive" to it). For an
  // op that starts independent branches: Bidirectional's two loops both read
  // one Transpose.
  bool async = false;
};

// `spec`, for loop and cond bodies only (KernelSpec::loop_only).
inline KernelSpec LoopOnly(KernelSpec spec) {
  spec.loop_only = true;
  return spec;
}

namespace detail {
void Fail(TF_OpKernelContext* ctx, TF_Code code, const std::string& message);
void FailConstruction(TF_OpKernelConstruction* ctx, TF_Code code, const std::string& message);
// Registers create/compute (compute_async when `spec.async`)/delete for
// `spec` on `device_type`.
using ComputeFn = void (*)(void*, TF_OpKernelContext*);
using ComputeAsyncFn = void (*)(void*, TF_OpKernelContext*, TF_AsyncOpKernelDoneCallback*);
void Register(const KernelSpec& spec, const char* device_type,
              void* (*create)(TF_OpKernelConstruction*), ComputeFn compute,
              ComputeAsyncFn compute_async, void (*destroy)(void*), TF_Status* status);

// Kernel calls begun on this thread: what serves one call at a time
// (ArgMemory, onednn_util.h) knows when it is free again.
inline thread_local uint64_t kernel_calls_on_this_thread = 0;
}  // namespace detail
inline uint64_t KernelCallsOnThisThread() { return detail::kernel_calls_on_this_thread; }

namespace detail {
// A kernel, and its node's op for profiles (a private twin read as its
// standard op, a fused op as itself).
template <class Kernel>
struct KernelInstance {
  explicit KernelInstance(TF_OpKernelConstruction* ctx) : kernel(ctx), op(OpType(ctx)) {}
  Kernel kernel;
  std::string op;
};

template <class Kernel>
void Run(Kernel& kernel, TF_OpKernelContext* ctx) {
  ++kernel_calls_on_this_thread;
  try {
    KernelContext context(ctx);
    kernel.Compute(context);
  } catch (const KernelError& e) {
    Fail(ctx, e.code(), e.what());
  } catch (const std::exception& e) {
    Fail(ctx, TF_INTERNAL, e.what());
  }
}

template <class Kernel>
void Compute(void* instance, TF_OpKernelContext* ctx) {
  auto* self = static_cast<KernelInstance<Kernel>*>(instance);
  // The only cost of profiling support when nobody profiles: one load.
  if (runtime::RecordingMode() == 0) return Run(self->kernel, ctx);
  const KernelTrace trace(ctx, self->op);
  Run(self->kernel, ctx);
}
}  // namespace detail

template <class Kernel>
void RegisterKernel(const KernelSpec& spec, const char* device_type, TF_Status* status) {
  using Instance = detail::KernelInstance<Kernel>;
  auto create = [](TF_OpKernelConstruction* ctx) -> void* {
    try {
      RejectUndeclaredAttrs(ctx);
      return new Instance(ctx);
    } catch (const KernelError& e) {
      detail::FailConstruction(ctx, e.code(), e.what());
    } catch (const std::exception& e) {
      detail::FailConstruction(ctx, TF_INTERNAL, e.what());
    }
    return nullptr;
  };
  auto compute_async = [](void* instance, TF_OpKernelContext* ctx,
                          TF_AsyncOpKernelDoneCallback* done) {
    detail::Compute<Kernel>(instance, ctx);
    TF_RunAsyncOpKernelDoneCallback(done);
  };
  auto destroy = [](void* instance) { delete static_cast<Instance*>(instance); };
  detail::Register(spec, device_type, create, &detail::Compute<Kernel>, compute_async, destroy,
                   status);
}

}  // namespace int8flow::kernels
