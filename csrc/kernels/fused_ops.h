// The `fused_ops` attr of our fused kernels, parsed once per node:
//   - first, any run of "BiasAdd" (+ a per-channel vector), "Scale" (x a
//     per-channel vector), "BatchNorm" (inference batch norm from its
//     mean, variance, gamma and beta vectors and a scalar epsilon) and
//     "FusedBatchNorm" (the same from TF's op: scale, offset, mean and
//     variance vectors, and the `epsilon` attr): an affine map that the
//     kernel folds into its weights and bias;
//   - then at most one "Add" (+ a tensor shaped like the output) and any
//     activations from activations.h, as oneDNN post-ops in that order.
// Each BiasAdd, Scale and Add takes the next of the op's `args`; BatchNorm
// the next five, FusedBatchNorm four. The quantized ops type their args
// (`Targs`): the Add's may be u8/s8, standing for
// addend_scale * (addend - addend_zero_point); the others are float.
#pragma once

#include <string>
#include <vector>

#include "kernels/activations.h"
#include "kernels/kernel_registration.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace int8flow::kernels {

class FusedOps {
 public:
  // Reads `fused_ops` and `leakyrelu_alpha` when the node has them (a plain
  // MatMul or Conv2D has neither). `allow_scale`: whether the kernel can fold
  // a Scale into its weights.
  FusedOps(TF_OpKernelConstruction* ctx, bool allow_scale);

  int num_args() const { return affine_args_ + has_addend_; }
  // The affine ops' args: the first of `args`, before the Add's.
  int num_affine_args() const { return affine_args_; }
  bool has_bias() const;
  bool has_scale() const;
  bool has_addend() const { return has_addend_; }
  // The index among `args` of the Add's input.
  int addend_arg() const { return affine_args_; }
  bool empty() const { return affine_.empty() && post_ops_.empty(); }
  // The bias to hand oneDNN: a lone BiasAdd's arg in place, else `folded`
  // (FoldAffine's bias). Not const for oneDNN's sake: it only reads it.
  void* BiasData(const std::vector<OwnedTensor>& args, const std::vector<float>& folded) const {
    return bias_only() ? TF_TensorData(args[0].get()) : const_cast<float*>(folded.data());
  }

  // Folds the affine args (the first of the op's `args`, each a vector of
  // `channels`) into one scale and one bias: y = x * scale + bias. Either
  // stays empty when no op sets it.
  void FoldAffine(const std::vector<OwnedTensor>& args, int64_t channels, std::vector<float>& scale,
                  std::vector<float>& bias) const;

  // The node's `args`: its inputs from `first_arg` on, as many as fused_ops
  // needs, or a KernelError.
  std::vector<OwnedTensor> ReadArgs(const KernelContext& ctx, int first_arg) const;
  // The Add's input among `args`, checked to be shaped `out_shape`; nullptr
  // when there is no Add.
  const TF_Tensor* Addend(const std::vector<OwnedTensor>& args,
                          const std::vector<int64_t>& out_shape) const;

  // The Add's input type: f32, or u8/s8 for a quantized op's int8 addend.
  dnnl::memory::data_type addend_type() const { return addend_type_; }
  // The Add and activations as oneDNN post-ops; the Add reads `addend`,
  // a desc of addend_type().
  dnnl::post_ops MakePostOps(const dnnl::memory::desc& addend) const;
  // The execution argument id of the Add's input.
  int addend_arg_id() const;

 private:
  // A quantized op's `Targs`: the Add's input type, and an int8 one's scale.
  void ReadArgTypes(TF_OpKernelConstruction* ctx);

  enum Affine { kBias, kScale, kBatchNorm, kFusedBatchNorm };
  // True when the affine part is a single BiasAdd: its arg is the bias as is.
  bool bias_only() const { return affine_.size() == 1 && affine_[0] == kBias; }
  struct PostOp {
    const Activation* activation;  // nullptr: the Add
    float alpha;
  };
  std::vector<Affine> affine_;
  int affine_args_ = 0;
  float epsilon_ = 0.f;  // FusedBatchNorm's
  std::vector<PostOp> post_ops_;
  bool has_addend_ = false;
  dnnl::memory::data_type addend_type_ = dnnl::memory::data_type::f32;
  float addend_scale_ = 1.f, addend_zero_point_ = 0.f;  // an int8 addend's
};

}  // namespace int8flow::kernels
