// The activations a Keras RNN cell may be given (`activation=` of SimpleRNN,
// LSTM, GRU: relu, elu, selu, softplus, gelu, ...) and their gradients, as
// element loops: in the cell's loop body, which runs on QCPU alone (loop_ops.cc
// says why), each must have a QCPU kernel, and `fit` of a SimpleRNN with
// activation="relu" failed on ReluGrad. Each formula is TF's CPU kernel's
// (Eigen's), in the same order of operations. They serve loop bodies, and
// top-level nodes that QCPU nodes feed (a training step's ReluGrad): elsewhere
// TF's vectorized CPU kernels run them (KernelSpec::loop_only).
#include "kernels/activation_loops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/half_as_float.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSeluScaleAlpha = 1.7580993408473768599402175208123f;

float Softplus(float x) {
  // log(exp(x) + 1), but x itself where exp(x) + 1 rounds to exp(x), and
  // exp(x) where it rounds to 1.
  static const float threshold = std::log(std::numeric_limits<float>::epsilon()) + 2.f;
  if (x > -threshold) return x;
  const float e = std::exp(x);
  return x < threshold ? e : std::log(e + 1.f);
}

float Expm1(float x) { return std::expm1(x); }
float Erfc(float x) { return std::erfc(x); }
float Softsign(float x) { return x / (std::fabs(x) + 1.f); }
float Selu(float x) { return x < 0 ? kSeluScaleAlpha * (std::exp(x) - 1.f) : kSeluScale * x; }
// -1, 0 (either zero) or 1, NaN for NaN: Lion's update, in a cond's branch.
float Sign(float x) { return x != x ? x : static_cast<float>((x > 0) - (x < 0)); }
float Cos(float x) { return std::cos(x); }
float Sin(float x) { return std::sin(x); }
float Tan(float x) { return std::tan(x); }
float Atan(float x) { return std::atan(x); }
float Erf(float x) { return std::erf(x); }
float Floor(float x) { return std::floor(x); }
float Ceil(float x) { return std::ceil(x); }
float Round(float x) { return std::nearbyint(x); }  // half to even, as TF's
float Reciprocal(float x) { return 1.f / x; }
float Rsqrt(float x) { return 1.f / std::sqrt(x); }

// Each op's loop, inlined and vectorized where its math allows: a call
// through a pointer per element made Floor or Sign 10-20x slower than TF's
// CPU kernel on a million elements.
template <float (*Apply)(float)>
INT8FLOW_VECTOR_CLONES void ElementLoop(const float* x, float* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) y[i] = Apply(x[i]);
}

struct UnaryOp {
  const char* op;
  UnaryLoop loop;
  bool loop_only = true;  // false: the op has a kernel of its own, which uses the loop
};
const UnaryOp kUnaryOps[] = {
    {"Expm1", &ElementLoop<Expm1>},
    {"Erfc", &ElementLoop<Erfc>},
    {"Softplus", &ElementLoop<Softplus>},
    {"Softsign", &ElementLoop<Softsign>},
    {"Selu", &ElementLoop<Selu>},
    {"Sign", &ElementLoop<Sign>},
    // The element math a user's tf.while_loop body may hold.
    {"Cos", &ElementLoop<Cos>},
    {"Sin", &ElementLoop<Sin>},
    {"Tan", &ElementLoop<Tan>},
    {"Atan", &ElementLoop<Atan>},
    {"Erf", &ElementLoop<Erf>},
    {"Floor", &ElementLoop<Floor>},
    {"Ceil", &ElementLoop<Ceil>},
    {"Round", &ElementLoop<Round>},
    {"Reciprocal", &ElementLoop<Reciprocal>},
    // The activation kernel's (elementwise.cc): oneDNN 3.2 runs Rsqrt's
    // second step, pow as a post-op, in its reference code.
    {"Rsqrt", &ElementLoop<Rsqrt>, false},
};

class UnaryKernel {
 public:
  explicit UnaryKernel(TF_OpKernelConstruction* ctx) {
    const std::string op = OpType(ctx);
    loop_ = FindUnaryLoop(op);
    Require(loop_ != nullptr, "no QCPU loop kernel for " + op);
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    OwnedTensor y = ctx.forward_input_or_allocate_output(shape, 0, x);
    RunUnaryLoop(loop_, Data<float>(x.get()), Data<float>(y.get()), NumElements(shape));
  }

 private:
  UnaryLoop loop_ = nullptr;
};

