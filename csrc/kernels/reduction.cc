// Mean, Sum, Max and Min over any axes (float32): global average pooling,
// LayerNormalization's moments, squeeze-and-excitation blocks, Keras'
// GlobalAveragePooling1D. Axes that form one run (after size-1 dims) reduce
// in our own vector loops; oneDNN 3.2's reduction primitive is jitted only
// for some layouts and ran [8, 200, 128] over axis 1 in 1.4 ms (the loops:
// ~0.03 ms). Other axis sets, and NHWC global pooling, stay on oneDNN.
#include "kernels/reduction.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "kernels/half_as_float.h"
#include "kernels/nan_rules.h"
#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

struct Reduction {
  const char* op;
  dnnl::algorithm algorithm;
  float empty_value;  // TF's result when reducing over nothing
  // The pooling that computes it over H and W of an NHWC tensor (global
  // pooling), or undef: oneDNN 3.2 has only a reference reduction for that
  // layout, and its pooling is jitted and 30x faster there.
  dnnl::algorithm global_pooling;
  bool drops_nan = false;  // oneDNN's max/min skip NaN, TF's return it (nan_rules.h)
};

// A reduction over one run of axes, as [outer, reduced, inner].
struct OneRun {
  int64_t outer = 1, reduced = 1, inner = 1;
};

// `in` with size-1 dims dropped and neighbours merged, when its reduced axes
// then form one run.
std::optional<OneRun> AsOneRun(const std::vector<int64_t>& in, const std::vector<bool>& reduced) {
  OneRun run;
  enum { kBefore, kIn, kAfter } at = kBefore;
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] == 1) continue;
    if (reduced[d]) {
      if (at == kAfter) return std::nullopt;
      at = kIn;
      run.reduced *= in[d];
    } else {
      if (at == kIn) at = kAfter;
      (at == kBefore ? run.outer : run.inner) *= in[d];
    }
  }
  return run;
}

// A sum accumulates in double: it is then as exact as one rounding at the
// end, at the memory-bound loop's speed. A max or min is exact in float, whose
// lanes fill a vector register (in double, GCC left ReduceSpan's max scalar:
// a last-axis Max of 64-float rows took 2-3x TF's time). A sum keeps NaN by
// itself; a max or min drops a NaN operand (the vectorized select), so its
// loops check for NaN as they go (kChecksNaN, below).
struct SumOp {
  using Acc = double;
  static constexpr bool kChecksNaN = false;
  static Acc Init() { return 0.0; }
  static Acc Add(Acc a, Acc b) { return a + b; }
};
struct MaxOp {
  using Acc = float;
  static constexpr bool kChecksNaN = true;
  static Acc Init() { return -std::numeric_limits<float>::infinity(); }
  static Acc Add(Acc a, Acc b) { return b > a ? b : a; }
};
struct MinOp {
  using Acc = float;
  static constexpr bool kChecksNaN = true;
  static Acc Init() { return std::numeric_limits<float>::infinity(); }
  static Acc Add(Acc a, Acc b) { return b < a ? b : a; }
};

// 16 floats as one value (GCC's vector extension): a float max or min over
// them is one vector op in every clone, where GCC's SLP left an array of 16
// lanes scalar. Only inside the clones: a function taking or returning one
// would change the ABI between them.
typedef float FloatLanes __attribute__((vector_size(64)));

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kRowBlock = 512;  // ReduceRows' widest block of outputs

// TF's Max and Min are NaN where their window holds one. x * 0 is NaN for
// NaN and +-Inf only, so the loops sum it beside the reduction (instead of a
// second pass over the input after them), and look for the NaN itself only
// where that sum is NaN.
bool HasNaN(const float* x, int64_t n, int64_t stride) {
  for (int64_t i = 0; i < n; ++i)
    if (x[i * stride] != x[i * stride]) return true;
  return false;
}

// Runs `body` with the Op of `algorithm` (Mean sums).
template <class Body>
__attribute__((always_inline)) inline auto WithOp(dnnl::algorithm algorithm, Body body) {
  switch (algorithm) {
    case dnnl::algorithm::reduction_max: return body(MaxOp{});
    case dnnl::algorithm::reduction_min: return body(MinOp{});
    default: return body(SumOp{});
  }
}

