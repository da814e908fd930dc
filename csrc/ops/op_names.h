// The op vocabulary the graph pass and the kernels share: our private ops'
// names, what the pass rewrites into and the kernels serve (kernels/
// op_definitions.cc defines them), the args each entry of `fused_ops` reads,
// the private twins' name rule and the kernel labels the pass picks. Their
// names start with _Qcpu, so they never collide with TF's or another
// plugin's. No TensorFlow, no oneDNN: the graph pass reads it as it is.
#pragma once

#include <string>

namespace int8flow::ops {

// _QcpuFusedMatMul(a, b, args...): MatMul, then `fused_ops` in order:
//   "BiasAdd" (args[0], a vector of N), "Add" (the next arg, shaped like the
//   product), and at most one activation from activations.h.
inline constexpr char kFusedMatMul[] = "_QcpuFusedMatMul";
// _QcpuFusedConv2D(input, filter, args...) and its depthwise twin: the
// convolution (Conv2D's attrs), then `fused_ops` as kernels/fused_ops.h
// reads them, "Scale" included (a folded BatchNorm).
inline constexpr char kFusedConv2D[] = "_QcpuFusedConv2D";
inline constexpr char kFusedDepthwiseConv2D[] = "_QcpuFusedDepthwiseConv2dNative";
// _QcpuFusedConv3D(input, filter, args...): the same for Conv3D (NDHWC, its
// attrs), its affine part and activation.
inline constexpr char kFusedConv3D[] = "_QcpuFusedConv3D";
// _QcpuFusedConv2DBackpropInput(input_sizes, filter, out_backprop, args...):
// Conv2DTranspose, as TF's op (its attrs), then `fused_ops`: "BiasAdd" and
// activations.
inline constexpr char kFusedConv2DBackpropInput[] = "_QcpuFusedConv2DBackpropInput";
// The same for Conv3DTranspose: Conv3DBackpropInputV2's inputs and attrs.
inline constexpr char kFusedConv3DBackpropInput[] = "_QcpuFusedConv3DBackpropInputV2";
// _QcpuLayerNorm(x, epsilon, args...): layer normalization over the last
// dim, epsilon a scalar, then `fused_ops`: "Scale" (gamma) and "BiasAdd"
// (beta), each a vector of that dim's size, either or both or neither
// (Keras' scale=False / center=False, or Grappler folding an identity one).
inline constexpr char kLayerNorm[] = "_QcpuLayerNorm";
// _QcpuScaleShift(x, args...): x * scale + offset over the last dim, then
// at most one activation: `fused_ops` "Scale", "BiasAdd" (each a vector of
// that dim's size) and "Relu", "Relu6" or "LeakyRelu". Keras 3's inference BatchNormalization
// where no convolution or product before it takes it (BN-ReLU before a conv,
// BN after pooling or a Dense's activation): one pass instead of three.
inline constexpr char kScaleShift[] = "_QcpuScaleShift";
// _QcpuLstmCell(z, c_prev) -> (h, c): a Keras LSTM step after its gates'
// product z [batch, 4 * units], its quarters i, f, g, o in that order:
// c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g), h = sigmoid(o) * tanh(c).
inline constexpr char kLstmCell[] = "_QcpuLstmCell";
// _QcpuGruCell(xz, xr, xh, rz, rr, rh, h_prev) -> h: a Keras GRU step
// (reset_after) after its two products' parts, all [batch, units]:
// z = sigmoid(xz + rz), r = sigmoid(xr + rr), h = z * h_prev +
// (1 - z) * tanh(xh + r * rh).
inline constexpr char kGruCell[] = "_QcpuGruCell";

// How many args one entry of `fused_ops` reads: BiasAdd and Scale a vector,
// BatchNorm mean, variance, gamma, beta and epsilon, FusedBatchNorm TF's
// scale, offset, mean and variance (epsilon an attr), Add its addend; an
// activation none.
inline int FusedOpArgs(const std::string& op) {
  if (op == "BatchNorm") return 5;
  if (op == "FusedBatchNorm") return 4;
  return op == "BiasAdd" || op == "Scale" || op == "Add" ? 1 : 0;
}

// INT8. A quantized tensor q stands for scale * (q - zero_point).
// _QcpuQuantize(x) -> (y: u8/s8, scale, zero_point): with mode "dynamic",
//   the range is x's own, found per call (u8 asymmetric, s8 symmetric); with
//   "static", static_scale and static_zero_point.
// _QcpuDequantize(x, scale, zero_point) -> float.
inline constexpr char kQuantize[] = "_QcpuQuantize";
// _QcpuQuantizeWeights(w) -> (q: s8, scales): symmetric, one scale per
// channel along `channel_axis`, at 7 bits on CPUs without VNNI (no u8·s8 pair
// can saturate then). Cached per weight buffer, never stale (kernels/
// packed_weights.h explains why): a variable's weights are quantized once,
// not per call.
inline constexpr char kQuantizeWeights[] = "_QcpuQuantizeWeights";
inline constexpr char kDequantize[] = "_QcpuDequantize";
// _QcpuQuantizedMatMul(a, b, a_scale, a_zero_point, b_scales, args...) and
// the convolutions (input, filter, input_scale, input_zero_point,
// filter_scales, args...): activations u8 or s8 with a scalar scale and zero
// point, weights s8 symmetric with one scale per output channel (or one for
// all), then the float op's `fused_ops` on the float result. Tout float
// gives that result; u8/s8 requantizes it with out_scale, out_zero_point.
inline constexpr char kQuantizedMatMul[] = "_QcpuQuantizedMatMul";
// _QcpuQuantizedBatchMatMul(x, y, x_scale, x_zero_point, y_scales, args...):
// BatchMatMulV2 (adj_x, adj_y, broadcasting batch dims) of u8/s8 x and s8 y
// (attention's Q·Kᵀ and P·V, quantized per call), one scale per column of y
// or one for all, then the fused ops as above.
inline constexpr char kQuantizedBatchMatMul[] = "_QcpuQuantizedBatchMatMul";
inline constexpr char kQuantizedConv2D[] = "_QcpuQuantizedConv2D";
inline constexpr char kQuantizedDepthwiseConv2D[] = "_QcpuQuantizedDepthwiseConv2dNative";
inline constexpr char kQuantizedConv3D[] = "_QcpuQuantizedConv3D";

// TF's oneDNN layout pass (on unless TF_ENABLE_ONEDNN_OPTS=0) rewrites
// MatMul, Softmax, Conv2D, Relu... into _Mkl ops on every device whose name
// contains "CPU", QCPU included, and QCPU has no kernel for those. So each
// standard op with a QCPU kernel gets a private twin, `_Qcpu<Op>`: TF's OpDef
// and shape function under our name. The graph pass renames QCPU nodes to
// their twins (graph/optimizer.cc); the kernel serves both names.
inline std::string PrivateTwinName(const std::string& op) { return "_Qcpu" + op; }

// The _QcpuQuantize kernel that reads its input in host memory: the pass
// picks it (the node's `_kernel` attr) for a graph input on TF's CPU.
inline constexpr char kHostInputLabel[] = "host_input";
// The Identity kernel whose output TF keeps in host memory: the pass picks it
// for an Identity that hands a QCPU result to TF's CPU (kernels/indexing.cc).
inline constexpr char kHostOutputLabel[] = "host_output";

}  // namespace int8flow::ops
