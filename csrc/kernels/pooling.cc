// MaxPool and AvgPool (NHWC), MaxPool3D and AvgPool3D (NDHWC) on oneDNN's
// pooling primitive: float32, and
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

// A pooling node's window attrs, checked, and the geometry they give an
// input: 2-D (NHWC) or 3-D (NDHWC, MaxPool3D and AvgPool3D).
class PoolWindow {
 public:
  explicit PoolWindow(TF_OpKernelConstruction* ctx)
      : ksize_(GetIntListAttr(ctx, "ksize")),
        strides_(GetIntListAttr(ctx, "strides")),
        padding_(GetStringAttr(ctx, "padding")),
        rank_(ChannelsLastSpatialRank(ctx, "pools")) {
    RequireSpatialList(ksize_, rank_, "ksize");
    RequireSpatialList(strides_, rank_, "strides");
    Require(padding_ == "SAME" || padding_ == "VALID" || padding_ == "EXPLICIT",
            "padding must be SAME, VALID or EXPLICIT");
    if (padding_ == "EXPLICIT") {  // MaxPool's only
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

  // Per spatial dim: the output's size and the pads before and after.
  using Geometry = std::vector<WindowSpan>;
  // For a channels-last input `in` of this window's rank.
  Geometry For(const std::vector<int64_t>& in) const {
    Require(in.size() == rank_ + 2, [&] {
      return "input must be " + std::to_string(rank_ + 2) + "-D, got " + ShapeString(in);
    });
    Geometry g(rank_);
    for (size_t i = 0; i < rank_; ++i) {
      const bool explicit_pads = padding_ == "EXPLICIT";
      Require(SlideWindow(in[i + 1], ksize_[i + 1], strides_[i + 1], 1, padding_,
                          explicit_pads ? explicit_paddings_[2 * i + 2] : 0,
                          explicit_pads ? explicit_paddings_[2 * i + 3] : 0, g[i]),
              [&] {
                const std::vector<int64_t> window(ksize_.begin() + 1, ksize_.end() - 1);
                return "the window " + ShapeString(window) + " is larger than the input " +
                       ShapeString(in);
              });
    }
    return g;
  }
  // The output's shape: `in`'s batch and channels, g's spatial sizes.
  static std::vector<int64_t> OutShape(const std::vector<int64_t>& in, const Geometry& g) {
    std::vector<int64_t> out = {in.front()};
    for (const WindowSpan& span : g) out.push_back(span.out);
    out.push_back(in.back());
    return out;
  }

  size_t rank() const { return rank_; }
  // Spatial dim i's window size and stride.
  int64_t size(size_t i) const { return ksize_[i + 1]; }
  int64_t stride(size_t i) const { return strides_[i + 1]; }

 private:
  const std::vector<int64_t> ksize_, strides_;
  const std::string padding_;
  const size_t rank_;
  std::vector<int64_t> explicit_paddings_;
};

class PoolKernel {
 public:
  explicit PoolKernel(TF_OpKernelConstruction* ctx)
      : algorithm_(OpType(ctx).rfind("MaxPool", 0) == 0
                       ? dnnl::algorithm::pooling_max
                       : dnnl::algorithm::pooling_avg_exclude_padding),
        window_(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto in = Shape(input.get());
    const PoolWindow::Geometry g = window_.For(in);
    const std::vector<int64_t> out = PoolWindow::OutShape(in, g);
    const TF_DataType dtype = TF_TensorType(input.get());
    OwnedTensor output = ctx.allocate_output(0, out, dtype);
    // _MklNativeMaxPool (op_definitions.h) has a workspace output for
    // training; inference needs none.
    if (TF_NumOutputs(ctx.raw()) > 1) ctx.allocate_output(1, {0}, TF_UINT8);
    if (NumElements(out) == 0) return;
    auto p = cache_.Get(in, [&] {
      Primitive p;
      const memory::data_type type = OneDnnType(dtype);
      const std::vector<int64_t> in_spatial(in.begin() + 1, in.end() - 1);
      const std::vector<int64_t> out_spatial(out.begin() + 1, out.end() - 1);
      p.src = ChannelsLastDesc(in.front(), in.back(), in_spatial, type);
      p.dst = ChannelsLastDesc(in.front(), in.back(), out_spatial, type);
      memory::dims strides, window, dilations, pad_l, pad_r;
      for (size_t i = 0; i < window_.rank(); ++i) {
        strides.push_back(window_.stride(i));
        window.push_back(window_.size(i));
        dilations.push_back(0);
        pad_l.push_back(g[i].before);
        pad_r.push_back(g[i].after);
      }
      dnnl::pooling_forward::primitive_desc pd(Engine(), dnnl::prop_kind::forward_inference,
                                               algorithm_, p.src, p.dst, strides, window, dilations,
                                               pad_l, pad_r, UserScratchpadAttr());
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
    const std::vector<int64_t> out = PoolWindow::OutShape(in, g);
    Require(Shape(grad.get()) == out, [&] {
      return "Expected grad shape to be " + ShapeString(out) + ", but got " +
             ShapeString(Shape(grad.get()));
    });
    OwnedTensor result = ctx.allocate_output(0, in, TF_FLOAT);
    const float* x = Data<float>(input.get());
    const float* dy = Data<float>(grad.get());
    float* dx = Data<float>(result.get());
    const WindowSpan &rows = g[0], &cols = g[1];  // MaxPoolGrad is 2-D (NHWC)
    const int64_t depth = in[3], image = in[1] * in[2] * depth;
    std::fill(dx, dx + NumElements(in), 0.f);
    // By image: windows overlap within one, never across.
#pragma omp parallel for if (NumElements(in) > kParallelElements)
    for (int64_t b = 0; b < in[0]; ++b) {
      std::vector<float> best(depth);
      std::vector<int64_t> at(depth);
      for (int64_t ph = 0; ph < rows.out; ++ph) {
        const int64_t h0 = std::max<int64_t>(ph * window_.stride(0) - rows.before, 0);
        const int64_t h1 = std::min(ph * window_.stride(0) - rows.before + window_.size(0), in[1]);
        for (int64_t pw = 0; pw < cols.out; ++pw) {
          const int64_t w0 = std::max<int64_t>(pw * window_.stride(1) - cols.before, 0);
          const int64_t w1 =
              std::min(pw * window_.stride(1) - cols.before + window_.size(1), in[2]);
          const float* base = x + b * image;
          const int64_t first = (h0 * in[2] + w0) * depth;
          for (int64_t d = 0; d < depth; ++d) best[d] = base[first + d], at[d] = first + d;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
              const int64_t offset = (h * in[2] + w) * depth;
              for (int64_t d = 0; d < depth; ++d)
                if (best[d] < base[offset + d]) best[d] = base[offset + d], at[d] = offset + d;
            }
          const float* gradient = dy + ((b * rows.out + ph) * cols.out + pw) * depth;
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
  for (const char* op : {"MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D"}) {
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
