// Element-wise ops on oneDNN's eltwise, binary and softmax primitives.
#include "kernels/elementwise.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "kernels/activation_loops.h"
#include "kernels/activations.h"
#include "kernels/broadcast_binary.h"
#include "kernels/half_as_float.h"
#include "kernels/nan_rules.h"
#include "kernels/onednn_util.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

struct SimplePrimitive {
  dnnl::primitive primitive;
  memory::desc scratchpad;
};

template <class PrimitiveDesc, class Primitive>
SimplePrimitive Make(const PrimitiveDesc& pd) {
  return {Primitive(pd), pd.scratchpad_desc()};
}

// ---- activations -------------------------------------------------------------
struct Clamp {
  float lo, hi;
};

// oneDNN computes a relu of zero slope and a clip as vector max/min, which drop
// NaN where TF's standalone Relu and Relu6 keep it (nan_rules.h): those run as
// a clamp of our own instead, as fast (memory-bound). Not LeakyRelu: TF's is
// x * alpha below 0, so alpha 0 gives NaN for -Inf, which no clamp does.
// Fused post-ops keep oneDNN's rule, as TF's fused kernels do.
std::optional<Clamp> NanKeepingClamp(const Activation& a, float alpha) {
  if (a.then != dnnl::algorithm::undef || a.alpha_from_attr) return std::nullopt;
  if (a.algorithm == dnnl::algorithm::eltwise_relu && alpha == 0.f)
    return Clamp{0.f, std::numeric_limits<float>::infinity()};
  if (a.algorithm == dnnl::algorithm::eltwise_clip_v2) return Clamp{alpha, a.beta};
  return std::nullopt;
}

// `a` (with `alpha`) over the n floats at `x` into `y` (which may be `x`):
// oneDNN's eltwise primitive, built once per size.
void RunEltwise(KernelContext& ctx, PrimitiveCache<SimplePrimitive>& cache, const Activation& a,
                float alpha, const void* x, void* y, int64_t n) {
  const memory::desc md = PlainF32({n});
  auto p = cache.Get({n}, [&] {
    return Make<dnnl::eltwise_forward::primitive_desc, dnnl::eltwise_forward>(
        ActivationPrimitiveDesc(a, alpha, md));
  });
  Execute(ctx, p->primitive, p->scratchpad,
          {{DNNL_ARG_SRC, memory(md, Engine(), const_cast<void*>(x))},
           {DNNL_ARG_DST, memory(md, Engine(), y)}});
}

class ActivationKernel {
 public:
  explicit ActivationKernel(TF_OpKernelConstruction* ctx) {
    activation_ = FindActivation(OpType(ctx));
    Require(activation_ != nullptr, "no QCPU activation for this op");
    alpha_ = activation_->alpha_from_attr ? GetFloatAttr(ctx, "alpha") : activation_->alpha;
    clamp_ = NanKeepingClamp(*activation_, alpha_);
    // Rsqrt: 13 ms for 2^20 elements in oneDNN's reference pow, 0.05 in TF.
    loop_ = FindUnaryLoop(activation_->op);
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    OwnedTensor y = ctx.forward_input_or_allocate_output(shape, 0, x);
    if (NumElements(shape) == 0) return;
    if (clamp_)
      return ClampKeepingNaN(Data<float>(x.get()), Data<float>(y.get()), NumElements(shape),
                             clamp_->lo, clamp_->hi);
    if (loop_)
      return RunUnaryLoop(loop_, Data<float>(x.get()), Data<float>(y.get()), NumElements(shape));
    RunEltwise(ctx, cache_, *activation_, alpha_, TF_TensorData(x.get()), TF_TensorData(y.get()),
               NumElements(shape));
  }

 private:
  const Activation* activation_ = nullptr;
  float alpha_ = 0.f;
  std::optional<Clamp> clamp_;
  UnaryLoop loop_ = nullptr;
  PrimitiveCache<SimplePrimitive> cache_;
};

