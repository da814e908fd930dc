// The activations (and other element-wise unary ops) QCPU runs, standalone
// and as post-ops of fused kernels: their op names, which the graph pass
// fuses and the kernels serve. kernels/activations.cc maps each name to its
// oneDNN eltwise algorithm, one table for the standalone kernels and the
// fused ones, so the two can never disagree.
#pragma once

namespace int8flow::ops {

inline constexpr char kRelu[] = "Relu";
inline constexpr char kRelu6[] = "Relu6";
inline constexpr char kElu[] = "Elu";
inline constexpr char kLeakyRelu[] = "LeakyRelu";
inline constexpr char kSigmoid[] = "Sigmoid";
inline constexpr char kTanh[] = "Tanh";
// Plain element-wise math; as post-ops they are as valid as activations.
inline constexpr char kNeg[] = "Neg";
inline constexpr char kAbs[] = "Abs";
inline constexpr char kSquare[] = "Square";
inline constexpr char kSqrt[] = "Sqrt";
inline constexpr char kLog[] = "Log";
inline constexpr char kRsqrt[] = "Rsqrt";
// Written by the pass for the subgraphs tf.nn.gelu and x*sigmoid(x) emit:
// ops of our own, with no TF op (kernels/op_definitions.cc defines them).
inline constexpr char kGeluExact[] = "_QcpuGeluExact";
inline constexpr char kGeluTanh[] = "_QcpuGeluTanh";
inline constexpr char kSwish[] = "_QcpuSwish";

// Every one of them, in the order of the kernels' table.
inline constexpr const char* kActivationOps[] = {kRelu, kRelu6, kElu,       kLeakyRelu, kSigmoid,
                                                 kTanh, kNeg,   kAbs,       kSquare,    kSqrt,
                                                 kLog,  kRsqrt, kGeluExact, kGeluTanh,  kSwish};

}  // namespace int8flow::ops
