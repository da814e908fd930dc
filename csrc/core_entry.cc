// libint8flow_core.so's only export: the table the plugin shim calls into.
#include "core_api.h"
#include "graph/optimizer.h"

extern "C" __attribute__((visibility("default"))) const Int8flowCoreApi* int8flow_core_api() {
  static const Int8flowCoreApi api{INT8FLOW_CORE_ABI, INT8FLOW_TF_MAJOR_MINOR,
                                   &int8flow::graph::InitGraph};
  return &api;
}
