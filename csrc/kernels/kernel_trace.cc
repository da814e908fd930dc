#include "kernels/kernel_trace.h"

#include "common/tf_status.h"
#include "common/tf_tensor.h"

namespace int8flow::kernels {

thread_local KernelTrace* KernelTrace::current_ = nullptr;

namespace {

// "[1,128,768] [768,3072]"; "[]" for a scalar.
std::string InputShapes(TF_OpKernelContext* ctx) {
  std::string shapes;
  for (int i = 0; i < TF_NumInputs(ctx); ++i) {
    OwnedStatus status;
    TF_Tensor* raw = nullptr;
    TF_GetInput(ctx, i, &raw, status.get());
    if (!status.ok()) continue;
    const OwnedTensor tensor(raw);
    if (!shapes.empty()) shapes += ' ';
    shapes += '[';
    for (int d = 0; d < TF_NumDims(raw); ++d)
      shapes += (d ? "," : "") + std::to_string(TF_Dim(raw, d));
    shapes += ']';
  }
  return shapes;
}

}  // namespace

KernelTrace::KernelTrace(TF_OpKernelContext* ctx, const std::string& op)
    : ctx_(ctx), outer_(current_) {
  const TF_StringView name = TF_GetOpKernelName(ctx);
  event_.name.assign(name.data, name.len);
  event_.op = op;
  event_.precision = "fp32";
  current_ = this;
  event_.start_ns = runtime::NowNanos();
}

KernelTrace::~KernelTrace() {
  event_.end_ns = runtime::NowNanos();
  current_ = outer_;
  event_.shapes = InputShapes(ctx_);
  runtime::RecordEvent(std::move(event_));
}

void KernelTrace::NotePrimitive(const char* impl, const char* precision) {
  KernelTrace* trace = current_;
  if (!trace) return;
  std::string& impls = trace->event_.onednn_impl;
  if (!impls.empty()) impls += '+';
  impls += impl ? impl : "?";
  if (precision) trace->event_.precision = precision;
}

}  // namespace int8flow::kernels