// A gradient op: out = apply(input 0, input 1), two tensors of one shape.
// TF's argument order: (gradients, features or outputs), but (y, dy) for
// SigmoidGrad, TanhGrad, SqrtGrad, RsqrtGrad and ReciprocalGrad.
float ReluGrad(float g, float x) { return g * (x > 0 ? 1.f : 0.f); }
float Relu6Grad(float g, float x) { return g * (x > 0 && x < 6 ? 1.f : 0.f); }
float EluGrad(float g, float y) { return y < 0 ? g * (y + 1.f) : g; }
float SeluGrad(float g, float y) { return y < 0 ? g * (y + kSeluScaleAlpha) : g * kSeluScale; }
float SoftsignGrad(float g, float x) {
  const float d = std::fabs(x) + 1.f;
  return g / (d * d);
}
float SigmoidGrad(float y, float dy) { return dy * y * (1.f - y); }
float TanhGrad(float y, float dy) { return dy * (1.f - y * y); }
// These three give 0 for a zero dy, as TF's do (where 0 / 0 or 0 * Inf is NaN).
float SqrtGrad(float y, float dy) { return dy == 0 ? 0.f : (0.5f * dy) / y; }
float RsqrtGrad(float y, float dy) { return dy == 0 ? 0.f : (-0.5f * (dy * y)) * (y * y); }
float ReciprocalGrad(float y, float dy) { return dy == 0 ? 0.f : -y * y * dy; }

// Each op's loop, inlined and vectorized: a layer's gradient in a training
// step runs here (MoveLoopOnlyNodesToCpu leaves one fed by QCPU on QCPU),
// where a call through a pointer per element took 60 us for 8192 elements.
template <float (*Apply)(float, float)>
INT8FLOW_VECTOR_CLONES void GradientLoop(const float* a, const float* b, float* out, int64_t begin,
                                         int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = Apply(a[i], b[i]);
}

struct GradientOp {
  const char* op;
  void (*loop)(const float*, const float*, float*, int64_t, int64_t);
};
const GradientOp kGradientOps[] = {
    {"ReluGrad", &GradientLoop<ReluGrad>},
    {"Relu6Grad", &GradientLoop<Relu6Grad>},
    {"EluGrad", &GradientLoop<EluGrad>},
    {"SeluGrad", &GradientLoop<SeluGrad>},
    {"SoftsignGrad", &GradientLoop<SoftsignGrad>},
    {"SigmoidGrad", &GradientLoop<SigmoidGrad>},
    {"TanhGrad", &GradientLoop<TanhGrad>},
    {"SqrtGrad", &GradientLoop<SqrtGrad>},
    {"RsqrtGrad", &GradientLoop<RsqrtGrad>},
    {"ReciprocalGrad", &GradientLoop<ReciprocalGrad>},
};

class GradientKernel {
 public:
  explicit GradientKernel(TF_OpKernelConstruction* ctx) : op_(OpType(ctx)) {
    for (const GradientOp& g : kGradientOps)
      if (op_ == g.op) loop_ = g.loop;
    Require(loop_ != nullptr, "no QCPU loop kernel for " + op_);
  }

  void Compute(KernelContext& ctx) {
    RequireSameShapes(ctx, op_);
    OwnedTensor a = ctx.input(0), b = ctx.input(1);
    const auto shape = Shape(a.get());
    OwnedTensor out = ctx.forward_input_or_allocate_output(shape, 0, a);
    const float *x = Data<float>(a.get()), *y = Data<float>(b.get());
    float* z = Data<float>(out.get());
    ForChunks(NumElements(shape),
              [&](int64_t begin, int64_t end, int) { loop_(x, y, z, begin, end); });
  }

  static void RequireSameShapes(const KernelContext& ctx, const std::string& op) {
    const auto a = ctx.input_shape(0), b = ctx.input_shape(1);
    Require(a == b, [&] {
      return "Inputs to operation " + op + " must have the same shape: " + ShapeString(a) +
             " vs. " + ShapeString(b);
    });
  }

 private:
  const std::string op_;
  void (*loop_)(const float*, const float*, float*, int64_t, int64_t) = nullptr;
};

class LeakyReluGradKernel {
 public:
  explicit LeakyReluGradKernel(TF_OpKernelConstruction* ctx) : alpha_(GetFloatAttr(ctx, "alpha")) {}

  void Compute(KernelContext& ctx) {
    GradientKernel::RequireSameShapes(ctx, "LeakyReluGrad");
    const float alpha = alpha_;
    BroadcastBinary<float, float>(ctx, TF_FLOAT,
                                  [alpha](float g, float x) { return x > 0 ? g : g * alpha; });
  }

 private:
  const float alpha_;
};