// Exp: oneDNN's jit exp, then TF's NaN rule (oneDNN gives +Inf for NaN)
// where the input holds one. Our scalar loop (libm per element) made a large
// Exp go to TF's CPU, its tensors copied across: 2.9x TF's time on 2^20 floats.
// Not an activation of the table: TF never fuses Exp, so a fused one could
// not keep TF's NaN.
class ExpKernel {
 public:
  explicit ExpKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    const int64_t n = NumElements(shape);
    const float* in = Data<float>(x.get());
    const bool repair_nan = AnyNaN(in, n);  // reads the input after: not in place then
    OwnedTensor y = repair_nan ? ctx.allocate_output(0, shape, TF_FLOAT)
                               : ctx.forward_input_or_allocate_output(shape, 0, x);
    if (n == 0) return;
    static constexpr Activation kExp = {"Exp", dnnl::algorithm::eltwise_exp, 0.f, 0.f};
    float* out = Data<float>(y.get());
    RunEltwise(ctx, cache_, kExp, 0.f, in, out, n);
    if (repair_nan) PropagateNaN(in, out, n);
  }

 private:
  PrimitiveCache<SimplePrimitive> cache_;
};

// ---- broadcasting binary ops ---------------------------------------------------
struct BinaryOp {
  const char* op;
  BinaryLoopOp loop;  // broadcast_binary.h, where oneDNN has no fast path
  dnnl::algorithm algorithm;
  // How to get op(a, b) from op(b, a) when only b has the full shape:
  // commutative ops need nothing; Sub negates; RealDiv takes the reciprocal.
  enum Swap { kCommutative, kNegate, kReciprocal } swap;
  bool square_result = false;  // SquaredDifference
  // Always our loop: oneDNN's max/min return the other operand for NaN
  // (nan_rules.h), and scanning for NaN to repair it made Maximum 1.7x TF's time.
  bool loop_only = false;
};

const std::vector<BinaryOp>& BinaryOps() {
  using alg = dnnl::algorithm;
  static const std::vector<BinaryOp> table = {
      {"AddV2", BinaryLoopOp::kAdd, alg::binary_add, BinaryOp::kCommutative},
      {"Add", BinaryLoopOp::kAdd, alg::binary_add, BinaryOp::kCommutative},
      {"Mul", BinaryLoopOp::kMul, alg::binary_mul, BinaryOp::kCommutative},
      {"Maximum", BinaryLoopOp::kMax, alg::undef, BinaryOp::kCommutative, false, true},
      {"Minimum", BinaryLoopOp::kMin, alg::undef, BinaryOp::kCommutative, false, true},
      {"Sub", BinaryLoopOp::kSub, alg::binary_sub, BinaryOp::kNegate},
      {"RealDiv", BinaryLoopOp::kDiv, alg::binary_div, BinaryOp::kReciprocal},
      {"SquaredDifference", BinaryLoopOp::kSquaredDifference, alg::binary_sub,
       BinaryOp::kCommutative, true},
  };
  return table;
}

