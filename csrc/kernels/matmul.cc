// MatMul and _QcpuFusedMatMul on oneDNN's matmul primitive, with the fused
// bias, residual add and activation as post-ops of the same primitive.
#include "kernels/matmul.h"

#include <cstring>

#include "kernels/activations.h"
#include "kernels/onednn_util.h"
#include "kernels/op_definitions.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

// One fused step after the product, parsed once from `fused_ops`.
struct PostOp {
  enum Kind { kAdd, kActivation } kind;
  const Activation* activation = nullptr;
  float alpha = 0.f;
};

struct MatMulPrimitive {
  dnnl::matmul primitive;
  memory::desc src, weights, bias, dst, addend, scratchpad;
};

class MatMulKernel {
 public:
  explicit MatMulKernel(TF_OpKernelConstruction* ctx)
      : transpose_a_(GetBoolAttr(ctx, "transpose_a")),
        transpose_b_(GetBoolAttr(ctx, "transpose_b")) {
    if (!TF_OpKernelConstruction_HasAttr(ctx, "fused_ops", nullptr)) return;
    const float leaky_alpha = GetFloatAttr(ctx, "leakyrelu_alpha");
    const std::vector<std::string> fused = GetStringListAttr(ctx, "fused_ops");
    for (size_t i = 0; i < fused.size(); ++i) {
      if (fused[i] == "BiasAdd" && i == 0) {
        has_bias_ = true;
      } else if (fused[i] == "Add") {
        Require(!has_addend_, "fused_ops may hold one Add");
        has_addend_ = true;
        post_ops_.push_back({PostOp::kAdd});
      } else if (const Activation* a = FindActivation(fused[i])) {
        post_ops_.push_back({PostOp::kActivation, a, a->alpha_from_attr ? leaky_alpha : a->alpha});
      } else {
        throw KernelError("unsupported fused op '" + fused[i] + "' in fused_ops");
      }
    }
  }

  void Compute(KernelContext& ctx) {
    const int expected_inputs = 2 + has_bias_ + has_addend_;
    Require(ctx.num_inputs() == expected_inputs,
            "expected " + std::to_string(expected_inputs) + " inputs for its fused_ops, got " +
                std::to_string(ctx.num_inputs()));
    OwnedTensor a = ctx.input(0), b = ctx.input(1);
    const auto a_shape = Shape(a.get()), b_shape = Shape(b.get());
    Require(a_shape.size() == 2 && b_shape.size() == 2,
            "MatMul takes matrices, got " + ShapeString(a_shape) + " and " + ShapeString(b_shape));
    const int64_t m = a_shape[transpose_a_ ? 1 : 0], k = a_shape[transpose_a_ ? 0 : 1];
    const int64_t n = b_shape[transpose_b_ ? 0 : 1], kb = b_shape[transpose_b_ ? 1 : 0];
    Require(k == kb, "Matrix size-incompatible: In[0]: " + ShapeString(a_shape) +
                         ", In[1]: " + ShapeString(b_shape));
    OwnedTensor bias = has_bias_ ? ctx.input(2) : nullptr;
    OwnedTensor addend = has_addend_ ? ctx.input(2 + has_bias_) : nullptr;
    if (bias) Require(Shape(bias.get()) == std::vector<int64_t>{n},
                      "bias must be a vector of " + std::to_string(n) + ", got " +
                          ShapeString(Shape(bias.get())));
    if (addend) Require(Shape(addend.get()) == std::vector<int64_t>{m, n},
                        "the fused Add's input must be " + ShapeString({m, n}) + ", got " +
                            ShapeString(Shape(addend.get())));

    OwnedTensor out = ctx.allocate_output(0, {m, n}, TF_FLOAT);
    if (m == 0 || n == 0) return;
    if (k == 0 && post_ops_.empty() && !has_bias_) {
      std::memset(TF_TensorData(out.get()), 0, TF_TensorByteSize(out.get()));
      return;
    }
    auto p = cache_.Get({m, k, n}, [&] { return Build(m, k, n); });
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(p->src, Engine(), TF_TensorData(a.get()))},
        {DNNL_ARG_WEIGHTS, memory(p->weights, Engine(), TF_TensorData(b.get()))},
        {DNNL_ARG_DST, memory(p->dst, Engine(), TF_TensorData(out.get()))}};
    if (bias) args.emplace(DNNL_ARG_BIAS, memory(p->bias, Engine(), TF_TensorData(bias.get())));
    for (size_t i = 0; i < post_ops_.size(); ++i) {
      if (post_ops_[i].kind != PostOp::kAdd) continue;
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(static_cast<int>(i)) | DNNL_ARG_SRC_1,
                   memory(p->addend, Engine(), TF_TensorData(addend.get())));
    }
    Execute(ctx, p->primitive, p->scratchpad, std::move(args));
  }

 private:
  MatMulPrimitive Build(int64_t m, int64_t k, int64_t n) const {
    MatMulPrimitive p;
    // A transposed operand is the same buffer read with swapped strides.
    p.src = memory::desc({m, k}, memory::data_type::f32,
                         transpose_a_ ? memory::dims{1, m} : memory::dims{k, 1});
    p.weights = memory::desc({k, n}, memory::data_type::f32,
                             transpose_b_ ? memory::dims{1, k} : memory::dims{n, 1});
    p.bias = PlainF32({1, n});
    p.dst = PlainF32({m, n});
    p.addend = p.dst;
    dnnl::post_ops ops;
    for (const PostOp& op : post_ops_) {
      if (op.kind == PostOp::kAdd)
        ops.append_binary(dnnl::algorithm::binary_add, p.addend);
      else
        ops.append_eltwise(op.activation->algorithm, op.alpha, op.activation->beta);
    }
    dnnl::primitive_attr attr = UserScratchpadAttr();
    attr.set_post_ops(ops);
    dnnl::matmul::primitive_desc pd =
        has_bias_ ? dnnl::matmul::primitive_desc(Engine(), p.src, p.weights, p.bias, p.dst, attr)
                  : dnnl::matmul::primitive_desc(Engine(), p.src, p.weights, p.dst, attr);
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::matmul(pd);
    return p;
  }

  const bool transpose_a_, transpose_b_;
  bool has_bias_ = false, has_addend_ = false;
  std::vector<PostOp> post_ops_;
  PrimitiveCache<MatMulPrimitive> cache_;
};

}  // namespace

void RegisterMatMulKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"MatMul", kFusedMatMul}) {
    RegisterKernel<MatMulKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
