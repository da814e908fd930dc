#include "kernels/activations.h"

namespace int8flow::kernels {

const std::vector<Activation>& Activations() {
  using alg = dnnl::algorithm;
  static const std::vector<Activation> table = {
      {"Relu", alg::eltwise_relu, 0.f, 0.f},
      {"Relu6", alg::eltwise_clip_v2, 0.f, 6.f},
      {"Elu", alg::eltwise_elu, 1.f, 0.f},
      {"LeakyRelu", alg::eltwise_relu, 0.2f, 0.f, /*alpha_from_attr=*/true},
      {"Sigmoid", alg::eltwise_logistic, 0.f, 0.f},
      {"Tanh", alg::eltwise_tanh, 0.f, 0.f},
      // Plain element-wise math; as post-ops they are as valid as activations.
      {"Neg", alg::eltwise_linear, -1.f, 0.f},
      {"Abs", alg::eltwise_abs, 0.f, 0.f},
      {"Square", alg::eltwise_square, 0.f, 0.f},
      {"Sqrt", alg::eltwise_sqrt, 0.f, 0.f},
      {"Log", alg::eltwise_log, 0.f, 0.f},
      // 1 / sqrt(x) in two steps: oneDNN's pow(x, -0.5) is finite for x < 0,
      // where sqrt gives NaN as TF does.
      {"Rsqrt", alg::eltwise_sqrt, 0.f, 0.f, false, alg::eltwise_pow, 1.f, -1.f},
      // Written by the pass for the subgraphs tf.nn.gelu and x*sigmoid(x) emit.
      {"_QcpuGeluExact", alg::eltwise_gelu_erf, 0.f, 0.f},
      {"_QcpuGeluTanh", alg::eltwise_gelu_tanh, 0.f, 0.f},
      {"_QcpuSwish", alg::eltwise_swish, 1.f, 0.f},
  };
  return table;
}

void AppendActivation(dnnl::post_ops& ops, const Activation& a, float alpha) {
  ops.append_eltwise(a.algorithm, alpha, a.beta);
  if (a.then != dnnl::algorithm::undef) ops.append_eltwise(a.then, a.then_alpha, a.then_beta);
}

const Activation* FindActivation(const std::string& op) {
  for (const Activation& a : Activations())
    if (op == a.op) return &a;
  return nullptr;
}

}  // namespace int8flow::kernels
