// The integer and scalar math that Keras optimizers run inside a cond's
// branches: the step counters of mixed_float16's loss scaling and of
// gradient accumulation (int64 AddV2, FloorDiv, FloorMod, Equal) and Adam's
// bias correction (Pow); Lion's Sign is in activation_loops.cc's table, and
// the float comparisons here serve RNN cells' activations too. Keras traces
// these conds for XLA (see loop_ops.cc), so they stay If ops, whose branches
// TF instantiates on QCPU alone: without these kernels every model failed
// `fit` under mixed_float16. They serve those bodies, and top-level nodes
// that QCPU nodes feed (KernelSpec::loop_only): the pass sends the other
// nodes it sees to TF's CPU, as before. DivNoNan: Keras' loss and metric means.
#include "kernels/branch_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <type_traits>

#include "kernels/half_as_float.h"
#include "kernels/shape_util.h"

namespace int8flow::kernels {
namespace {

// Two's-complement wrap-around, as TF's CPU kernels give, without C++'s
// undefined signed overflow.
int64_t Wrap(uint64_t v) { return static_cast<int64_t>(v); }

// Floor division and modulo, as TF's safe_floor_div/safe_floor_mod; the
// kernel has rejected a zero divisor. INT64_MIN by -1 wraps (x86 would trap).
int64_t FloorDiv(int64_t x, int64_t y) {
  if (y == 0) return 0;
  if (y == -1) return Wrap(0 - static_cast<uint64_t>(x));
  const int64_t q = x / y;
  return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
}
int64_t FloorMod(int64_t x, int64_t y) {
  if (y == 0 || y == -1) return 0;
  const int64_t r = x % y;
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}

template <class T>
struct Arithmetic {
  const char* op;
  T (*apply)(T, T);
};

const Arithmetic<int64_t> kInt64Arithmetic[] = {
    {"AddV2", [](int64_t x, int64_t y) { return Wrap(uint64_t(x) + uint64_t(y)); }},
    {"Sub", [](int64_t x, int64_t y) { return Wrap(uint64_t(x) - uint64_t(y)); }},
    {"Mul", [](int64_t x, int64_t y) { return Wrap(uint64_t(x) * uint64_t(y)); }},
    {"FloorDiv", &FloorDiv},
    {"FloorMod", &FloorMod},
    {"Maximum", [](int64_t x, int64_t y) { return x > y ? x : y; }},
    {"Minimum", [](int64_t x, int64_t y) { return x < y ? x : y; }},
};
const Arithmetic<float> kFloatArithmetic[] = {
    {"Pow", [](float x, float y) { return std::pow(x, y); }},
    // 0 for a zero divisor, as TF's.
    {"DivNoNan", [](float x, float y) { return y == 0 ? 0.f : x / y; }},
};

// TF's error for a zero divisor, found before the loop (which may run on
// OpenMP threads, where an exception may not be thrown).
void RequireNoZero(const TF_Tensor* divisor) {
  const int64_t* y = Data<int64_t>(divisor);
  const int64_t n = NumElements(Shape(divisor));
  Require(std::find(y, y + n, 0) == y + n, "Integer division by zero");
}

template <class T>
class ArithmeticKernel {
 public:
  explicit ArithmeticKernel(TF_OpKernelConstruction* ctx) : apply_(Find(OpType(ctx))) {}

  void Compute(KernelContext& ctx) {
    if constexpr (std::is_same_v<T, int64_t>)
      if (apply_ == &FloorDiv || apply_ == &FloorMod) RequireNoZero(ctx.input(1).get());
    BroadcastBinary<T, T>(ctx, std::is_same_v<T, float> ? TF_FLOAT : TF_INT64, apply_);
  }

