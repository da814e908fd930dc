// Dynamic INT8 (INT8FLOW_QUANTIZE=dynamic): after fusion, each float MatMul
// and Conv2D on QCPU, fused or not, becomes its quantized op:
//   x -> _QcpuQuantize (u8, range found per call) --+
//   w -> _QcpuQuantizeWeights (s8, per channel) ----+-> _QcpuQuantized<Op>
// keeping the node's name, its fused ops (bias, folded BatchNorm, residual
// add, activation) and a float output. Depthwise convolutions stay FP32: a
// depthwise conv does too little work per input byte to pay for quantizing
// its input (docs/benchmarks.md, INT8 layers).
#pragma once

#include <map>
#include <string>

#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {

// Rewrites `graph` in place; returns the count of rewrites by op.
std::map<std::string, int> QuantizeDynamically(tensorflow::GraphDef& graph);

}  // namespace int8flow::graph
