// ResizeBilinear and ResizeNearestNeighbor on QCPU (Keras' UpSampling2D,
// Resizing, tf.image.resize in segmentation and detection heads): without
// them the image crossed to TF's CPU and back, its two copies costing more
// than the resize. Each output coordinate's source rows or columns and
// weights come first, computed as TF's CPU kernels compute them (scale,
// half-pixel or legacy scaler, floor/ceil and clamping); then each output
// pixel is its channels' run, contiguous in NHWC, over threads by row.
// TF's float formulas, unfused (built with -ffp-contract=off): exact.
#include "kernels/resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

// TF's CalculateResizeScale.
float ResizeScale(int64_t in, int64_t out, bool align_corners) {
  return align_corners && out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                                  : static_cast<float>(in) / static_cast<float>(out);
}

// The checked input, its output shape and the attrs, as TF's ImageResizerState.
struct ResizeGeometry {
  int64_t batch, in_h, in_w, out_h, out_w, channels;
  float scale_h, scale_w;
};

class ResizeKernelBase {
 protected:
  explicit ResizeKernelBase(TF_OpKernelConstruction* ctx)
      : align_corners_(GetBoolAttr(ctx, "align_corners")),
        half_pixel_centers_(GetBoolAttr(ctx, "half_pixel_centers")) {}

  // Checks the inputs as TF does and allocates the output; false when it is empty.
  bool Prepare(KernelContext& ctx, const OwnedTensor& images, ResizeGeometry& g,
               OwnedTensor& output) const {
    Require(!(align_corners_ && half_pixel_centers_),
            "If half_pixel_centers is True, align_corners must be False.");
    const auto shape = Shape(images.get());
    Require(shape.size() == 4, [&] { return "input must be 4-dimensional" + ShapeString(shape); });
    OwnedTensor size_tensor = ctx.input(1);
    const auto size_shape = Shape(size_tensor.get());
    Require(size_shape.size() == 1,
            [&] { return "shape_t must be 1-dimensional" + ShapeString(size_shape); });
    Require(size_shape[0] == 2,
            [&] { return "shape_t must have two elements" + ShapeString(size_shape); });
    const std::vector<int64_t> size = IntValues(size_tensor.get());
    Require(size[0] > 0 && size[1] > 0, "output dimensions must be positive");
    Require(shape[1] > 0 && shape[2] > 0, "input image must be of non-zero size");
    g = {shape[0],
         shape[1],
         shape[2],
         size[0],
         size[1],
         shape[3],
         ResizeScale(shape[1], size[0], align_corners_),
         ResizeScale(shape[2], size[1], align_corners_)};
    output = ctx.allocate_output(0, {g.batch, g.out_h, g.out_w, g.channels}, TF_FLOAT);
    return g.batch * g.channels > 0;
  }

  // Runs row(b, y, out_row) over every output row of `output`, split over the team.
  template <class Row>
  static void ForEachRow(const ResizeGeometry& g, const OwnedTensor& output, Row row) {
    float* out = Data<float>(output.get());
    const int64_t row_elements = g.out_w * g.channels;
    ForRows(g.batch * g.out_h, row_elements, [&](int64_t first, int64_t last, int) {
      for (int64_t r = first; r < last; ++r) row(r / g.out_h, r % g.out_h, out + r * row_elements);
    });
  }

  const bool align_corners_, half_pixel_centers_;
};

// TF's resize_bilinear_op.cc: a source coordinate per output one, its two
// neighbours clamped into the image and the lerp between them.
struct Interpolation {
  int64_t lower, upper;
  float lerp;
};

std::vector<Interpolation> Interpolations(int64_t out, int64_t in, float scale, bool half_pixel) {
  std::vector<Interpolation> result(out);
  for (int64_t i = 0; i < out; ++i) {
    const float at =
        half_pixel ? (static_cast<float>(i) + 0.5f) * scale - 0.5f : static_cast<float>(i) * scale;
    const float floor = std::floor(at);
    result[i] = {std::max<int64_t>(static_cast<int64_t>(floor), 0),
                 std::min<int64_t>(static_cast<int64_t>(std::ceil(at)), in - 1), at - floor};
  }
  return result;
}