// x[0, n) reduced in 16 independent lanes (vectorized without reassociating
// any one lane), then across them.
INT8FLOW_VECTOR_CLONES double ReduceSpan(dnnl::algorithm algorithm, const float* x, int64_t n) {
  return WithOp(algorithm, [&](auto op) __attribute__((always_inline)) {
    constexpr int kLanes = 16;
    if constexpr (decltype(op)::kChecksNaN) {  // Max, Min: in float
      FloatLanes lanes = FloatLanes{} + op.Init(), seen = {};
      int64_t i = 0;
      for (; i + kLanes <= n; i += kLanes) {
        FloatLanes v;
        std::memcpy(&v, x + i, sizeof(v));
        if constexpr (std::is_same_v<decltype(op), MaxOp>)
          lanes = v > lanes ? v : lanes;
        else
          lanes = v < lanes ? v : lanes;
        seen += v * 0.f;
      }
      float total = op.Init(), any = 0.f;
      for (; i < n; ++i) total = op.Add(total, x[i]), any += x[i] * 0.f;
      for (int l = 0; l < kLanes; ++l) total = op.Add(total, lanes[l]), any += seen[l];
      return any != any && HasNaN(x, n, 1) ? kNaN : static_cast<double>(total);
    } else {  // a sum, in double
      double lanes[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += x[i + l];
      double total = 0.0;
      for (; i < n; ++i) total += x[i];
      for (double lane : lanes) total += lane;
      return total;
    }
  });
}

// acc[0, width) = the reduction of rows x[r * stride + i], r < rows; width <= kRowBlock.
INT8FLOW_VECTOR_CLONES void ReduceRows(dnnl::algorithm algorithm, const float* x, int64_t rows,
                                       int64_t stride, int64_t width, double* acc) {
  WithOp(algorithm, [&](auto op) __attribute__((always_inline)) {
    using Acc = typename decltype(op)::Acc;
    constexpr bool kCheck = decltype(op)::kChecksNaN;
    float seen[kRowBlock] = {};
    Acc block[kRowBlock];
    for (int64_t i = 0; i < width; ++i) block[i] = op.Init();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < width; ++i) {
        block[i] = op.Add(block[i], x[r * stride + i]);
        if constexpr (kCheck) seen[i] += x[r * stride + i] * 0.f;
      }
    for (int64_t i = 0; i < width; ++i) acc[i] = block[i];
    if constexpr (kCheck)
      for (int64_t i = 0; i < width; ++i)
        if (seen[i] != seen[i] && HasNaN(x + i, rows, stride)) acc[i] = kNaN;
  });
}

