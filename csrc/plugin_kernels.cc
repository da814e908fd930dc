// TF entry point: QCPU's ops and kernels (rooms: kernels/, in the core).
#include <string>

#include "common/tf_status.h"
#include "core_loader.h"
#include "device/platform.h"
#include "runtime/runtime.h"

extern "C" __attribute__((visibility("default"))) void TF_InitKernel() {
  if (int8flow::device::IsDuplicateLoad() || !int8flow::runtime::GetLoadState().active) return;
  std::string why;
  const Int8flowCoreApi* core = int8flow::LoadCore(&why);
  if (core == nullptr) return;  // SE_InitPlugin already went inert and said why
  int8flow::OwnedStatus status;
  core->init_kernels(int8flow::device::RegisteredDeviceType(), status.get());
  // Ops without a QCPU kernel still run, on CPU: warn, never abort.
  if (!status.ok())
    int8flow::runtime::WarnOnce("QCPU kernels not registered, ops run on CPU: " + status.message());
}
