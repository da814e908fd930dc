// The attrs and shapes of TF's convolutions, 2-D (NHWC) and 3-D (NDHWC), in
// oneDNN's terms, shared by the forward kernels (conv.cc) and their gradients
// (conv_backprop.cc).
#pragma once

#include <string>
#include <vector>

#include "kernels/kernel_registration.h"
#include "kernels/onednn_util.h"

namespace int8flow::kernels {

// strides, dilations, padding and explicit_paddings, checked. The
// data_format gives the spatial rank: NHWC 2, NDHWC 3.
struct ConvAttrs {
  explicit ConvAttrs(TF_OpKernelConstruction* ctx);
  const size_t spatial_rank;
  std::vector<int64_t> strides, dilations;  // TF's: 1 for the batch and channel dims
  std::string padding;
  std::vector<int64_t> explicit_paddings;
};

struct ConvGeometry {
  int64_t n, ic, oc, groups;
  std::vector<int64_t> in_spatial, kernel, out_spatial;  // [d,] h, w
  dnnl::memory::dims strides, dilations, pad_l, pad_r;   // oneDNN's (dilation 0: none)
  std::vector<int64_t> in_shape() const;                 // TF's channels-last [n, spatial..., ic]
  std::vector<int64_t> out_shape() const;                // [n, spatial..., oc]
};

// Throws TF's message unless `in` [n, spatial..., c] and TF's filter `f`
// [k..., ig, oc] (depthwise: [kh, kw, ic, multiplier]) fit together and
// have the attrs' rank.
void RequireConvShapes(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                       const std::vector<int64_t>& f, bool depthwise);
// The convolution of `in` by `f`, after RequireConvShapes.
ConvGeometry MakeConvGeometry(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                              const std::vector<int64_t>& f, bool depthwise);

// TF's filter in oneDNN's logical order (grouped when groups > 1), read in
// place through strides: output channel o = g * og + (o % og). `transposed`:
// as a deconvolution's weights, whose output channels are the conv's input
// ones (Conv2DBackpropInput's).
dnnl::memory::desc TfFilterDesc(const ConvGeometry& g, dnnl::memory::data_type type,
                                bool transposed = false);
// The same dims in the layout the primitive picks.
dnnl::memory::desc AnyFilterDesc(const ConvGeometry& g, dnnl::memory::data_type type,
                                 bool transposed = false);

}  // namespace int8flow::kernels
