// TF entry point: QCPU's ops and kernels (rooms: kernels/, in the core).
#include <string>

#include "common/tf_status.h"
#include "core_loader.h"
#include "device/platform.h"
#include "runtime/runtime.h"

extern "C" __attribute__((visibility("default"))) void TF_InitKernel() {
  const Int8flowCoreApi* core = int8flow::CoreForQcpu();
  if (core == nullptr) return;  // inert or a duplicate load: SE_InitPlugin said why
  int8flow::OwnedStatus status;
  core->init_kernels(int8flow::device::RegisteredDeviceType(), status.get());
  // Ops without a QCPU kernel still run, on CPU: warn, never abort.
  if (!status.ok())
    int8flow::runtime::WarnOnce("QCPU kernels not registered, ops run on CPU: " + status.message());
}