std::vector<int64_t> PadToRank(const std::vector<int64_t>& shape, size_t rank) {
  std::vector<int64_t> out(rank - shape.size(), 1);
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

// dst = src0 <alg> src1, src1 broadcast to dst's dims, then `post`.
SimplePrimitive BuildBinary(dnnl::algorithm algorithm, const memory::dims& dst_dims,
                            const memory::dims& src1_dims, const dnnl::post_ops& post) {
  dnnl::primitive_attr attr = UserScratchpadAttr();
  attr.set_post_ops(post);
  const memory::desc dst = PlainF32(dst_dims);
  return Make<dnnl::binary::primitive_desc, dnnl::binary>(
      dnnl::binary::primitive_desc(Engine(), algorithm, dst, PlainF32(src1_dims), dst, attr));
}

void RunBinary(KernelContext& ctx, const SimplePrimitive& p, const memory::dims& dst_dims,
               const memory::dims& src1_dims, const void* src0, const void* src1, void* dst) {
  const memory::desc dst_md = PlainF32(dst_dims);
  Execute(ctx, p.primitive, p.scratchpad,
          {{DNNL_ARG_SRC_0, memory(dst_md, Engine(), const_cast<void*>(src0))},
           {DNNL_ARG_SRC_1, memory(PlainF32(src1_dims), Engine(), const_cast<void*>(src1))},
           {DNNL_ARG_DST, memory(dst_md, Engine(), dst)}});
}

class BinaryKernel {
 public:
  explicit BinaryKernel(TF_OpKernelConstruction* ctx) {
    const std::string op = OpType(ctx);
    for (const BinaryOp& b : BinaryOps())
      if (op == b.op) op_ = &b;
    Require(op_ != nullptr, "no QCPU binary kernel for " + op);
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor a = ctx.input(0), b = ctx.input(1);
    const auto a_shape = Shape(a.get()), b_shape = Shape(b.get());
    const auto out_shape = BroadcastShape(a_shape, b_shape);
    const size_t rank = std::max<size_t>(out_shape.size(), 1);
    const auto dims = OneDnnDims(PadToRank(out_shape, rank));
    auto a_dims = OneDnnDims(PadToRank(a_shape, rank)),
         b_dims = OneDnnDims(PadToRank(b_shape, rank));
    // oneDNN broadcasts src1 only: put the full-shaped operand first. With
    // neither full, or a broadcast oneDNN runs on its reference loop, our
    // loop takes both as they are (and NaN as TF does).
    const bool swapped = a_dims != dims && b_dims == dims;
    if (swapped) std::swap(a_dims, b_dims);

    // In src0's buffer when TF allows, as TF's own kernels do: no cold output
    // buffer to fill (AddV2 of a bias: 1.3x TF's time without, 0.5x with).
    OwnedTensor out =
        ctx.forward_input_or_allocate_output(out_shape, swapped ? 1 : 0, swapped ? b : a);
    if (NumElements(out_shape) == 0) return;
    const float *a_data = Data<float>(a.get()), *b_data = Data<float>(b.get());
    if (op_->loop_only)
      return BroadcastBinaryLoop(op_->loop, a_data, a_shape, b_data, b_shape,
                                 Data<float>(out.get()), out_shape);
    std::vector<int64_t> key(dims.begin(), dims.end());
    key.insert(key.end(), b_dims.begin(), b_dims.end());
    key.push_back(swapped);
    auto p = cache_.Get(key, [&] {
      Plan plan;
      if (a_dims != dims) return plan;  // neither operand is full
      plan.onednn = BuildBinary(op_->algorithm, dims, b_dims, PostOps(swapped));
      plan.reference = ImplementationOf(plan.onednn.primitive).rfind("ref", 0) == 0;
      return plan;
    });
    if (!p->onednn.primitive || p->reference) {
      return BroadcastBinaryLoop(op_->loop, a_data, a_shape, b_data, b_shape,
                                 Data<float>(out.get()), out_shape);
    }
    RunBinary(ctx, p->onednn, dims, b_dims, swapped ? b_data : a_data, swapped ? a_data : b_data,
              TF_TensorData(out.get()));
  }

 private:
  dnnl::post_ops PostOps(bool swapped) const {
    dnnl::post_ops post;
    if (swapped && op_->swap == BinaryOp::kNegate)
      post.append_eltwise(dnnl::algorithm::eltwise_linear, -1.f, 0.f);
    if (swapped && op_->swap == BinaryOp::kReciprocal)
      post.append_eltwise(dnnl::algorithm::eltwise_pow, 1.f, -1.f);
    if (op_->square_result) post.append_eltwise(dnnl::algorithm::eltwise_square, 0.f, 0.f);
    return post;
  }

  // oneDNN's primitive for the shapes, unless our loop runs them.
  struct Plan {
    SimplePrimitive onednn;
    bool reference = false;  // oneDNN picked its reference implementation
  };

  const BinaryOp* op_ = nullptr;
  PrimitiveCache<Plan> cache_;
};

// ---- AddN (Grappler's arithmetic optimizer turns chains of adds into it) ----------
// Our own loop, not oneDNN's sum: a gradient loop adds small weight
// gradients each step, where the sum primitive took 12-55 us for what this
// does in 2 (a [64,256] pair, 2-core EPYC). Summed in input order, as TF does.
INT8FLOW_VECTOR_CLONES
void SumInto(float* out, const float* const* in, int n, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = in[0][i] + in[1][i];
  for (int k = 2; k < n; ++k)
    for (int64_t i = begin; i < end; ++i) out[i] += in[k][i];
}

class AddNKernel {
 public:
  explicit AddNKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    const int n = ctx.num_inputs();
    std::vector<OwnedTensor> inputs;
    for (int i = 0; i < n; ++i) inputs.push_back(ctx.input(i));
    const auto shape = Shape(inputs[0].get());
    for (int i = 1; i < n; ++i) {
      Require(Shape(inputs[i].get()) == shape, [&] {
        return "Inputs to operation AddN must have the same size and shape. Input 0: " +
               ShapeString(shape) + " != input " + std::to_string(i) + ": " +
               ShapeString(Shape(inputs[i].get()));
      });
    }
    OwnedTensor out = ctx.forward_input_or_allocate_output(shape, 0, inputs[0]);
    const int64_t count = NumElements(shape);
    if (count == 0) return;
    float* sum = Data<float>(out.get());
    if (n == 1) {
      if (sum != Data<float>(inputs[0].get()))
        std::memcpy(sum, Data<float>(inputs[0].get()), count * sizeof(float));
      return;
    }
    std::vector<const float*> in;
    for (const OwnedTensor& t : inputs) in.push_back(Data<float>(t.get()));
    ForChunks(count,
              [&](int64_t begin, int64_t end, int) { SumInto(sum, in.data(), n, begin, end); });
  }
};

