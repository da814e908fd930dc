// ArgMax and ArgMin of float32 over one axis: a classifier's top-1 and Keras'
// accuracy metrics. Without a QCPU kernel each logits tensor crossed to TF's
// CPU, whose Eigen reducer walks one element at a time (2^20 floats: 0.6 ms).
// TF's answer: the first index of the largest (smallest) value that beats
// the float range's end, NaN never winning; 0 when none does (a row of NaN
// or -Inf). Rows along the last axis take two passes, a vector max over 16
// lanes and a search for the first equal element; other axes compare whole
// rows of the dims after the axis, vectorized across them.
#include "kernels/arg_max.h"

#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/onednn_util.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

// ArgMax's order, or ArgMin's (the same with every comparison reversed).
template <bool kMax>
struct Order {
  static constexpr float kWorst =
      kMax ? std::numeric_limits<float>::lowest() : std::numeric_limits<float>::max();
  static bool Beats(float x, float best) { return kMax ? x > best : x < best; }  // false for NaN
};

// The index of TF's answer in x[0, n).
template <bool kMax>
INT8FLOW_VECTOR_CLONES int64_t ArgOfSpan(const float* x, int64_t n) {
  using O = Order<kMax>;
  constexpr int kLanes = 16;
  float lanes[kLanes];
  for (float& lane : lanes) lane = O::kWorst;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] = O::Beats(x[i + l], lanes[l]) ? x[i + l] : lanes[l];
  float best = O::kWorst;
  for (; i < n; ++i) best = O::Beats(x[i], best) ? x[i] : best;
  for (float lane : lanes) best = O::Beats(lane, best) ? lane : best;
  if (best == O::kWorst) return 0;  // nothing beat the range's end
  for (i = 0; x[i] != best;) ++i;
  return i;
}

// index[j] = TF's answer along the `n` rows x[k * width + j], k < n.
template <bool kMax, class Index>
INT8FLOW_VECTOR_CLONES void ArgOfRows(const float* x, int64_t n, int64_t width, float* best,
                                      Index* index) {
  using O = Order<kMax>;
  for (int64_t j = 0; j < width; ++j) best[j] = O::kWorst, index[j] = 0;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < width; ++j) {
      const float v = x[k * width + j];
      const bool beats = O::Beats(v, best[j]);
      best[j] = beats ? v : best[j];
      index[j] = beats ? static_cast<Index>(k) : index[j];
    }
}

template <bool kMax, class Index>
class ArgKernel {
 public:
  explicit ArgKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), dimension = ctx.input(1);
    const auto shape = Shape(x.get());
    const int64_t rank = static_cast<int64_t>(shape.size());
    Require(TF_NumDims(dimension.get()) == 0, [&] {
      return "dim must be a scalar, but received tensor of shape: " +
             ShapeString(Shape(dimension.get()));
    });
    int64_t axis = IntValues(dimension.get())[0];
    Require(axis >= -rank && axis < rank, [&] {
      return "Expected dimension in the range [" + std::to_string(-rank) + ", " +
             std::to_string(rank) + "), but got " + std::to_string(axis);
    });
    if (axis < 0) axis += rank;
    Require(shape[axis] > 0, [&] {
      return "Reduction axis " + std::to_string(axis) + " is empty in shape " + ShapeString(shape);
    });
    std::vector<int64_t> out_shape = shape;
    out_shape.erase(out_shape.begin() + axis);
    OwnedTensor out =
        ctx.allocate_output(0, out_shape, std::is_same_v<Index, int32_t> ? TF_INT32 : TF_INT64);
    const AroundAxis around = AroundAxisOf(shape, axis);
    const int64_t n = shape[axis];
    const float* in = Data<float>(x.get());
    Index* index = Data<Index>(out.get());
    if (around.inner == 1) {
      return ForRows(around.outer, n, [&](int64_t first, int64_t last, int) {
        for (int64_t r = first; r < last; ++r)
          index[r] = static_cast<Index>(ArgOfSpan<kMax>(in + r * n, n));
      });
    }
    ForRows(around.outer, n * around.inner, [&](int64_t first, int64_t last, int) {
      std::vector<float> best(around.inner);
      for (int64_t r = first; r < last; ++r)
        ArgOfRows<kMax>(in + r * n * around.inner, n, around.inner, best.data(),
                        index + r * around.inner);
    });
  }
};

}  // namespace

void RegisterArgMaxKernels(const char* device_type, TF_Status* status) {
  const auto each_type = [&](auto max, const char* op) {
    constexpr bool kMax = decltype(max)::value;
    for (TF_DataType dimension : {TF_INT32, TF_INT64}) {
      // An int32 result is in host memory, where TF keeps a device's int32 tensors.
      RegisterKernel<ArgKernel<kMax, int64_t>>(
          {op, {{"T", TF_FLOAT}, {"Tidx", dimension}, {"output_type", TF_INT64}}, {"dimension"}},
          device_type, status);
      if (TF_GetCode(status) != TF_OK) return;
      RegisterKernel<ArgKernel<kMax, int32_t>>(
          {op,
           {{"T", TF_FLOAT}, {"Tidx", dimension}, {"output_type", TF_INT32}},
           {"dimension", "output"}},
          device_type, status);
      if (TF_GetCode(status) != TF_OK) return;
    }
  };
  each_type(std::true_type{}, "ArgMax");
  if (TF_GetCode(status) == TF_OK) each_type(std::false_type{}, "ArgMin");
}

}  // namespace int8flow::kernels
