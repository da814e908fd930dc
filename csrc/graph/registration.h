// The one place that fills TF's Grappler registration and output buffers;
// used by the real pass in the core and by the plugin's pass-through.
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

#include "device/platform.h"
#include "tensorflow/c/experimental/grappler/grappler.h"

namespace int8flow::graph {

using OptimizeFn = void (*)(void* optimizer, const TF_Buffer* graph_buf,
                            const TF_GrapplerItem* item, TF_Buffer* optimized_graph_buf,
                            TF_Status* status);

// Registers `optimize` as the optimizer for `device_type` (QCPU unless this
// is a duplicate load). It keeps no per-instance state.
inline void RegisterOptimizer(TP_OptimizerRegistrationParams* params, OptimizeFn optimize,
                              const char* device_type = device::kDeviceType) {
  params->struct_size = TP_OPTIMIZER_REGISTRATION_PARAMS_STRUCT_SIZE;
  params->major_version = GO_MAJOR;
  params->minor_version = GO_MINOR;
  params->patch_version = GO_PATCH;
  params->device_type = device_type;
  params->optimizer_configs->struct_size = TP_OPTIMIZER_CONFIGS_STRUCT_SIZE;
  params->optimizer->struct_size = TP_OPTIMIZER_STRUCT_SIZE;
  params->optimizer->create_func = nullptr;
  params->optimizer->optimize_func = optimize;
  params->optimizer->destroy_func = nullptr;
}

// Hands `size` bytes to TF as the optimizer's output graph.
inline void SetGraphOutput(TF_Buffer* out, const void* data, size_t size) {
  void* copy = std::malloc(size > 0 ? size : 1);
  if (size > 0) std::memcpy(copy, data, size);
  out->data = copy;
  out->length = size;
  out->data_deallocator = [](void* data, size_t) { std::free(data); };
}

}  // namespace int8flow::graph
