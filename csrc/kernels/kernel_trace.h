// One kernel run as a profiler session or op stats see it (runtime.h). Built
// only when RecordingMode() is non-zero, so the usual run pays nothing more.
#pragma once

#include <string>

#include "runtime/runtime.h"
#include "tensorflow/c/kernels.h"

namespace int8flow::kernels {

class KernelTrace {
 public:
  KernelTrace(TF_OpKernelContext* ctx, const std::string& op);
  ~KernelTrace();  // records the event, with the inputs' shapes
  KernelTrace(const KernelTrace&) = delete;
  KernelTrace& operator=(const KernelTrace&) = delete;

  // Execute (onednn_util.h) notes each oneDNN primitive the kernel on this
  // thread runs: its implementation, and the precision of its inputs
  // ("int8", "bf16"; null for f32, which leaves the kernel's as it is).
  static bool active() { return current_ != nullptr; }
  static void NotePrimitive(const char* impl, const char* precision);

 private:
  TF_OpKernelContext* ctx_;
  runtime::TraceEvent event_;
  KernelTrace* outer_;  // a kernel run inside another's (none today, but cheap)
  static thread_local KernelTrace* current_;
};

}  // namespace int8flow::kernels
