#include "kernels/activations.h"

#include <cstddef>
#include <iterator>

#include "kernels/onednn_util.h"
#include "ops/activations.h"

namespace int8flow::kernels {
namespace {

using alg = dnnl::algorithm;
constexpr Activation kTable[] = {
    {ops::kRelu, alg::eltwise_relu, 0.f, 0.f},
    {ops::kRelu6, alg::eltwise_clip_v2, 0.f, 6.f},
    {ops::kElu, alg::eltwise_elu, 1.f, 0.f},
    {ops::kLeakyRelu, alg::eltwise_relu, 0.2f, 0.f, /*alpha_from_attr=*/true},
    {ops::kSigmoid, alg::eltwise_logistic, 0.f, 0.f},
    {ops::kTanh, alg::eltwise_tanh, 0.f, 0.f},
    {ops::kNeg, alg::eltwise_linear, -1.f, 0.f},
    {ops::kAbs, alg::eltwise_abs, 0.f, 0.f},
    {ops::kSquare, alg::eltwise_square, 0.f, 0.f},
    {ops::kSqrt, alg::eltwise_sqrt, 0.f, 0.f},
    {ops::kLog, alg::eltwise_log, 0.f, 0.f},
    // 1 / sqrt(x) in two steps: oneDNN's pow(x, -0.5) is finite for x < 0,
    // where sqrt gives NaN as TF does.
    {ops::kRsqrt, alg::eltwise_sqrt, 0.f, 0.f, false, alg::eltwise_pow, 1.f, -1.f},
    {ops::kGeluExact, alg::eltwise_gelu_erf, 0.f, 0.f},
    {ops::kGeluTanh, alg::eltwise_gelu_tanh, 0.f, 0.f},
    {ops::kSwish, alg::eltwise_swish, 1.f, 0.f},
};

// The table holds every activation op, and only those, in their order.
constexpr bool TableMatchesOps() {
  if (std::size(kTable) != std::size(ops::kActivationOps)) return false;
  for (size_t i = 0; i < std::size(kTable); ++i)
    if (kTable[i].op != ops::kActivationOps[i]) return false;
  return true;
}
static_assert(TableMatchesOps(), "kTable must map each of ops::kActivationOps, in its order");

}  // namespace

const std::vector<Activation>& Activations() {
  static const std::vector<Activation> table(std::begin(kTable), std::end(kTable));
  return table;
}

dnnl::eltwise_forward::primitive_desc ActivationPrimitiveDesc(const Activation& a, float alpha,
                                                              const dnnl::memory::desc& data) {
  dnnl::primitive_attr attr = UserScratchpadAttr();
  if (a.then != dnnl::algorithm::undef) {
    dnnl::post_ops then;
    then.append_eltwise(a.then, a.then_alpha, a.then_beta);
    attr.set_post_ops(then);
  }
  return dnnl::eltwise_forward::primitive_desc(Engine(), dnnl::prop_kind::forward_inference,
                                               a.algorithm, data, data, alpha, a.beta, attr);
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
