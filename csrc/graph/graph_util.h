// Small GraphDef helpers the passes share.
#pragma once

#include <string>

#include "device/platform.h"
#include "tensorflow/core/framework/node_def.pb.h"

namespace int8flow::graph {

inline bool OnQcpu(const tensorflow::NodeDef& node) {
  return node.device().find(std::string("/device:") + device::kDeviceType + ":") != std::string::npos;
}

inline bool OnCpu(const tensorflow::NodeDef& node) {
  return node.device().find("/device:CPU:") != std::string::npos;
}

// QCPU or TF's CPU device: both compute in host memory. TF places an op on
// CPU when QCPU has no kernel for it, so a pattern that QCPU runs as one
// fused op may have some of its parts there.
inline bool OnHost(const tensorflow::NodeDef& node) {
  return OnQcpu(node) || OnCpu(node);
}

// "node:1" -> {"node", 1}; "node" -> {"node", 0}; "^node" -> {"node", -1}.
struct TensorRef {
  std::string node;
  int port;
};
inline TensorRef ParseTensorRef(const std::string& input) {
  if (!input.empty() && input[0] == '^') return {input.substr(1), -1};
  const auto colon = input.rfind(':');
  if (colon == std::string::npos) return {input, 0};
  return {input.substr(0, colon), std::stoi(input.substr(colon + 1))};
}

}  // namespace int8flow::graph
