// MaxPool and AvgPool (NHWC) on oneDNN's pooling primitive: float32, and
// MaxPool on int8 too (the int8 pass quantizes before a MaxPool, which
// commutes with quantizing). TF's AvgPool leaves padding out of the average,
// as pooling_avg_exclude_padding; MaxPool's explicit padding takes no part in
// the max, as in oneDNN. MaxPoolGrad, for training, is our own loop.
#include "kernels/pooling.h"

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/onednn_util.h"
#include "kernels/quantization.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

// A pooling node's window attrs, checked, and the geometry they give an input.
class PoolWindow {
 public:
  explicit PoolWindow(TF_OpKernelConstruction* ctx)
      : ksize_(GetIntListAttr(ctx, "ksize")),
        strides_(GetIntListAttr(ctx, "strides")),
        padding_(GetStringAttr(ctx, "padding")) {
    Require(GetStringAttr(ctx, "data_format") == "NHWC",
            "QCPU pooling supports the NHWC data format only");
    Require(
        ksize_.size() == 4 && ksize_[0] == 1 && ksize_[3] == 1 && ksize_[1] > 0 && ksize_[2] > 0,
        "ksize must be [1, h, w, 1] with positive h and w");
    Require(strides_.size() == 4 && strides_[0] == 1 && strides_[3] == 1 && strides_[1] > 0 &&
                strides_[2] > 0,
            "strides must be [1, h, w, 1] with positive h and w");
    Require(padding_ == "SAME" || padding_ == "VALID" || padding_ == "EXPLICIT",
            "padding must be SAME, VALID or EXPLICIT");
    if (padding_ == "EXPLICIT") {
      explicit_paddings_ = GetIntListAttr(ctx, "explicit_paddings");
      Require(explicit_paddings_.size() == 8 && explicit_paddings_[0] == 0 &&
                  explicit_paddings_[1] == 0 && explicit_paddings_[6] == 0 &&
                  explicit_paddings_[7] == 0,
              "explicit_paddings must hold 8 values, 0 for the batch and channel dims");
      // A window wholly inside the padding would have nothing to take the max of.
      for (int d = 0; d < 2; ++d)
        Require(explicit_paddings_[2 + 2 * d] >= 0 && explicit_paddings_[3 + 2 * d] >= 0 &&
                    explicit_paddings_[2 + 2 * d] < ksize_[1 + d] &&
                    explicit_paddings_[3 + 2 * d] < ksize_[1 + d],
                "explicit_paddings must be >= 0 and smaller than the window");
    }
  }

  struct Geometry {
    int64_t oh, ow, top = 0, bottom = 0, left = 0, right = 0;
  };
  // For a 4-D NHWC input `in`.
  Geometry For(const std::vector<int64_t>& in) const {
    Require(in.size() == 4, [&] { return "input must be 4-D, got " + ShapeString(in); });
    Geometry g;
    if (padding_ == "SAME") {
      SamePadding(in[1], ksize_[1], strides_[1], 1, g.oh, g.top, g.bottom);
      SamePadding(in[2], ksize_[2], strides_[2], 1, g.ow, g.left, g.right);
      return g;
    }
    if (padding_ == "EXPLICIT") {
      g.top = explicit_paddings_[2], g.bottom = explicit_paddings_[3];
      g.left = explicit_paddings_[4], g.right = explicit_paddings_[5];
    }
    Require(in[1] + g.top + g.bottom >= ksize_[1] && in[2] + g.left + g.right >= ksize_[2], [&] {
      return "the window [" + std::to_string(ksize_[1]) + ", " + std::to_string(ksize_[2]) +
             "] is larger than the input " + ShapeString(in);
    });
    g.oh = (in[1] + g.top + g.bottom - ksize_[1]) / strides_[1] + 1;
    g.ow = (in[2] + g.left + g.right - ksize_[2]) / strides_[2] + 1;
    return g;
  }

  int64_t rows() const { return ksize_[1]; }
  int64_t cols() const { return ksize_[2]; }
  int64_t row_stride() const { return strides_[1]; }
  int64_t col_stride() const { return strides_[2]; }

 private:
  const std::vector<int64_t> ksize_, strides_;
  const std::string padding_;
  std::vector<int64_t> explicit_paddings_;
};

