// libint8flow_core.so's only export: the table the plugin shim calls into.
#include <string>

#include "common/tf_status.h"
#include "core_api.h"
#include "graph/optimizer.h"
#include "kernels/onednn_self_test.h"
#include "kernels/register_kernels.h"
#include "runtime/runtime.h"

namespace {

const char* SelfTest() {
  static const std::string result = int8flow::runtime::FaultInjected("onednn_self_test")
                                        ? "injected failure (INT8FLOW_TEST_FAULT=onednn_self_test)"
                                        : int8flow::kernels::OneDnnSelfTest();
  return result.c_str();
}

// The plugin shim calls these from TF's callbacks: exceptions stop here.
void InitGraph(TP_OptimizerRegistrationParams* params, TF_Status* status) {
  int8flow::CatchAtBoundary(status, "TF_InitGraph",
                            [&] { int8flow::graph::InitGraph(params, status); });
}

void InitKernels(const char* device_type, TF_Status* status) {
  int8flow::CatchAtBoundary(status, "TF_InitKernel",
                            [&] { int8flow::kernels::InitKernels(device_type, status); });
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const Int8flowCoreApi* int8flow_core_api() {
  static const Int8flowCoreApi api{INT8FLOW_CORE_ABI, INT8FLOW_TF_MAJOR_MINOR, &SelfTest,
                                   &InitGraph, &InitKernels};
  return &api;
}
