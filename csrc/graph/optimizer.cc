#include "graph/optimizer.h"

#include <string>

#include "common/tf_status.h"
#include "graph/registration.h"
#include "graph/xla_skip.h"
#include "runtime/runtime.h"
#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {
namespace {

void Optimize(void*, const TF_Buffer* graph_buf, const TF_GrapplerItem*,
              TF_Buffer* optimized_graph_buf, TF_Status* status) {
  tensorflow::GraphDef graph;
  if (!graph.ParseFromArray(graph_buf->data, static_cast<int>(graph_buf->length))) {
    // Grappler keeps the input graph when a pass fails; say why.
    return SetError(status, TF_INVALID_ARGUMENT, "QCPU pass could not parse the GraphDef");
  }
  if (SkipXlaOnQcpu(graph) > 0) {
    runtime::WarnOnce(
        "XLA (jit_compile) is skipped for functions placed on QCPU: they run op by op, "
        "without XLA. Set INT8FLOW_DISABLE=1 to use XLA on CPU.");
  }
  const std::string bytes = graph.SerializeAsString();
  SetGraphOutput(optimized_graph_buf, bytes.data(), bytes.size());
  SetOk(status);
}

}  // namespace

void InitGraph(TP_OptimizerRegistrationParams* params, TF_Status* status) {
  if (runtime::FaultInjected("graph_init"))
    return SetError(status, TF_INTERNAL, "injected failure (INT8FLOW_TEST_FAULT=graph_init)");
  RegisterOptimizer(params, Optimize);
  SetOk(status);
}

}  // namespace int8flow::graph
