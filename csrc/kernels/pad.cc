// Pad (constant zero) on QCPU, one pass over the output: each row of its last
// dim is zeros where a leading index falls in the padding, else its input row
// between the zeros of the last dim's pads; rows by thread. Keras'
// ZeroPadding2D emits it before a VALID conv (that one the conv fusion
// absorbs). A memset of the whole output, then a oneDNN reorder of the input
// into its window, went over it twice: 1.5x TF's time on [256, 66, 68] floats.
#include "kernels/pad.h"

#include <algorithm>
#include <cstring>

#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

class PadKernel {
 public:
  explicit PadKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), paddings_tensor = ctx.input(1);
    const auto in = Shape(input.get());
    const auto pads_shape = Shape(paddings_tensor.get());
    const int rank = static_cast<int>(in.size());
    Require(pads_shape == std::vector<int64_t>{rank, 2}, [&] {
      return "paddings must be a matrix of shape [" + std::to_string(rank) + ", 2], got " +
             ShapeString(pads_shape);
    });
    const std::vector<int64_t> pads = IntValues(paddings_tensor.get());
    std::vector<int64_t> out(rank);
    for (int d = 0; d < rank; ++d) {
      Require(pads[2 * d] >= 0 && pads[2 * d + 1] >= 0, [&] {
        return "paddings must be non-negative, got " + std::to_string(pads[2 * d]) + " and " +
               std::to_string(pads[2 * d + 1]) + " for dim " + std::to_string(d);
      });
      out[d] = in[d] + pads[2 * d] + pads[2 * d + 1];
    }
    OwnedTensor output = ctx.allocate_output(0, out, TF_FLOAT);
    if (NumElements(out) == 0) return;
    const float* src = Data<float>(input.get());
    float* dst = Data<float>(output.get());
    const int64_t width = rank ? out.back() : 1, in_width = rank ? in.back() : 1;
    const int64_t before = rank ? pads[2 * rank - 2] : 0;
    ForRows(NumElements(out) / width, width, [&](int64_t first, int64_t last, int) {
      for (int64_t row = first; row < last; ++row) {
        float* o = dst + row * width;
        int64_t in_row = 0, scale = 1;  // the input row it holds, if any
        bool inside = in_width > 0;
        int64_t rest = row;
        for (int d = rank - 2; d >= 0; --d) {
          const int64_t at = rest % out[d] - pads[2 * d];
          rest /= out[d];
          inside = inside && at >= 0 && at < in[d];
          in_row += at * scale;
          scale *= in[d];
        }
        if (!inside) {
          std::fill(o, o + width, 0.f);
          continue;
        }
        std::fill(o, o + before, 0.f);
        std::memcpy(o + before, src + in_row * in_width, sizeof(float) * in_width);
        std::fill(o + before + in_width, o + width, 0.f);
      }
    });
  }
};

}  // namespace

void RegisterPadKernels(const char* device_type, TF_Status* status) {
  for (TF_DataType index : {TF_INT32, TF_INT64}) {
    RegisterKernel<PadKernel>({"Pad", {{"T", TF_FLOAT}, {"Tpaddings", index}}, {"paddings"}},
                              device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
