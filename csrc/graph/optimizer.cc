#include "graph/optimizer.h"

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/tf_status.h"
#include "graph/graph_shapes.h"
#include "graph/fusion_table_json.h"
#include "graph/graph_util.h"
#include "graph/int8_rewrite.h"
#include "graph/pattern_matcher.h"
#include "graph/registration.h"
#include "graph/xla_skip.h"
#include "kernels/op_definitions.h"
#include "kernels/register_kernels.h"
#include "runtime/runtime.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def_util.h"  // ValidateNodeDef
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"  // KernelDefAvailable

namespace int8flow::graph {
namespace {

// Fetches, feeds and keep-alive nodes: never removed or renamed.
std::set<std::string> NodesToPreserve(const TF_GrapplerItem* item) {
  OwnedStatus status;
  int count = 0;
  size_t storage_size = 0;
  TF_GetNodesToPreserveListSize(item, &count, &storage_size, status.get());
  if (!status.ok()) return {};
  std::vector<char*> names(count);
  std::vector<size_t> lengths(count);
  std::string storage(storage_size, '\0');
  TF_GetNodesToPreserveList(item, names.data(), lengths.data(), count, storage.data(),
                            storage.size(), status.get());
  std::set<std::string> preserve;
  for (int i = 0; status.ok() && i < count; ++i) preserve.emplace(names[i], lengths[i]);
  return preserve;
}

// A Const on CPU read only by QCPU nodes is copied to QCPU on every call.
// Constant folding leaves such Consts behind: it gives a folded node's Const
// that node's device, and a QDQ graph's Dequantize of int8 weights sits on
// CPU (no QCPU kernel). Moved to QCPU, they are read in place. Integer
// Consts stay: TF keeps those in host memory for shape inputs.
void MoveConstantsToQcpu(tensorflow::GraphDef& graph) {
  const Readers readers = ReadersOf(graph);
  std::map<std::string, std::string> moves;  // Const -> a QCPU reader's device
  for (const tensorflow::NodeDef& node : graph.node()) {
    if (node.op() != "Const" || !OnCpu(node)) continue;
    const auto dtype = node.attr().find("dtype");
    if (dtype == node.attr().end() || dtype->second.type() != tensorflow::DT_FLOAT) continue;
    const auto users = readers.find(node.name());
    if (users == readers.end()) continue;
    bool all_qcpu = true;
    for (const tensorflow::NodeDef* user : users->second) all_qcpu = all_qcpu && OnQcpu(*user);
    if (all_qcpu) moves[node.name()] = users->second.front()->device();
  }
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    const auto move = moves.find(node.name());
    if (move != moves.end()) node.set_device(move->second);
  }
}

// A Shape, Size or Rank on CPU reading a QCPU tensor copies the whole tensor
// to the host every call, to read its shape. TF's placer puts one there when
// its input's producer was on CPU at placement and a rewrite moved it later
// (int8flow.quantize's embeddings: Dequantize). On QCPU its kernel reads only
// the shape, and its output is in host memory already.
void MoveShapeReadersToQcpu(tensorflow::GraphDef& graph) {
  std::unordered_map<std::string, std::string> qcpu_device_of;
  for (const tensorflow::NodeDef& node : graph.node())
    if (OnQcpu(node)) qcpu_device_of[node.name()] = node.device();
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    if ((node.op() != "Shape" && node.op() != "Size" && node.op() != "Rank") || !OnCpu(node) ||
        node.input_size() < 1)
      continue;
    const auto producer = qcpu_device_of.find(ParseTensorRef(node.input(0)).node);
    if (producer != qcpu_device_of.end()) node.set_device(producer->second);
  }
}

// A function result that TF wants on its CPU (QuantizedModel asks so, with
// an Identity under tf.device("/CPU:0") that Grappler folds into the
// _Retval) but a QCPU node makes costs a device-to-host copy and a wait on
// TF's event manager: 0.12 ms a call at MobileNetV2's batch 1. QCPU's memory
// is host memory, so an Identity on QCPU whose kernel hands its output over
// in host memory (indexing.cc) now sits between them, and TF's CPU reads the
// result in place.
int HandResultsToHost(tensorflow::GraphDef& graph) {
  std::unordered_map<std::string, std::string> qcpu_device_of;  // QCPU node -> its device
  for (const tensorflow::NodeDef& node : graph.node())
    if (OnQcpu(node) && node.op() != "_Arg") qcpu_device_of[node.name()] = node.device();
  std::map<std::string, std::string> handed;  // QCPU tensor -> its host Identity
  const int original_size = graph.node_size();
  for (int i = 0; i < original_size; ++i) {
    const tensorflow::NodeDef& result = graph.node(i);
    if (result.op() != "_Retval" || !OnCpu(result) || result.input_size() != 1) continue;
    const auto dtype = result.attr().find("T");
    if (dtype == result.attr().end() || dtype->second.type() != tensorflow::DT_FLOAT) continue;
    const std::string input = result.input(0);
    const TensorRef ref = ParseTensorRef(input);
    const auto producer = qcpu_device_of.find(ref.node);
    if (ref.port < 0 || producer == qcpu_device_of.end()) continue;
    auto [it, added] = handed.emplace(input, ref.node + "/host_output_" + std::to_string(ref.port));
    if (added) {
      tensorflow::NodeDef& identity = *graph.add_node();
      identity.set_name(it->second);
      identity.set_op("Identity");
      identity.set_device(producer->second);
      identity.add_input(input);
      (*identity.mutable_attr())["T"].set_type(tensorflow::DT_FLOAT);
      (*identity.mutable_attr())["_kernel"].set_s(kernels::kHostOutputLabel);
    }
    graph.mutable_node(i)->set_input(0, it->second);
  }
  return static_cast<int>(handed.size());
}

