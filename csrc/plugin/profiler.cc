// TF entry point: QCPU's profiler (room: profiler/).
#include "common/tf_status.h"
#include "core_loader.h"
#include "device/platform.h"
#include "profiler/qcpu_profiler.h"

extern "C" __attribute__((visibility("default"))) void TF_InitProfiler(
    TF_ProfilerRegistrationParams* params, TF_Status* status) {
  // Registered even when inert: never return an error from here, TF would
  // abort its import. A load that does not serve QCPU records nothing.
  int8flow::profiler::RegisterProfiler(params, int8flow::device::RegisteredDeviceType(),
                                       int8flow::ServesQcpu());
  int8flow::SetOk(status);
}
