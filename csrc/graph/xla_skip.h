// Keras 3 compiles predict() with XLA by default (jit_compile="auto"), and XLA
// has no JIT device for QCPU, so the call fails. XLA would also bypass our
// kernels. This rewrite clears `_XlaMustCompile` on nodes placed on QCPU and
// on every function they call, so those functions run, op by op, on QCPU.
#pragma once

#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {

// Returns how many nodes and functions were changed.
int SkipXlaOnQcpu(tensorflow::GraphDef& graph);

// A while loop traced for XLA lacks `_lower_using_switch_merge`, so TF runs
// it as a While op: each step calls the condition and the body as functions
// (an executor run each), which this pass never sees, unfused. Marked, it is
// lowered to Switch/Merge by Grappler's function optimizer in the next
// round, and the pass then sees its body like any other nodes: Keras'
// predict of an LSTM(128) ran 120-127 ms against stock TF's XLA 64, now
// 76-107 (2 cores, noisy).
// Returns how many While nodes on QCPU were marked.
int MarkLoopsForLowering(tensorflow::GraphDef& graph);

}  // namespace int8flow::graph