 private:
  static T (*Find(const std::string& op))(T, T) {
    if constexpr (std::is_same_v<T, float>) {
      for (const auto& a : kFloatArithmetic)
        if (op == a.op) return a.apply;
    } else {
      for (const auto& a : kInt64Arithmetic)
        if (op == a.op) return a.apply;
    }
    throw KernelError("no branch kernel for " + op, TF_INTERNAL);
  }
  T (*const apply_)(T, T);
};

constexpr const char* kComparisons[] = {"Equal",     "NotEqual", "Less",
                                        "LessEqual", "Greater",  "GreaterEqual"};

// Each comparison's index in kComparisons; the kernel runs one inlined loop
// per op: through a function pointer per element, a mask's `x > 0` on 2^20
// floats took 0.87 ms, TF's CPU kernel 0.09.
int ComparisonIndex(const std::string& op) {
  for (int i = 0; i < static_cast<int>(std::size(kComparisons)); ++i)
    if (op == kComparisons[i]) return i;
  throw KernelError("no branch kernel for " + op, TF_INTERNAL);
}

template <class T>
class ComparisonKernel {
 public:
  explicit ComparisonKernel(TF_OpKernelConstruction* ctx)
      : op_(OpType(ctx)), compare_(ComparisonIndex(op_)) {
    // Equal and NotEqual may answer a single false (true) for shapes that do
    // not broadcast, instead of an error.
    if (op_ == "Equal" || op_ == "NotEqual")
      shape_error_ = GetBoolAttr(ctx, "incompatible_shape_error");
  }

  void Compute(KernelContext& ctx) {
    if (!shape_error_ && !Broadcastable(ctx.input_shape(0), ctx.input_shape(1))) {
      OwnedTensor out = ctx.allocate_output(0, {}, TF_BOOL);
      *Data<bool>(out.get()) = op_ == "NotEqual";
      return;
    }
    switch (compare_) {  // kComparisons' order
      case 0: return BroadcastBinary<T, bool>(ctx, TF_BOOL, std::equal_to<T>());
      case 1: return BroadcastBinary<T, bool>(ctx, TF_BOOL, std::not_equal_to<T>());
      case 2: return BroadcastBinary<T, bool>(ctx, TF_BOOL, std::less<T>());
      case 3: return BroadcastBinary<T, bool>(ctx, TF_BOOL, std::less_equal<T>());
      case 4: return BroadcastBinary<T, bool>(ctx, TF_BOOL, std::greater<T>());
      default: return BroadcastBinary<T, bool>(ctx, TF_BOOL, std::greater_equal<T>());
    }
  }

 private:
  static bool Broadcastable(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    for (size_t i = 1; i <= std::min(a.size(), b.size()); ++i) {
      const int64_t da = a[a.size() - i], db = b[b.size() - i];
      if (da != db && da != 1 && db != 1) return false;
    }
    return true;
  }
  const std::string op_;
  const int compare_;
  bool shape_error_ = true;
};

}  // namespace

void RegisterBranchKernels(const char* device_type, TF_Status* status) {
  const auto ok = [&] { return TF_GetCode(status) == TF_OK; };
  for (const auto& a : kInt64Arithmetic)
    if (ok())
      RegisterKernel<ArithmeticKernel<int64_t>>(LoopOnly({a.op, {{"T", TF_INT64}}}), device_type,
                                                status);
  for (const auto& a : kFloatArithmetic)
    if (ok())
      RegisterKernel<ArithmeticKernel<float>>(LoopOnly({a.op, {{"T", TF_FLOAT}}}), device_type,
                                              status);
  for (const char* op : kComparisons) {
    if (ok())
      RegisterKernel<ComparisonKernel<int64_t>>(LoopOnly({op, {{"T", TF_INT64}}}), device_type,
                                                status);
    // Float ones too: an RNN cell's hard_tanh, celu or soft_shrink compares.
    if (ok()) RegisterWithHalfTypes<ComparisonKernel<float>>(LoopOnly({op}), device_type, status);
  }
}

}  // namespace int8flow::kernels
