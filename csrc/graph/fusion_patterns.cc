#include "graph/fusion_patterns.h"

#include "kernels/activations.h"
#include "kernels/op_definitions.h"

namespace int8flow::graph {
namespace {

std::vector<std::string> ActivationOps() {
  std::vector<std::string> ops;
  for (const auto& a : kernels::Activations()) ops.push_back(a.op);
  return ops;
}

// MatMul + bias [+ residual Add] [+ activation]. Grappler's arithmetic
// optimizer may already have regrouped (x@w + b) + r as AddN(x@w, r) + b;
// sums commute, so both orders become the same fused op.
std::vector<FusionPattern> MatMulFusions() {
  const PatternNode matmul{"matmul", {"MatMul"}, {"$a", "$b"}};
  const std::vector<std::string> adds = {"AddV2", "Add", "AddN"};
  const std::vector<std::string> bias_ops = {"BiasAdd", "AddV2", "Add"};
  const ShapeCheck bias_check{ShapeCheck::kVectorOfLastDim, "$bias", "matmul"};
  const ShapeCheck addend_check{ShapeCheck::kSameShape, "$addend", "matmul"};
  const std::vector<AttrCopy> attrs = {{"matmul", "transpose_a", "transpose_a"},
                                       {"matmul", "transpose_b", "transpose_b"},
                                       {"activation", "alpha", "leakyrelu_alpha"}};
  const std::string op = kernels::kFusedMatMul;
  const std::vector<std::string> with_addend = {"$a", "$b", "$bias", "$addend"};
  const std::vector<std::string> without_addend = {"$a", "$b", "$bias"};
  const PatternNode activation_after_add{"activation", ActivationOps(), {"add"}};
  const PatternNode activation_after_bias{"activation", ActivationOps(), {"bias"}};
  // Bias first, then the residual add.
  const PatternNode bias_on_product{"bias", bias_ops, {"matmul", "$bias"}};
  const PatternNode add_on_bias{"add", adds, {"bias", "$addend"}};
  // Residual add first, then the bias.
  const PatternNode add_on_product{"add", adds, {"matmul", "$addend"}};
  const PatternNode bias_on_add{"bias", bias_ops, {"add", "$bias"}};
  return {
      {"MatMul+BiasAdd+Add+activation", {matmul, bias_on_product, add_on_bias, activation_after_add},
       {bias_check, addend_check}, op, with_addend, {"BiasAdd", "Add", "@activation"}, attrs},
      {"MatMul+Add+BiasAdd+activation", {matmul, add_on_product, bias_on_add, activation_after_bias},
       {bias_check, addend_check}, op, with_addend, {"BiasAdd", "Add", "@activation"}, attrs},
      {"MatMul+BiasAdd+activation", {matmul, bias_on_product, activation_after_bias},
       {bias_check}, op, without_addend, {"BiasAdd", "@activation"}, attrs},
      {"MatMul+BiasAdd+Add", {matmul, bias_on_product, add_on_bias},
       {bias_check, addend_check}, op, with_addend, {"BiasAdd", "Add"}, attrs},
      {"MatMul+Add+BiasAdd", {matmul, add_on_product, bias_on_add},
       {bias_check, addend_check}, op, with_addend, {"BiasAdd", "Add"}, attrs},
      {"MatMul+BiasAdd", {matmul, bias_on_product}, {bias_check}, op, without_addend, {"BiasAdd"}, attrs},
  };
}

}  // namespace

const std::vector<FusionPattern>& FusionPatterns() {
  static const std::vector<FusionPattern> table = [] {
    std::vector<FusionPattern> t = {
        // tf.nn.gelu(x, approximate=False) in TF 2.21: 0.5 * erfc(-x / sqrt(2)) * x.
        {"gelu (erf)",
         {{"neg", {"Neg"}, {"$x"}},
          {"scaled", {"Mul"}, {"=0.7071067811865476", "neg"}},
          {"erfc", {"Erfc"}, {"scaled"}},
          {"half", {"Mul"}, {"=0.5", "erfc"}},
          {"gelu", {"Mul"}, {"half", "$x"}}},
         {}, "_QcpuGeluExact", {"$x"}},
        // tf.nn.gelu(x, approximate=True):
        // 0.5 * (1 + tanh(sqrt(2/pi) * (0.044715 * x^3 + x))) * x, after
        // Grappler's arithmetic optimizer turned x^3 into x * Square(x).
        {"gelu (tanh)",
         {{"square", {"Square"}, {"$x"}},
          {"cube", {"Mul"}, {"$x", "square"}},
          {"cubic", {"Mul"}, {"=0.044715", "cube"}},
          {"inner", {"AddV2", "Add"}, {"cubic", "$x"}},
          {"scaled", {"Mul"}, {"inner", "=0.7978845608028654"}},
          {"tanh", {"Tanh"}, {"scaled"}},
          {"one_plus", {"AddV2", "Add"}, {"tanh", "=1"}},
          {"half", {"Mul"}, {"=0.5", "one_plus"}},
          {"gelu", {"Mul"}, {"half", "$x"}}},
         {}, "_QcpuGeluTanh", {"$x"}},
        // swish / silu: x * sigmoid(x).
        {"swish",
         {{"sigmoid", {"Sigmoid"}, {"$x"}}, {"swish", {"Mul"}, {"$x", "sigmoid"}}},
         {}, "_QcpuSwish", {"$x"}},
    };
    for (FusionPattern& p : MatMulFusions()) t.push_back(std::move(p));
    return t;
  }();
  return table;
}

}  // namespace int8flow::graph
