// What static and dynamic INT8 quantize: the float TF ops the graph pass
// turns into quantized ops (graph/int8_rewrite.cc builds its table from this
// one) and the rules a node must meet. Python reads the same rows
// (int8flow._native.quantizable_ops()) to choose what int8flow.quantize
// calibrates. Data only, free of TF and oneDNN: the Python module, which links
// neither, includes it too.
#pragma once

#include "ops/op_names.h"

namespace int8flow::ops {

struct QuantizableOp {
  const char* op;            // TF's float op, unfused, as a frozen graph holds it
  const char* fused_op;      // what the fusion pass makes of it (quantized too), or nullptr
  const char* quantized_op;  // what both become
  // The weights' rank (0: any). A rank is set where the quantized op takes
  // less than the float op: a BatchMatMulV2 by one matrix (Keras' Dense on
  // 3-D inputs, EinsumDense) becomes a MatMul, a depthwise filter has 4 dims.
  int weight_rank;
  // The filter is [kh, kw, ic, multiplier]: only multiplier 1 quantizes, its
  // channel axis 2 (one scale per output channel).
  bool depthwise;
  // The bool attr that, when true, moves the weights' channel axis from the
  // last to 0 (the quantized op's transpose_b), or nullptr. Else the channel
  // axis is the last (2 for depthwise).
  const char* transpose_weights_attr;
  const char* refused_attr;  // a bool attr that must be false (a transposed x), or nullptr
  const char* data_format;   // the only data_format quantized (convolutions), or nullptr
};

// Dynamic INT8 quantizes a layer's input per call, one pass over it, which
// pays only where each input element feeds enough multiply-adds: below this
// many (a MatMul's output width; a convolution's kh * kw * output channels
// over its stride) the layer stays FP32. The break-even measured with VNNI
// (docs/int8.md, "Dynamic INT8"); without VNNI it lies higher.
inline constexpr double kMinDynamicMacsPerInput = 64;

inline constexpr QuantizableOp kQuantizableOps[] = {
    {"MatMul", kFusedMatMul, kQuantizedMatMul, 0, false, "transpose_b", "transpose_a", nullptr},
    {"BatchMatMulV2", nullptr, kQuantizedMatMul, 2, false, "adj_y", "adj_x", nullptr},
    {"Conv2D", kFusedConv2D, kQuantizedConv2D, 0, false, nullptr, nullptr, "NHWC"},
    {"DepthwiseConv2dNative", kFusedDepthwiseConv2D, kQuantizedDepthwiseConv2D, 4, true, nullptr,
     nullptr, "NHWC"},
    {"Conv3D", kFusedConv3D, kQuantizedConv3D, 0, false, nullptr, nullptr, "NDHWC"},
};

}  // namespace int8flow::ops