// Runs last: QCPU nodes become their private twins, out of reach of TF's
// oneDNN layout pass (kernels/op_definitions.h explains why).
void RenameToPrivateTwins(tensorflow::GraphDef& graph) {
  for (tensorflow::NodeDef& node : *graph.mutable_node())
    if (OnQcpu(node) && kernels::TwinKernelServes(node))
      node.set_op(kernels::PrivateTwinName(node.op()));
}

// Grappler's arithmetic optimizer rewrites nodes after TF placed them, and may
// leave one on QCPU as an op QCPU has no kernel for: log(1 + x) becomes Log1p,
// exp(x) - 1 becomes Expm1, x * ones becomes Tile. TF would fail the call with
// NotFound. Such a node goes to TF's CPU instead, like any op without a QCPU
// kernel, and is counted as one (stats()["cpu_ops"]). Runs after the twin
// renaming, whose names have kernels.
void MoveKernellessNodesToCpu(tensorflow::GraphDef& graph) {
  static const tensorflow::DeviceType qcpu(device::kDeviceType);
  const std::string qcpu_part = std::string("/device:") + device::kDeviceType + ":";
  for (tensorflow::NodeDef& node : *graph.mutable_node()) {
    if (!OnQcpu(node) || tensorflow::KernelDefAvailable(qcpu, node)) continue;
    std::string where = node.device();
    where.replace(where.find(qcpu_part), qcpu_part.size(), "/device:CPU:");
    node.set_device(where);
    runtime::WarnOnce("'" + node.op() + "', made by a graph rewrite after placement, " +
                      "has no QCPU kernel: it runs on TF's CPU");
  }
}

