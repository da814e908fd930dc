// Cumsum on QCPU: position ids and running totals in models, cumulative
// probabilities in samplers. Without it each one crossed to TF's CPU and its
// result back (1.3-1.4x TF's time on 2^20 floats). TF's Eigen scan adds each
// line in order, in the element type; so do these loops, exactly: across the
// dims after the axis, vectorized, or, along the last axis, 8 rows at a time
// (independent chains, where one row's chain of adds waits on each add).
// In place when TF allows: each element is read before its output is written.
#include "kernels/scan.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/onednn_util.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

// The scan of one [n, inner] block, its inner lines side by side: element k
// of a line at x[k * inner] (from the end when `reverse`).
template <class T>
INT8FLOW_VECTOR_CLONES void ScanAcross(const T* x, T* out, int64_t n, int64_t inner, bool exclusive,
                                       bool reverse, T* acc) {
  std::fill(acc, acc + inner, T{0});
  for (int64_t step = 0; step < n; ++step) {
    const int64_t k = reverse ? n - 1 - step : step;
    const T* in = x + k * inner;
    T* o = out + k * inner;
    if (exclusive) {
      for (int64_t i = 0; i < inner; ++i) {
        const T v = in[i];
        o[i] = acc[i];
        acc[i] += v;
      }
    } else {
      for (int64_t i = 0; i < inner; ++i) o[i] = acc[i] += in[i];
    }
  }
}

// The scans of `rows` (at most kChains) contiguous rows of n.
constexpr int kChains = 8;
template <class T>
void ScanRows(const T* x, T* out, int64_t rows, int64_t n, bool exclusive, bool reverse) {
  T acc[kChains] = {};
  for (int64_t step = 0; step < n; ++step) {
    const int64_t k = reverse ? n - 1 - step : step;
    for (int64_t r = 0; r < rows; ++r) {
      const T v = x[r * n + k];
      if (exclusive) {
        out[r * n + k] = acc[r];
        acc[r] += v;
      } else {
        out[r * n + k] = acc[r] += v;
      }
    }
  }
}

template <class T>
class CumsumKernel {
 public:
  explicit CumsumKernel(TF_OpKernelConstruction* ctx)
      : exclusive_(GetBoolAttr(ctx, "exclusive")), reverse_(GetBoolAttr(ctx, "reverse")) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), axis_tensor = ctx.input(1);
    const auto shape = Shape(x.get());
    Require(TF_NumDims(axis_tensor.get()) == 0, [&] {
      return "ScanOp: axis must be a scalar, not " + ShapeString(Shape(axis_tensor.get()));
    });
    const int64_t rank = static_cast<int64_t>(shape.size());
    int64_t axis = IntValues(axis_tensor.get())[0];
    if (axis < 0) axis += rank;
    Require(axis >= 0 && axis < rank, [&] {
      return "ScanOp: Expected scan axis in the range [" + std::to_string(-rank) + ", " +
             std::to_string(rank) + "), but got " + std::to_string(axis);
    });
    OwnedTensor out = ctx.forward_input_or_allocate_output(shape, 0, x);
    const int64_t n = shape[axis];
    if (NumElements(shape) == 0) return;
    const AroundAxis around = AroundAxisOf(shape, axis);
    const T* in = Data<T>(x.get());
    T* y = Data<T>(out.get());
    if (around.inner == 1) {
      const int64_t groups = (around.outer + kChains - 1) / kChains;
      return ForRows(groups, kChains * n, [&](int64_t first, int64_t last, int) {
        for (int64_t g = first; g < last; ++g) {
          const int64_t rows = std::min<int64_t>(kChains, around.outer - g * kChains);
          ScanRows(in + g * kChains * n, y + g * kChains * n, rows, n, exclusive_, reverse_);
        }
      });
    }
    const int64_t block = n * around.inner;
    ForRows(around.outer, block, [&](int64_t first, int64_t last, int) {
      std::vector<T> acc(around.inner);
      for (int64_t o = first; o < last; ++o)
        ScanAcross(in + o * block, y + o * block, n, around.inner, exclusive_, reverse_,
                   acc.data());
    });
  }

 private:
  const bool exclusive_, reverse_;
};

template <class T>
void Register(TF_DataType type, const char* device_type, TF_Status* status) {
  for (TF_DataType index : {TF_INT32, TF_INT64}) {
    if (TF_GetCode(status) != TF_OK) return;
    RegisterKernel<CumsumKernel<T>>({"Cumsum", {{"T", type}, {"Tidx", index}}, {"axis"}},
                                    device_type, status);
  }
}

}  // namespace

void RegisterScanKernels(const char* device_type, TF_Status* status) {
  Register<float>(TF_FLOAT, device_type, status);
  Register<double>(TF_DOUBLE, device_type, status);
  Register<int64_t>(TF_INT64, device_type, status);
}

}  // namespace int8flow::kernels
