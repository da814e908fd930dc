// The attrs and shapes of TF's 2-D convolutions (NHWC) in oneDNN's terms,
// shared by the forward kernels (conv.cc) and their gradients
// (conv_backprop.cc).
#pragma once

#include <string>
#include <vector>

#include "kernels/kernel_registration.h"
#include "kernels/onednn_util.h"

namespace int8flow::kernels {

// strides, dilations, padding and explicit_paddings, checked.
struct ConvAttrs {
  explicit ConvAttrs(TF_OpKernelConstruction* ctx);
  std::vector<int64_t> strides, dilations;
  std::string padding;
  std::vector<int64_t> explicit_paddings;
};

struct ConvGeometry {
  int64_t n, ih, iw, ic, kh, kw, oc, groups, oh, ow;
  dnnl::memory::dims strides, dilations, pad_l, pad_r;  // oneDNN's (dilation 0: none)
  std::vector<int64_t> out_shape() const { return {n, oh, ow, oc}; }
};

// Throws TF's message unless `in` [n, h, w, c] and TF's filter `f`
// [kh, kw, ig, oc] (depthwise: [kh, kw, ic, multiplier]) fit together.
void RequireConvShapes(const std::vector<int64_t>& in, const std::vector<int64_t>& f,
                       bool depthwise);
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
// Activations stay in TF's NHWC; oneDNN's logical order is NCHW.
dnnl::memory::desc NhwcDesc(int64_t n, int64_t c, int64_t h, int64_t w,
                            dnnl::memory::data_type type);

}  // namespace int8flow::kernels
