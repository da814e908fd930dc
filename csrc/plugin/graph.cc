// TF entry point: the QCPU Grappler optimizer (rooms: graph/, in the core).
#include <string>

#include "common/tf_status.h"
#include "core_loader.h"
#include "device/platform.h"
#include "graph/pass_through.h"

extern "C" __attribute__((visibility("default"))) void TF_InitGraph(
    TP_OptimizerRegistrationParams* params, TF_Status* status) {
  if (const Int8flowCoreApi* core = int8flow::CoreForQcpu()) {
    core->init_graph(params, status);
    if (TF_GetCode(status) == TF_OK) return;
    // Without the pass, Keras' jit_compile would fail on QCPU: go inert.
    int8flow::device::Deactivate(std::string("graph pass not registered: ") + TF_Message(status));
  }
  // Never return an error from here: TF would abort its import.
  int8flow::graph::RegisterPassThrough(params, int8flow::device::RegisteredDeviceType());
  int8flow::SetOk(status);
}
