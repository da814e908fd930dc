// INT8 after fusion: a float MatMul or Conv2D on QCPU, fused or not, becomes
// its quantized op:
//   x -> _QcpuQuantize (u8) ----------------------+
//   w -> _QcpuQuantizeWeights (s8, per channel) --+-> _QcpuQuantized<Op>
// keeping the node's name, its fused ops (bias, folded BatchNorm, residual
// add, activation) and a float output. Two triggers:
// - static: x comes from an 8-bit QDQ node with a fixed range (a QDQ graph:
//   FakeQuantWithMinMaxArgs as int8flow.quantize saves, or
//   QuantizeAndDequantizeV4 with a given range): x is quantized with that
//   range, always;
// - dynamic (INT8FLOW_QUANTIZE=dynamic): any other x, its range found per
//   call.
// Weights stored as int8 -> Dequantize (SCALED), an int8 Const or a
// Bitcast of an int8 tensor, feed the kernel as they are; other weights are
// quantized once per buffer, per channel.
// Depthwise convolutions (multiplier 1) run INT8 only in static INT8, with
// stored int8 or constant filters, chained to their neighbours: dynamic INT8
// leaves them FP32, as they do too little work per input byte to pay for
// quantizing their input per call (docs/benchmarks.md).
// A quantized layer whose output every reader quantizes again with one fixed
// range, or adds in, outputs that int8 itself (chains, int8_chains.cc).
#pragma once

#include <map>
#include <set>
#include <string>

#include "graph/graph_shapes.h"
#include "tensorflow/core/framework/graph.pb.h"

namespace int8flow::graph {

// Rewrites `graph` in place; returns the count of rewrites by trigger and op.
// A FakeQuant this leaves unread is removed, unless in `preserve`.
std::map<std::string, int> QuantizeForInt8(tensorflow::GraphDef& graph, const GraphShapes& shapes,
                                           bool dynamic, const std::set<std::string>& preserve);

}  // namespace int8flow::graph
