#include "graph/xla_skip.h"

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graph/graph_util.h"
#include "tensorflow/core/framework/function.pb.h"

namespace int8flow::graph {
namespace {

constexpr char kMustCompile[] = "_XlaMustCompile";

// Sets a true `_XlaMustCompile` in `attrs` to false; true when it changed.
bool ClearMustCompile(google::protobuf::Map<std::string, tensorflow::AttrValue>& attrs) {
  auto it = attrs.find(kMustCompile);
  if (it == attrs.end() || !it->second.b()) return false;
  it->second.set_b(false);
  return true;
}

// Functions `node` calls: its op when that names a function, and func attrs.
void CollectCallees(const tensorflow::NodeDef& node,
                    const std::unordered_map<std::string, tensorflow::FunctionDef*>& library,
                    std::vector<std::string>& out) {
  if (library.count(node.op())) out.push_back(node.op());
  for (const auto& [name, value] : node.attr()) {
    if (value.has_func()) out.push_back(value.func().name());
    for (const auto& func : value.list().func()) out.push_back(func.name());
  }
}

}  // namespace

int SkipXlaOnQcpu(tensorflow::GraphDef& graph) {
  std::unordered_map<std::string, tensorflow::FunctionDef*> library;
  for (auto& function : *graph.mutable_library()->mutable_function())
    library[function.signature().name()] = &function;

  int changed = 0;
  std::vector<std::string> pending;
  for (auto& node : *graph.mutable_node()) {
    if (!OnQcpu(node)) continue;
    changed += ClearMustCompile(*node.mutable_attr());
    CollectCallees(node, library, pending);
  }
  // Everything reachable from a QCPU call runs there too.
  std::unordered_set<std::string> visited;
  while (!pending.empty()) {
    const std::string name = pending.back();
    pending.pop_back();
    auto it = library.find(name);
    if (it == library.end() || !visited.insert(name).second) continue;
    tensorflow::FunctionDef& function = *it->second;
    changed += ClearMustCompile(*function.mutable_attr());
    for (auto& node : *function.mutable_node_def()) {
      changed += ClearMustCompile(*node.mutable_attr());
      CollectCallees(node, library, pending);
    }
  }
  return changed;
}

int MarkLoopsForLowering(tensorflow::GraphDef& graph) {
  int marked = 0;
  for (auto& node : *graph.mutable_node()) {
    if (!OnQcpu(node) || (node.op() != "While" && node.op() != "StatelessWhile")) continue;
    tensorflow::AttrValue& lower = (*node.mutable_attr())["_lower_using_switch_merge"];
    if (lower.b()) continue;
    lower.set_b(true);
    ++marked;
  }
  return marked;
}

}  // namespace int8flow::graph
