// TF entry point: QCPU's profiler (room: profiler/).
#include "common/tf_status.h"
#include "device/platform.h"
#include "profiler/qcpu_profiler.h"
#include "runtime/runtime.h"

extern "C" __attribute__((visibility("default"))) void TF_InitProfiler(
    TF_ProfilerRegistrationParams* params, TF_Status* status) {
  // Registered even when inert: never return an error from here, TF would
  // abort its import. A load that does not serve QCPU records nothing.
  const bool serving = !int8flow::device::IsDuplicateLoad() &&
                       int8flow::runtime::GetLoadState().active;
  int8flow::profiler::RegisterProfiler(params, int8flow::device::RegisteredDeviceType(), serving);
  if (serving && int8flow::runtime::GetSettings().op_stats) int8flow::runtime::SetOpStats(true);
  int8flow::SetOk(status);
}