// LogSoftmax over the last dim: x - max - log(sum(exp(x - max))), row by row.
class LogSoftmaxKernel {
 public:
  explicit LogSoftmaxKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    Require(!shape.empty(),
            [&] { return "logits must have >= 1 dimension, got " + ShapeString(shape); });
    OwnedTensor y = ctx.allocate_output(0, shape, TF_FLOAT);
    const int64_t n = shape.back(), rows = n == 0 ? 0 : NumElements(shape) / n;
    const float* in = Data<float>(x.get());
    float* out = Data<float>(y.get());
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = in + r * n;
      float* to = out + r * n;
      const float max = *std::max_element(row, row + n);
      float sum = 0.f;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(row[i] - max);
      const float log_sum = std::log(sum);
      for (int64_t i = 0; i < n; ++i) to[i] = (row[i] - max) - log_sum;
    }
  }
};

// Select (v1): the condition has t's shape, is a vector over t's first dim, or a scalar.
class SelectKernel {
 public:
  explicit SelectKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor condition = ctx.input(0), t = ctx.input(1), e = ctx.input(2);
    const auto c_shape = Shape(condition.get()), shape = Shape(t.get());
    Require(Shape(e.get()) == shape, [&] {
      return "'then' and 'else' must have the same size.  but received: " + ShapeString(shape) +
             " vs. " + ShapeString(Shape(e.get()));
    });
    const bool rows = c_shape.size() == 1 && shape.size() > 1;
    Require(c_shape == shape || c_shape.empty() || (rows && c_shape[0] == shape[0]), [&] {
      return "condition " + ShapeString(c_shape) + " must be a scalar, a vector over the first " +
             "dim of, or shaped like 'then' " + ShapeString(shape);
    });
    OwnedTensor out = ctx.allocate_output(0, shape, TF_FLOAT);
    const bool* c = Data<bool>(condition.get());
    const float *a = Data<float>(t.get()), *b = Data<float>(e.get());
    float* z = Data<float>(out.get());
    const int64_t n = NumElements(shape);
    // The condition's element for output element i: i / per (per: 1, a row, or all).
    const int64_t per = c_shape == shape  ? 1
                        : c_shape.empty() ? std::max<int64_t>(n, 1)
                                          : n / std::max<int64_t>(shape[0], 1);
    for (int64_t i = 0; i < n; ++i) z[i] = c[i / per] ? a[i] : b[i];
  }
};

// Fill: `dims` (host memory) of `value`.
class FillKernel {
 public:
  explicit FillKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor dims = ctx.input(0), value = ctx.input(1);
    Require(TF_NumDims(dims.get()) <= 1,
            [&] { return "dims must be a vector, got shape " + ShapeString(Shape(dims.get())); });
    Require(TF_NumDims(value.get()) == 0,
            [&] { return "value must be a scalar, got shape " + ShapeString(Shape(value.get())); });
    const std::vector<int64_t> shape = IntValues(dims.get());
    for (int64_t d : shape)
      Require(d >= 0, [&] { return "dims must not be negative: " + ShapeString(shape); });
    OwnedTensor out = ctx.allocate_output(0, shape, TF_FLOAT);
    float* z = Data<float>(out.get());
    std::fill(z, z + NumElements(shape), *Data<float>(value.get()));
  }
};

}  // namespace

UnaryLoop FindUnaryLoop(const std::string& op) {
  for (const UnaryOp& u : kUnaryOps)
    if (op == u.op) return u.loop;
  return nullptr;
}

void RunUnaryLoop(UnaryLoop loop, const float* x, float* y, int64_t n) {
  ForChunks(n, [&](int64_t begin, int64_t end, int) { loop(x, y, begin, end); });
}

void RegisterActivationLoopKernels(const char* device_type, TF_Status* status) {
  const auto ok = [&] { return TF_GetCode(status) == TF_OK; };
  for (const UnaryOp& u : kUnaryOps)
    if (ok() && u.loop_only)
      RegisterWithHalfTypes<UnaryKernel>(LoopOnly({u.op}), device_type, status);
  for (const GradientOp& g : kGradientOps)
    if (ok()) RegisterWithHalfTypes<GradientKernel>(LoopOnly({g.op}), device_type, status);
  if (ok())
    RegisterWithHalfTypes<LeakyReluGradKernel>(LoopOnly({"LeakyReluGrad"}), device_type, status);
  if (ok()) RegisterWithHalfTypes<LogSoftmaxKernel>(LoopOnly({"LogSoftmax"}), device_type, status);
  if (ok()) RegisterWithHalfTypes<SelectKernel>(LoopOnly({"Select"}), device_type, status);
  for (TF_DataType index : {TF_INT32, TF_INT64})
    if (ok())
      RegisterWithHalfTypes<FillKernel>(
          LoopOnly({"Fill", {{"T", TF_FLOAT}, {"index_type", index}}, {"dims"}}), device_type,
          status);
}

}  // namespace int8flow::kernels
