// Keras 3 compiles predict() with XLA by default (jit_compile="auto"), and XLA
// has no JIT device for QCPU, so the call fails. XLA would also bypass our
// kernels. This rewrite clears `_XlaMustCompile` on nodes placed on QCPU and
// on every function they call, so those functions run, op by op, on QCPU.
#pragma once

#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {

// Returns how many nodes and functions were changed.
int SkipXlaOnQcpu(tensorflow::GraphDef& graph);

}  // namespace int8flow::graph