class ResizeBilinearKernel : public ResizeKernelBase {
 public:
  explicit ResizeBilinearKernel(TF_OpKernelConstruction* ctx) : ResizeKernelBase(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor images = ctx.input(0);
    ResizeGeometry g;
    OwnedTensor output;
    if (!Prepare(ctx, images, g, output)) return;
    const auto ys = Interpolations(g.out_h, g.in_h, g.scale_h, half_pixel_centers_);
    const auto xs = Interpolations(g.out_w, g.in_w, g.scale_w, half_pixel_centers_);
    const float* in = Data<float>(images.get());
    const int64_t c = g.channels, in_row = g.in_w * c;
    ForEachRow(g, output, [&](int64_t b, int64_t y, float* out) {
      const float* top = in + (b * g.in_h + ys[y].lower) * in_row;
      const float* bottom = in + (b * g.in_h + ys[y].upper) * in_row;
      for (int64_t x = 0; x < g.out_w; ++x)
        Lerp(top + xs[x].lower * c, top + xs[x].upper * c, bottom + xs[x].lower * c,
             bottom + xs[x].upper * c, xs[x].lerp, ys[y].lerp, out + x * c, c);
    });
  }

 private:
  // TF's compute_lerp, over a pixel's channels.
  INT8FLOW_VECTOR_CLONES static void Lerp(const float* top_left, const float* top_right,
                                          const float* bottom_left, const float* bottom_right,
                                          float x_lerp, float y_lerp, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const float top = top_left[i] + (top_right[i] - top_left[i]) * x_lerp;
      const float bottom = bottom_left[i] + (bottom_right[i] - bottom_left[i]) * x_lerp;
      out[i] = top + (bottom - top) * y_lerp;
    }
  }
};

// TF's resize_nearest_neighbor_op.cc: the source index of each output one.
std::vector<int64_t> NearestSources(int64_t out, int64_t in, float scale, bool align_corners,
                                    bool half_pixel) {
  std::vector<int64_t> result(out);
  for (int64_t i = 0; i < out; ++i) {
    const float at =
        half_pixel ? (static_cast<float>(i) + 0.5f) * scale : static_cast<float>(i) * scale;
    int64_t source = std::min<int64_t>(
        align_corners ? static_cast<int64_t>(std::round(at)) : static_cast<int64_t>(std::floor(at)),
        in - 1);
    if (half_pixel) source = std::max<int64_t>(source, 0);
    result[i] = source;
  }
  return result;
}

class ResizeNearestKernel : public ResizeKernelBase {
 public:
  explicit ResizeNearestKernel(TF_OpKernelConstruction* ctx) : ResizeKernelBase(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor images = ctx.input(0);
    ResizeGeometry g;
    OwnedTensor output;
    if (!Prepare(ctx, images, g, output)) return;
    const auto ys = NearestSources(g.out_h, g.in_h, g.scale_h, align_corners_, half_pixel_centers_);
    const auto xs = NearestSources(g.out_w, g.in_w, g.scale_w, align_corners_, half_pixel_centers_);
    const float* in = Data<float>(images.get());
    const int64_t c = g.channels;
    ForEachRow(g, output, [&](int64_t b, int64_t y, float* out) {
      const float* row = in + (b * g.in_h + ys[y]) * g.in_w * c;
      for (int64_t x = 0; x < g.out_w; ++x) std::copy_n(row + xs[x] * c, c, out + x * c);
    });
  }
};

}  // namespace

void RegisterResizeKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<ResizeBilinearKernel>({"ResizeBilinear", {{"T", TF_FLOAT}}, {"size"}}, device_type,
                                       status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterKernel<ResizeNearestKernel>({"ResizeNearestNeighbor", {{"T", TF_FLOAT}}, {"size"}},
                                      device_type, status);
}

}  // namespace int8flow::kernels
