// ReverseV2 on QCPU: Keras' Bidirectional layers and go_backwards=True reverse
// a sequence (and its bool mask) along time; without this kernel each such
// tensor crossed to TF's CPU and back. The output is walked in units: the
// last reversed axis and the dims after it. A unit's source is the input unit
// with the earlier reversed axes flipped; inside it the sub-blocks after that
// axis are copied whole, in reverse order (or the elements, when the last
// dim itself is reversed). Units split over the team.
#include "kernels/reverse.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/half_as_float.h"
#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

template <class T>
class ReverseKernel {
 public:
  explicit ReverseKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), axis_tensor = ctx.input(1);
    const auto shape = Shape(x.get());
    const int64_t rank = static_cast<int64_t>(shape.size());
    Require(TF_NumDims(axis_tensor.get()) == 1, [&] {
      return "'dims' must be 1-dimension, not " + std::to_string(TF_NumDims(axis_tensor.get()));
    });
    const std::vector<int64_t> axes = IntValues(axis_tensor.get());
    std::vector<bool> reversed(rank, false);
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
      Require(axis >= 0 && axis < rank, [&] {
        return "'axis'[" + std::to_string(i) + "] = " + std::to_string(axes[i]) +
               " is out of valid range [0, " + std::to_string(rank - 1);
      });
      Require(!reversed[axis],
              [&] { return "axis " + std::to_string(axis) + " specified more than once."; });
      reversed[axis] = true;
    }
    OwnedTensor y = ctx.allocate_output(0, shape, TF_TensorType(x.get()));
    const T* in = Data<T>(x.get());
    T* out = Data<T>(y.get());
    const int64_t n = NumElements(shape);
    int64_t last = -1;  // the last reversed axis longer than 1
    for (int64_t d = 0; d < rank; ++d)
      if (reversed[d] && shape[d] > 1) last = d;
    if (last < 0) return static_cast<void>(std::copy_n(in, n, out));
    int64_t inner = 1, units = 1;
    for (int64_t d = last + 1; d < rank; ++d) inner *= shape[d];
    for (int64_t d = 0; d < last; ++d) units *= shape[d];
    const int64_t length = shape[last], unit = length * inner;
    ForRows(units, unit, [&](int64_t first, int64_t end, int) {
      for (int64_t u = first; u < end; ++u) {
        int64_t source = 0;
        for (int64_t d = last - 1, rest = u, stride = 1; d >= 0; stride *= shape[d--]) {
          const int64_t i = rest % shape[d];
          rest /= shape[d];
          source += (reversed[d] ? shape[d] - 1 - i : i) * stride;
        }
        const T* from = in + source * unit;
        T* to = out + u * unit;
        if (inner == 1) {
          std::reverse_copy(from, from + length, to);
        } else {
          for (int64_t k = 0; k < length; ++k)
            std::copy_n(from + (length - 1 - k) * inner, inner, to + k * inner);
        }
      }
    });
  }
};

}  // namespace

void RegisterReverseKernels(const char* device_type, TF_Status* status) {
  for (TF_DataType index : {TF_INT32, TF_INT64}) {
    RegisterWithHalfTypes<ReverseKernel<float>>(
        {"ReverseV2", {{"T", TF_FLOAT}, {"Tidx", index}}, {"axis"}}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
    RegisterKernel<ReverseKernel<bool>>({"ReverseV2", {{"T", TF_BOOL}, {"Tidx", index}}, {"axis"}},
                                        device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
