#include "graph/pass_through.h"

#include "common/tf_status.h"
#include "graph/registration.h"

namespace int8flow::graph {
namespace {

void PassThrough(void*, const TF_Buffer* graph_buf, const TF_GrapplerItem*,
                 TF_Buffer* optimized_graph_buf, TF_Status* status) {
  SetGraphOutput(optimized_graph_buf, graph_buf->data, graph_buf->length);
  SetOk(status);
}

}  // namespace

void RegisterPassThrough(TP_OptimizerRegistrationParams* params, const char* device_type) {
  RegisterOptimizer(params, PassThrough, device_type);
}

}  // namespace int8flow::graph
