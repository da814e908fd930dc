// Small GraphDef helpers the passes share.
#pragma once

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "device/platform.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/tensor_shape.pb.h"

namespace int8flow::graph {

inline bool OnQcpu(const tensorflow::NodeDef& node) {
  return node.device().find(std::string("/device:") + device::kDeviceType + ":") !=
         std::string::npos;
}

inline bool OnCpu(const tensorflow::NodeDef& node) {
  return node.device().find("/device:CPU:") != std::string::npos;
}

// QCPU or TF's CPU device: both compute in host memory. TF places an op on
// CPU when QCPU has no kernel for it, so a pattern that QCPU runs as one
// fused op may have some of its parts there.
inline bool OnHost(const tensorflow::NodeDef& node) { return OnQcpu(node) || OnCpu(node); }

// A shape's dims, -1 for an unknown one.
inline std::vector<int64_t> DimsOf(const tensorflow::TensorShapeProto& shape) {
  std::vector<int64_t> dims;
  for (const auto& dim : shape.dim()) dims.push_back(dim.size());
  return dims;
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

// Deletes the nodes named in `names`, keeping the others' order.
inline void RemoveNodes(tensorflow::GraphDef& graph, const std::set<std::string>& names) {
  if (names.empty()) return;
  auto* nodes = graph.mutable_node();
  for (int i = nodes->size() - 1; i >= 0; --i)
    if (names.count(nodes->Get(i).name())) nodes->DeleteSubrange(i, 1);
}

// Each read node's readers, by data or control edge: node name -> readers.
// The pointers hold while `graph` gains or loses no node.
using Readers = std::unordered_map<std::string, std::vector<const tensorflow::NodeDef*>>;
inline Readers ReadersOf(const tensorflow::GraphDef& graph) {
  Readers readers;
  for (const tensorflow::NodeDef& node : graph.node())
    for (const std::string& input : node.input())
      readers[ParseTensorRef(input).node].push_back(&node);
  return readers;
}

// A node's data inputs' producers, in input order; nullptr for one outside
// the graph. The pointers hold while `graph` gains or loses no node.
class DataProducers {
 public:
  explicit DataProducers(const tensorflow::GraphDef& graph) {
    for (const tensorflow::NodeDef& node : graph.node()) by_name_[node.name()] = &node;
  }
  std::vector<const tensorflow::NodeDef*> Of(const tensorflow::NodeDef& node) const {
    std::vector<const tensorflow::NodeDef*> found;
    for (const std::string& input : node.input()) {
      if (input[0] == '^') continue;
      const auto producer = by_name_.find(ParseTensorRef(input).node);
      found.push_back(producer == by_name_.end() ? nullptr : producer->second);
    }
    return found;
  }

 private:
  std::unordered_map<std::string, const tensorflow::NodeDef*> by_name_;
};

// The nodes inside lowered while loops (TF1 control flow): those an Enter
// reaches, up to and including the Exits, through data or control edges.
inline std::set<std::string> NodesInLoops(const tensorflow::GraphDef& graph) {
  const Readers readers = ReadersOf(graph);
  std::set<std::string> inside;
  std::vector<const tensorflow::NodeDef*> pending;
  for (const tensorflow::NodeDef& node : graph.node())
    if (node.op() == "Enter" || node.op() == "RefEnter") pending.push_back(&node);
  while (!pending.empty()) {
    const tensorflow::NodeDef* node = pending.back();
    pending.pop_back();
    if (!inside.insert(node->name()).second || node->op() == "Exit" || node->op() == "RefExit")
      continue;
    const auto it = readers.find(node->name());
    if (it != readers.end()) pending.insert(pending.end(), it->second.begin(), it->second.end());
  }
  return inside;
}

// A float Const's stored values: its tensor_content, or else its float_val
// (where a single value stands for every element). Empty for anything else.
inline std::vector<float> ConstFloatValues(const tensorflow::NodeDef& node) {
  if (node.op() != "Const") return {};
  const auto it = node.attr().find("value");
  if (it == node.attr().end() || it->second.tensor().dtype() != tensorflow::DT_FLOAT) return {};
  const tensorflow::TensorProto& t = it->second.tensor();
  if (t.tensor_content().empty()) return {t.float_val().begin(), t.float_val().end()};
  std::vector<float> values(t.tensor_content().size() / sizeof(float));
  std::memcpy(values.data(), t.tensor_content().data(), values.size() * sizeof(float));
  return values;
}

}  // namespace int8flow::graph