// out[o, i] = the reduction of x[o, :, i] over the run (a Mean's divided by
// its length), split over the OpenMP team by blocks of outputs or, for few
// long reductions, by parts of each. The vector loops run outside OpenMP's
// outlined regions, so that their clones are the code that runs.
void ReduceRun(dnnl::algorithm algorithm, const float* x, const OneRun& run, float* out) {
  const double scale =
      algorithm == dnnl::algorithm::reduction_mean ? 1.0 / static_cast<double>(run.reduced) : 1.0;
  const int64_t work = run.outer * run.reduced * run.inner;
  const int teams = work <= kParallelElements ? 1 : omp_get_max_threads();
  if (run.inner == 1 && run.outer < teams) {
    // Each thread takes a part of every reduction; the parts combine in order.
    std::vector<double> parts(run.outer * teams);
#pragma omp parallel num_threads(teams)
    {
      // Every part, however many threads OpenMP gives.
      for (int part = omp_get_thread_num(); part < teams; part += omp_get_num_threads()) {
        const int64_t begin = run.reduced * part / teams, end = run.reduced * (part + 1) / teams;
        for (int64_t o = 0; o < run.outer; ++o)
          parts[o * teams + part] = ReduceSpan(algorithm, x + o * run.reduced + begin, end - begin);
      }
    }
    WithOp(algorithm, [&](auto op) __attribute__((always_inline)) {
      for (int64_t o = 0; o < run.outer; ++o) {
        double total = op.Init();
        for (int t = 0; t < teams; ++t) {
          const double part = parts[o * teams + t];
          total = part != part ? part : op.Add(total, part);  // a NaN part sticks
        }
        out[o] = static_cast<float>(total * scale);
      }
    });
    return;
  }
  if (run.inner == 1) {
#pragma omp parallel for num_threads(teams) schedule(static)
    for (int64_t o = 0; o < run.outer; ++o)
      out[o] = static_cast<float>(ReduceSpan(algorithm, x + o * run.reduced, run.reduced) * scale);
    return;
  }
  // kRowBlock outputs per work item: 4 KiB of accumulators.
  const int64_t blocks = (run.inner + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for num_threads(teams) schedule(static)
  for (int64_t item = 0; item < run.outer * blocks; ++item) {
    const int64_t o = item / blocks, begin = (item % blocks) * kRowBlock;
    const int64_t width = std::min(kRowBlock, run.inner - begin);
    double acc[kRowBlock];
    ReduceRows(algorithm, x + o * run.reduced * run.inner + begin, run.reduced, run.inner, width,
               acc);
    for (int64_t i = 0; i < width; ++i)
      out[o * run.inner + begin + i] = static_cast<float>(acc[i] * scale);
  }
}

const std::vector<Reduction>& Reductions() {
  static const std::vector<Reduction> table = {
      {"Mean", dnnl::algorithm::reduction_mean, std::numeric_limits<float>::quiet_NaN(),
       dnnl::algorithm::pooling_avg_exclude_padding},
      {"Sum", dnnl::algorithm::reduction_sum, 0.f, dnnl::algorithm::undef},
      {"Max", dnnl::algorithm::reduction_max, -std::numeric_limits<float>::infinity(),
       dnnl::algorithm::pooling_max, true},
      {"Min", dnnl::algorithm::reduction_min, std::numeric_limits<float>::infinity(),
       dnnl::algorithm::undef, true},
  };
  return table;
}

class ReductionKernel {
 public:
  explicit ReductionKernel(TF_OpKernelConstruction* ctx)
      : keep_dims_(GetBoolAttr(ctx, "keep_dims")) {
    const std::string op = OpType(ctx);
    for (const Reduction& r : Reductions())
      if (op == r.op) reduction_ = &r;
    Require(reduction_ != nullptr, "no QCPU reduction for op " + op);
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), axes_tensor = ctx.input(1);
    const auto in = Shape(input.get());
    const int rank = static_cast<int>(in.size());
    std::vector<bool> reduced(rank, false);
    for (int64_t axis : IntValues(axes_tensor.get())) {
      Require(axis >= -rank && axis < rank, [&] {
        return "Invalid reduction dimension (" + std::to_string(axis) + " for input with " +
               std::to_string(rank) + " dimension(s)";
      });
      reduced[axis < 0 ? axis + rank : axis] = true;
    }
    std::vector<int64_t> kept(in), out;  // kept: reduced axes as 1
    for (int d = 0; d < rank; ++d) {
      if (reduced[d]) kept[d] = 1;
      if (!reduced[d] || keep_dims_) out.push_back(kept[d]);
    }
    OwnedTensor output = ctx.allocate_output(0, out, TF_FLOAT);
    const int64_t count = NumElements(out);
    if (count == 0) return;
    float* dst = Data<float>(output.get());
    if (NumElements(in) == 0) return std::fill(dst, dst + count, reduction_->empty_value);
    if (kept == in) {  // nothing to reduce
      std::memcpy(dst, TF_TensorData(input.get()), TF_TensorByteSize(input.get()));
      return;
    }
    const float* x = Data<float>(input.get());
    const bool global_pooling = reduction_->global_pooling != dnnl::algorithm::undef && rank == 4 &&
                                reduced == std::vector<bool>{false, true, true, false};
    const std::optional<OneRun> run = AsOneRun(in, reduced);
    if (run && !global_pooling) return ReduceRun(reduction_->algorithm, x, *run, dst);
    std::vector<int64_t> key = in;
    key.insert(key.end(), kept.begin(), kept.end());
    auto p = cache_.Get(key, [&] { return global_pooling ? BuildPooling(in) : Build(in, kept); });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, ArgMemory(p->src, TF_TensorData(input.get()))},
             {DNNL_ARG_DST, ArgMemory(p->dst, dst)}});
    if (reduction_->drops_nan && AnyNaN(x, NumElements(in))) PropagateReducedNaN(x, in, dst, kept);
  }

 private:
  struct Primitive {
    dnnl::primitive primitive;
    memory::desc src, dst, scratchpad;
  };

  Primitive Build(const std::vector<int64_t>& in, const std::vector<int64_t>& kept) const {
    Primitive p;
    p.src = PlainF32(OneDnnDims(in));
    p.dst = PlainF32(OneDnnDims(kept));
    dnnl::reduction::primitive_desc pd(Engine(), reduction_->algorithm, p.src, p.dst, 0.f, 0.f,
                                       UserScratchpadAttr());
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::reduction(pd);
    return p;
  }

  // NHWC [n, h, w, c] -> [n, 1, 1, c] as one h x w pooling window.
  Primitive BuildPooling(const std::vector<int64_t>& in) const {
    Primitive p;
    p.src = memory::desc({in[0], in[3], in[1], in[2]}, memory::data_type::f32,
                         memory::format_tag::nhwc);
    p.dst = memory::desc({in[0], in[3], 1, 1}, memory::data_type::f32, memory::format_tag::nhwc);
    dnnl::pooling_forward::primitive_desc pd(
        Engine(), dnnl::prop_kind::forward_inference, reduction_->global_pooling, p.src, p.dst,
        {1, 1}, {in[1], in[2]}, {0, 0}, {0, 0}, {0, 0}, UserScratchpadAttr());
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::pooling_forward(pd);
    return p;
  }

  const bool keep_dims_;
  const Reduction* reduction_ = nullptr;
  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterReductionKernels(const char* device_type, TF_Status* status) {
  for (const Reduction& r : Reductions()) {
    for (TF_DataType index : {TF_INT32, TF_INT64}) {
      RegisterWithHalfTypes<ReductionKernel>(
          {r.op, {{"T", TF_FLOAT}, {"Tidx", index}}, {"reduction_indices"}}, device_type, status);
      if (TF_GetCode(status) != TF_OK) return;
    }
  }
}

}  // namespace int8flow::kernels
