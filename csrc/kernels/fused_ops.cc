#include "kernels/fused_ops.h"

#include <cmath>

#include "kernels/onednn_util.h"
#include "kernels/quantization.h"
#include "ops/op_names.h"

namespace int8flow::kernels {

FusedOps::FusedOps(TF_OpKernelConstruction* ctx, bool allow_scale) {
  if (!TF_OpKernelConstruction_HasAttr(ctx, "fused_ops", nullptr)) return;
  for (const std::string& op : GetStringListAttr(ctx, "fused_ops")) {
    const bool affine =
        op == "BiasAdd" ||
        (allow_scale && (op == "Scale" || op == "BatchNorm" || op == "FusedBatchNorm"));
    if (affine) {
      Require(post_ops_.empty(), "fused_ops: '" + op + "' must come before Add and activations");
      affine_.push_back(op == "BiasAdd"     ? kBias
                        : op == "Scale"     ? kScale
                        : op == "BatchNorm" ? kBatchNorm
                                            : kFusedBatchNorm);
      affine_args_ += ops::FusedOpArgs(op);
      if (affine_.back() == kFusedBatchNorm) epsilon_ = GetFloatAttr(ctx, "epsilon");
    } else if (op == "Add") {
      Require(!has_addend_, "fused_ops may hold one Add");
      has_addend_ = true;
      post_ops_.push_back({nullptr, 0.f});
    } else if (const Activation* a = FindActivation(op)) {
      // Read only when used: ops without activations (LayerNorm) lack the attr.
      post_ops_.push_back(
          {a, a->alpha_from_attr ? GetFloatAttr(ctx, "leakyrelu_alpha") : a->alpha});
    } else {
      throw KernelError("unsupported fused op '" + op + "' in fused_ops");
    }
  }
  if (TF_OpKernelConstruction_HasAttr(ctx, "Targs", nullptr)) ReadArgTypes(ctx);
}

void FusedOps::ReadArgTypes(TF_OpKernelConstruction* ctx) {
  const std::vector<TF_DataType> types = GetTypeListAttr(ctx, "Targs");
  Require(static_cast<int>(types.size()) == num_args(), [&] {
    return "fused_ops needs " + std::to_string(num_args()) + " args, got " +
           std::to_string(types.size());
  });
  for (int i = 0; i < num_args(); ++i)
    Require(types[i] == TF_FLOAT || (has_addend_ && i == addend_arg()), [&] {
      return "only the fused Add's input may be int8; arg " + std::to_string(i) + " must be float";
    });
  if (!has_addend_ || types[addend_arg()] == TF_FLOAT) return;
  const bool u8 = types[addend_arg()] == TF_UINT8;
  addend_type_ = u8 ? dnnl::memory::data_type::u8 : dnnl::memory::data_type::s8;
  addend_scale_ = GetFloatAttr(ctx, "addend_scale");
  const int64_t zero_point = GetIntAttr(ctx, "addend_zero_point");
  RequireScale(addend_scale_, "addend_scale");
  RequireZeroPoint(zero_point, u8, "addend_zero_point");
  addend_zero_point_ = static_cast<float>(zero_point);
}

bool FusedOps::has_bias() const {
  for (Affine a : affine_)
    if (a != kScale) return true;
  return false;
}

bool FusedOps::has_scale() const {
  for (Affine a : affine_)
    if (a != kBias) return true;
  return false;
}

void FusedOps::FoldAffine(const std::vector<OwnedTensor>& args, int64_t channels,
                          std::vector<float>& scale, std::vector<float>& bias) const {
  scale.clear();
  bias.clear();
  size_t next = 0;
  // `channels` values in any shape: [C], [1, ..., 1, C], or [12, 64] for a
  // bias the pass moved before a Reshape that split C (fusion_patterns.cc).
  const auto vector_arg = [&](const char* what) {
    const TF_Tensor* t = args[next++].get();
    const auto shape = Shape(t);
    Require(!shape.empty() && NumElements(shape) == channels, [&] {
      return std::string(what) + " must be a vector of " + std::to_string(channels) + ", got " +
             ShapeString(shape);
    });
    return Data<float>(t);
  };
  const auto multiply = [&](const float* by) {
    if (scale.empty()) scale.assign(channels, 1.f);
    for (int64_t c = 0; c < channels; ++c) scale[c] *= by[c];
    for (size_t c = 0; c < bias.size(); ++c) bias[c] *= by[c];
  };
  const auto add = [&](const float* by) {
    if (bias.empty()) return bias.assign(by, by + channels);
    for (int64_t c = 0; c < channels; ++c) bias[c] += by[c];
  };
  for (Affine op : affine_) {
    if (op == kBias) {
      add(vector_arg("bias"));
    } else if (op == kScale) {
      multiply(vector_arg("the fused scale"));
    } else {
      // As tf.nn.batch_normalization computes it, in float32:
      // s = gamma * rsqrt(variance + epsilon); y = x * s + (beta - mean * s).
      // Its args are mean, variance, gamma, beta and an epsilon tensor;
      // FusedBatchNorm's are TF's op's order, scale (gamma), offset (beta),
      // mean and variance, with epsilon an attr.
      const float *mean, *variance, *gamma, *beta;
      float eps = epsilon_;
      if (op == kBatchNorm) {
        mean = vector_arg("mean");
        variance = vector_arg("variance");
        gamma = vector_arg("gamma");
        beta = vector_arg("beta");
        const TF_Tensor* epsilon = args[next++].get();
        Require(TF_TensorElementCount(epsilon) == 1, "epsilon must be a scalar");
        eps = *Data<float>(epsilon);
      } else {
        gamma = vector_arg("scale");
        beta = vector_arg("offset");
        mean = vector_arg("mean");
        variance = vector_arg("variance");
      }
      std::vector<float> s(channels), shift(channels);
      for (int64_t c = 0; c < channels; ++c) {
        s[c] = gamma[c] * (1.f / std::sqrt(variance[c] + eps));
        shift[c] = beta[c] - mean[c] * s[c];
      }
      multiply(s.data());
      add(shift.data());
    }
  }
}

std::vector<OwnedTensor> FusedOps::ReadArgs(const KernelContext& ctx, int first_arg) const {
  const int expected = first_arg + num_args();
  Require(ctx.num_inputs() == expected, [&] {
    return "expected " + std::to_string(expected) + " inputs for its fused_ops, got " +
           std::to_string(ctx.num_inputs());
  });
  std::vector<OwnedTensor> args;
  for (int i = first_arg; i < expected; ++i) args.push_back(ctx.input(i));
  return args;
}

const TF_Tensor* FusedOps::Addend(const std::vector<OwnedTensor>& args,
                                  const std::vector<int64_t>& out_shape) const {
  if (!has_addend_) return nullptr;
  const TF_Tensor* addend = args[addend_arg()].get();
  Require(Shape(addend) == out_shape, [&] {
    return "the fused Add's input must be " + ShapeString(out_shape) + ", got " +
           ShapeString(Shape(addend));
  });
  return addend;
}

dnnl::post_ops FusedOps::MakePostOps(const dnnl::memory::desc& addend) const {
  dnnl::post_ops ops;
  const bool int8_addend = addend_type_ != dnnl::memory::data_type::f32;
  for (const PostOp& op : post_ops_) {
    if (op.activation) {
      AppendActivation(ops, *op.activation, op.alpha);
    } else if (int8_addend) {
      // A binary post-op reads int8 as plain numbers: y + s * (r - z) is
      // computed as s * ((y / s - z) + r).
      ops.append_eltwise(dnnl::algorithm::eltwise_linear, 1.f / addend_scale_, -addend_zero_point_);
      ops.append_binary(dnnl::algorithm::binary_add, addend);
      ops.append_eltwise(dnnl::algorithm::eltwise_linear, addend_scale_, 0.f);
    } else {
      ops.append_binary(dnnl::algorithm::binary_add, addend);
    }
  }
  return ops;
}

int FusedOps::addend_arg_id() const {
  // The binary's index among the post-ops MakePostOps appends before it.
  int index = addend_type_ != dnnl::memory::data_type::f32 ? 1 : 0;
  for (const PostOp& op : post_ops_) {
    if (!op.activation) return DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1;
    index += op.activation->then == dnnl::algorithm::undef ? 1 : 2;
  }
  return -1;
}

}  // namespace int8flow::kernels