// ---- BiasAdd -------------------------------------------------------------------
class BiasAddKernel {
 public:
  explicit BiasAddKernel(TF_OpKernelConstruction* ctx)
      : channels_first_(GetStringAttr(ctx, "data_format") == "NCHW") {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), bias = ctx.input(1);
    const auto shape = Shape(x.get()), bias_shape = Shape(bias.get());
    Require(shape.size() >= 2,
            [&] { return "Input tensor must be at least 2D: " + ShapeString(shape); });
    Require(bias_shape.size() == 1,
            [&] { return "Biases must be 1D: " + ShapeString(bias_shape); });
    const size_t channel_dim = channels_first_ ? 1 : shape.size() - 1;
    Require(bias_shape[0] == shape[channel_dim], [&] {
      return "Must provide as many biases as the channel dimension of the input tensor: " +
             ShapeString(bias_shape) + " vs. " + ShapeString(shape);
    });
    OwnedTensor out = ctx.forward_input_or_allocate_output(shape, 0, x);
    if (NumElements(shape) == 0) return;
    const auto dims = OneDnnDims(shape);
    memory::dims bias_dims(dims.size(), 1);
    bias_dims[channel_dim] = bias_shape[0];
    auto p = cache_.Get(shape, [&] {
      return BuildBinary(dnnl::algorithm::binary_add, dims, bias_dims, dnnl::post_ops());
    });
    RunBinary(ctx, *p, dims, bias_dims, TF_TensorData(x.get()), TF_TensorData(bias.get()),
              TF_TensorData(out.get()));
  }

 private:
  const bool channels_first_;
  PrimitiveCache<SimplePrimitive> cache_;
};

// ---- Softmax -------------------------------------------------------------------
class SoftmaxKernel {
 public:
  explicit SoftmaxKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor logits = ctx.input(0);
    const auto shape = Shape(logits.get());
    Require(!shape.empty(), "logits must have at least one dimension");
    // In place when TF allows: oneDNN's softmax may write over its source.
    OwnedTensor out = ctx.forward_input_or_allocate_output(shape, 0, logits);
    if (NumElements(shape) == 0) return;
    const memory::desc md = PlainF32(OneDnnDims(shape));
    auto p = cache_.Get(shape, [&] {
      return Make<dnnl::softmax_forward::primitive_desc, dnnl::softmax_forward>(
          dnnl::softmax_forward::primitive_desc(
              Engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_accurate, md,
              md, static_cast<int>(shape.size()) - 1, UserScratchpadAttr()));
    });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, memory(md, Engine(), TF_TensorData(logits.get()))},
             {DNNL_ARG_DST, memory(md, Engine(), TF_TensorData(out.get()))}});
  }

 private:
  PrimitiveCache<SimplePrimitive> cache_;
};

}  // namespace

void RegisterElementwiseKernels(const char* device_type, TF_Status* status) {
  auto ok = [&] { return TF_GetCode(status) == TF_OK; };
  for (const Activation& a : Activations()) {
    if (ok()) RegisterWithHalfTypes<ActivationKernel>({a.op}, device_type, status);
  }
  for (const BinaryOp& b : BinaryOps()) {
    if (ok()) RegisterWithHalfTypes<BinaryKernel>({b.op}, device_type, status);
  }
  if (ok()) RegisterWithHalfTypes<AddNKernel>({"AddN"}, device_type, status);
  if (ok()) RegisterWithHalfTypes<BiasAddKernel>({"BiasAdd"}, device_type, status);
  if (ok()) RegisterWithHalfTypes<SoftmaxKernel>({"Softmax"}, device_type, status);
  if (ok()) RegisterWithHalfTypes<ExpKernel>({"Exp"}, device_type, status);
}

}  // namespace int8flow::kernels