// With INT8FLOW_DUMP_GRAPHS=<folder>: <n>_<stage>.pb, binary GraphDefs, the
// same n for one graph's "before" and "after".
void DumpGraph(const void* data, size_t size, int64_t n, const char* stage) {
  const std::string& folder = runtime::GetSettings().dump_graphs;
  if (folder.empty()) return;
  std::ofstream(folder + "/" + std::to_string(n) + "_" + stage + ".pb", std::ios::binary)
      .write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Every node against its op's definition. TF drops a pass's whole output
// when one node is invalid (a required attr missing), and runs the graph
// as it came, where TF's oneDNN layout pass then rewrites QCPU nodes into
// ops QCPU has no kernel for; a thrown error gives UseInputGraph's twins.
void CheckNodesAgainstOpDefs(const tensorflow::GraphDef& graph) {
  for (const tensorflow::NodeDef& node : graph.node()) {
    const tensorflow::OpDef* op_def = nullptr;
    // Not an op: a call of a library function, which the pass never makes.
    if (!tensorflow::OpRegistry::Global()->LookUpOpDef(node.op(), &op_def).ok()) continue;
    // With the defaults TF fills in before it checks; a Const (weights: no
    // copy) has no attr with a default.
    absl::Status status;
    if (node.op() == "Const") {
      status = tensorflow::ValidateNodeDef(node, *op_def);
    } else {
      tensorflow::NodeDef with_defaults = node;
      tensorflow::AddDefaultsToNodeDef(*op_def, &with_defaults);
      status = tensorflow::ValidateNodeDef(with_defaults, *op_def);
    }
    if (!status.ok()) throw std::runtime_error("made an invalid node: " + std::string(status.message()));
  }
}

// The rewrites on a parsed graph. May throw: Optimize is the boundary.
void Rewrite(tensorflow::GraphDef& graph, const TF_GrapplerItem* item) {
  if (runtime::FaultInjected("graph_pass")) throw std::out_of_range("injected failure (INT8FLOW_TEST_FAULT=graph_pass)");
  if (SkipXlaOnQcpu(graph) > 0) {
    runtime::WarnOnce(
        "XLA (jit_compile) is skipped for functions placed on QCPU: they run op by op, "
        "without XLA. Set INT8FLOW_DISABLE=1 to use XLA on CPU.");
  }
  if (kernels::KernelsRegistered()) {
    const std::set<std::string> preserve = NodesToPreserve(item);
    if (runtime::GetSettings().fusion) {
      const GraphShapes shapes(item);
      for (const auto& [pattern, count] : ApplyFusions(graph, shapes, preserve))
        runtime::RecordFusions(pattern, count);
    }
    for (const auto& [rewrite, count] : QuantizeForInt8(graph, runtime::QuantizeDynamic(), preserve))
      runtime::RecordFusions(rewrite, count);
    MoveConstantsToQcpu(graph);
    MoveShapeReadersToQcpu(graph);
    if (const int handed = HandResultsToHost(graph)) runtime::RecordFusions("result handed to host", handed);
    RenameToPrivateTwins(graph);
    MoveKernellessNodesToCpu(graph);
    CheckNodesAgainstOpDefs(graph);
  }
}

// Hands TF `graph_buf` back as it came but for the XLA skip (without it
// Keras' XLA predict fails on QCPU) and the private twins (without them
// TF's oneDNN layout pass turns Pad + Conv2D on QCPU into an op QCPU has no
// kernel for), after a rewrite failed for `reason`.
void UseInputGraph(const TF_Buffer* graph_buf, tensorflow::GraphDef& graph, const std::string& reason) {
  runtime::RecordPassError(reason);
  runtime::WarnOnce("the QCPU graph pass failed (" + reason + "): TF runs the graph as it came, op by op on QCPU");
  graph.ParseFromArray(graph_buf->data, static_cast<int>(graph_buf->length));
  try {
    SkipXlaOnQcpu(graph);
    if (kernels::KernelsRegistered()) RenameToPrivateTwins(graph);
  } catch (...) {
    graph.ParseFromArray(graph_buf->data, static_cast<int>(graph_buf->length));
  }
}

void OptimizeGraph(const TF_Buffer* graph_buf, const TF_GrapplerItem* item, TF_Buffer* optimized_graph_buf,
                   TF_Status* status) {
  tensorflow::GraphDef graph;
  if (!graph.ParseFromArray(graph_buf->data, static_cast<int>(graph_buf->length))) {
    // Grappler keeps the input graph when a pass fails; say why.
    return SetError(status, TF_INVALID_ARGUMENT, "QCPU pass could not parse the GraphDef");
  }
  static std::atomic<int64_t> graphs_seen{0};
  const int64_t graph_number = graphs_seen++;
  DumpGraph(graph_buf->data, graph_buf->length, graph_number, "before");
  try {
    Rewrite(graph, item);
  } catch (const std::exception& e) {
    UseInputGraph(graph_buf, graph, e.what());
  } catch (...) {
    UseInputGraph(graph_buf, graph, "an unknown exception");
  }
  // A function's arguments and results sit where its callers' tensors are:
  // boundaries, not fallbacks.
  for (const tensorflow::NodeDef& node : graph.node())
    if (OnCpu(node) && node.op() != "_Arg" && node.op() != "_Retval") runtime::RecordCpuOp(node.op());
  const std::string bytes = graph.SerializeAsString();
  DumpGraph(bytes.data(), bytes.size(), graph_number, "after");
  SetGraphOutput(optimized_graph_buf, bytes.data(), bytes.size());
  SetOk(status);
}

// TF's Grappler callback: no exception may cross it, or Python aborts. A
// failed rewrite gives TF the input graph back (UseInputGraph), counted in
// stats()["pass_errors"]; anything else (memory) is an error status, on
// which Grappler keeps the input graph itself.
void Optimize(void*, const TF_Buffer* graph_buf, const TF_GrapplerItem* item,
              TF_Buffer* optimized_graph_buf, TF_Status* status) {
  CatchAtBoundary(status, "the QCPU graph pass",
                  [&] { OptimizeGraph(graph_buf, item, optimized_graph_buf, status); });
}

}  // namespace

void InitGraph(TP_OptimizerRegistrationParams* params, TF_Status* status) {
  if (runtime::FaultInjected("graph_init"))
    return SetError(status, TF_INTERNAL, "injected failure (INT8FLOW_TEST_FAULT=graph_init)");
  RegisterOptimizer(params, Optimize);
  runtime::SetFusionTable(FusionTableJson());
  // TF's remapper treats any device whose name holds "CPU" as a CPU, QCPU
  // too: it fused FusedBatchNorm + Relu on QCPU into _FusedBatchNormEx,
  // which has no QCPU kernel (NotFound at run time), before this pass could
  // fold both into the conv. On QCPU the fusion table is the remapper.
  params->optimizer_configs->remapping = TF_TriState_Off;
  SetOk(status);
}

}  // namespace int8flow::graph
