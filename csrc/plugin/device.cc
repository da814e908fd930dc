// TF entry point: the StreamExecutor platform QCPU (rooms: device/, the core loader).
#include "common/tf_status.h"
#include "core_loader.h"
#include "device/platform.h"

extern "C" __attribute__((visibility("default"))) void SE_InitPlugin(
    SE_PlatformRegistrationParams* params, TF_Status* status) {
  // An error status here would make TF abort the whole interpreter, so the
  // platform always registers; problems show up as zero devices instead.
  int8flow::device::RegisterPlatform(params);
  int8flow::ActivateQcpu();
  int8flow::SetOk(status);
}