class PoolKernel {
 public:
  explicit PoolKernel(TF_OpKernelConstruction* ctx)
      : algorithm_(OpType(ctx) == "MaxPool" ? dnnl::algorithm::pooling_max
                                            : dnnl::algorithm::pooling_avg_exclude_padding),
        window_(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto in = Shape(input.get());
    const PoolWindow::Geometry g = window_.For(in);
    const std::vector<int64_t> out = {in[0], g.oh, g.ow, in[3]};
    const TF_DataType dtype = TF_TensorType(input.get());
    OwnedTensor output = ctx.allocate_output(0, out, dtype);
    // _MklNativeMaxPool (op_definitions.h) has a workspace output for
    // training; inference needs none.
    if (TF_NumOutputs(ctx.raw()) > 1) ctx.allocate_output(1, {0}, TF_UINT8);
    if (NumElements(out) == 0) return;
    auto p = cache_.Get(in, [&] {
      Primitive p;
      const memory::data_type type = OneDnnType(dtype);
      p.src = memory::desc({in[0], in[3], in[1], in[2]}, type, memory::format_tag::nhwc);
      p.dst = memory::desc({in[0], in[3], g.oh, g.ow}, type, memory::format_tag::nhwc);
      dnnl::pooling_forward::primitive_desc pd(
          Engine(), dnnl::prop_kind::forward_inference, algorithm_, p.src, p.dst,
          {window_.row_stride(), window_.col_stride()}, {window_.rows(), window_.cols()}, {0, 0},
          {g.top, g.left}, {g.bottom, g.right}, UserScratchpadAttr());
      p.scratchpad = pd.scratchpad_desc();
      p.primitive = dnnl::pooling_forward(pd);
      return p;
    });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, ArgMemory(p->src, TF_TensorData(input.get()))},
             {DNNL_ARG_DST, ArgMemory(p->dst, TF_TensorData(output.get()))}});
  }

 private:
  struct Primitive {
    dnnl::pooling_forward primitive;
    memory::desc src, dst, scratchpad;
  };

  const dnnl::algorithm algorithm_;
  const PoolWindow window_;
  PrimitiveCache<Primitive> cache_;
};

// MaxPoolGrad (a CNN's fit, each step): each output's gradient goes to its
// window's max, found again in orig_input as TF's CPU kernel finds it (rows,
// then columns; the first of equal maxima; a NaN first in the window wins),
// and added in output order. Without it the step copied the layer's input
// and gradients to TF's CPU and the result back.
class MaxPoolGradKernel {
 public:
  explicit MaxPoolGradKernel(TF_OpKernelConstruction* ctx) : window_(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), grad = ctx.input(2);
    const auto in = Shape(input.get());
    const PoolWindow::Geometry g = window_.For(in);
    const std::vector<int64_t> out = {in[0], g.oh, g.ow, in[3]};
    Require(Shape(grad.get()) == out, [&] {
      return "Expected grad shape to be " + ShapeString(out) + ", but got " +
             ShapeString(Shape(grad.get()));
    });
    OwnedTensor result = ctx.allocate_output(0, in, TF_FLOAT);
    const float* x = Data<float>(input.get());
    const float* dy = Data<float>(grad.get());
    float* dx = Data<float>(result.get());
    const int64_t depth = in[3], image = in[1] * in[2] * depth;
    std::fill(dx, dx + NumElements(in), 0.f);
    // By image: windows overlap within one, never across.
#pragma omp parallel for if (NumElements(in) > kParallelElements)
    for (int64_t b = 0; b < in[0]; ++b) {
      std::vector<float> best(depth);
      std::vector<int64_t> at(depth);
      for (int64_t ph = 0; ph < g.oh; ++ph) {
        const int64_t h0 = std::max<int64_t>(ph * window_.row_stride() - g.top, 0);
        const int64_t h1 = std::min(ph * window_.row_stride() - g.top + window_.rows(), in[1]);
        for (int64_t pw = 0; pw < g.ow; ++pw) {
          const int64_t w0 = std::max<int64_t>(pw * window_.col_stride() - g.left, 0);
          const int64_t w1 = std::min(pw * window_.col_stride() - g.left + window_.cols(), in[2]);
          const float* base = x + b * image;
          const int64_t first = (h0 * in[2] + w0) * depth;
          for (int64_t d = 0; d < depth; ++d) best[d] = base[first + d], at[d] = first + d;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
              const int64_t offset = (h * in[2] + w) * depth;
              for (int64_t d = 0; d < depth; ++d)
                if (best[d] < base[offset + d]) best[d] = base[offset + d], at[d] = offset + d;
            }
          const float* gradient = dy + ((b * g.oh + ph) * g.ow + pw) * depth;
          for (int64_t d = 0; d < depth; ++d) dx[b * image + at[d]] += gradient[d];
        }
      }
    }
  }

 private:
  const PoolWindow window_;
};

}  // namespace

void RegisterPoolingKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"MaxPool", "AvgPool"}) {
    RegisterKernel<PoolKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  for (const TF_DataType dtype : {TF_UINT8, TF_INT8}) {
    RegisterKernel<PoolKernel>({"MaxPool", {{"T", dtype}}}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  RegisterKernel<MaxPoolGradKernel>({"MaxPoolGrad"}, device_type, status);
}

}  // namespace int8flow::kernels
