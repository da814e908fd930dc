#include "graph/optimizer.h"

#include <atomic>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/tf_status.h"
#include "graph/fusion_table_json.h"
#include "graph/graph_shapes.h"
#include "graph/graph_util.h"
#include "graph/int8_rewrite.h"
#include "graph/pattern_matcher.h"
#include "graph/placement.h"
#include "graph/registration.h"
#include "graph/xla_skip.h"
#include "kernels/registered_kernels.h"
#include "ops/op_names.h"
#include "runtime/runtime.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def_util.h"  // ValidateNodeDef
#include "tensorflow/core/framework/op.h"

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

// Runs last: QCPU nodes become their private twins, out of reach of TF's
// oneDNN layout pass (ops/op_names.h explains why).
void RenameToPrivateTwins(tensorflow::GraphDef& graph) {
  for (tensorflow::NodeDef& node : *graph.mutable_node())
    if (OnQcpu(node) && kernels::TwinKernelServes(node))
      node.set_op(ops::PrivateTwinName(node.op()));
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
    if (!status.ok())
      throw std::runtime_error("made an invalid node: " + std::string(status.message()));
  }
}

// The rewrites on a parsed graph. May throw: Optimize is the boundary.
void Rewrite(tensorflow::GraphDef& graph, const TF_GrapplerItem* item) {
  if (runtime::FaultInjected("graph_pass"))
    throw std::out_of_range("injected failure (INT8FLOW_TEST_FAULT=graph_pass)");
  if (SkipXlaOnQcpu(graph) > 0) {
    runtime::WarnOnce(
        "XLA (jit_compile) is skipped for functions placed on QCPU: they run op by op, "
        "without XLA. Set INT8FLOW_DISABLE=1 to use XLA on CPU.");
  }
  if (kernels::KernelsRegistered()) {
    if (const int marked = MarkLoopsForLowering(graph))
      runtime::RecordFusions("while loop marked for lowering", marked);
    MoveNamedVariablesToCpu(graph);  // first: the rewrites then see where the values come from
    const std::set<std::string> preserve = NodesToPreserve(item);
    const GraphShapes shapes(item);
    if (runtime::GetSettings().fusion) {
      for (const auto& [pattern, count] : ApplyFusions(graph, shapes, preserve))
        runtime::RecordFusions(pattern, count);
    }
    for (const auto& [rewrite, count] :
         QuantizeForInt8(graph, shapes, runtime::QuantizeDynamic(), preserve))
      runtime::RecordFusions(rewrite, count);
    MoveLoopOnlyNodesToCpu(graph, shapes);  // before the rules that follow where values are
    MoveCpuFedElementwiseToCpu(graph);
    MoveConstantsToQcpu(graph);
    MoveShapeReadersToQcpu(graph);
    if (const int handed = HandResultsToHost(graph))
      runtime::RecordFusions("result handed to host", handed);
    RenameToPrivateTwins(graph);
    MoveKernellessNodesToCpu(graph);
    CheckNodesAgainstOpDefs(graph);
  }
}

// Hands TF `graph_buf` back as it came but for the XLA skip (without it
// Keras' XLA predict fails on QCPU), named variables on CPU (without that a
// v1 SavedModel cannot find its variables) and the private twins (without them
// TF's oneDNN layout pass turns Pad + Conv2D on QCPU into an op QCPU has no
// kernel for), after a rewrite failed for `reason`.
void UseInputGraph(const TF_Buffer* graph_buf, tensorflow::GraphDef& graph,
                   const std::string& reason) {
  runtime::RecordPassError(reason);
  runtime::WarnOnce("the QCPU graph pass failed (" + reason +
                    "): TF runs the graph as it came, op by op on QCPU");
  graph.ParseFromArray(graph_buf->data, static_cast<int>(graph_buf->length));
  try {
    SkipXlaOnQcpu(graph);
    if (kernels::KernelsRegistered()) {
      MoveNamedVariablesToCpu(graph);
      MoveLoopOnlyNodesToCpu(graph, GraphShapes(nullptr));  // no shapes: only what is sure
      RenameToPrivateTwins(graph);
      MoveKernellessNodesToCpu(graph);  // TF's own rewrites before the pass make such nodes too
    }
  } catch (...) {
    graph.ParseFromArray(graph_buf->data, static_cast<int>(graph_buf->length));
  }
}

void OptimizeGraph(const TF_Buffer* graph_buf, const TF_GrapplerItem* item,
                   TF_Buffer* optimized_graph_buf, TF_Status* status) {
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
    if (OnCpu(node) && node.op() != "_Arg" && node.op() != "_Retval")
      runtime::RecordCpuOp(node.op());
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
