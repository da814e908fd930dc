// Conv2DBackpropInput and Conv2DBackpropFilter, float32 NHWC, on oneDNN's
// convolution backward primitives. They are Conv2D's gradients, which a
// training loop's While body (ConvLSTM2D's) runs on QCPU alone, where no
// other device can stand in; Conv2DBackpropInput is also Conv2DTranspose's
// forward op. The filter is TF's [kh, kw, ig, oc], reordered per call into
// the primitive's layout (a gradient's weights change every step).
#include "kernels/conv_backprop.h"

#include <cstring>

#include "kernels/conv_geometry.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

struct BackpropPrimitive {
  dnnl::primitive primitive;
  memory::desc activations, gradient, scratchpad;  // NHWC: the conv's input and output
  memory::desc tf_filter, filter;                  // TF's layout, and the primitive's
  std::optional<ReorderStep> filter_reorder;       // between the two, when they differ
};

// What both gradients' primitives share: the NHWC activations and gradient,
// TF's filter, and a backward primitive desc of `PrimitiveDesc`'s kind that
// picks its own filter layout.
BackpropPrimitive SharedDescs(const ConvGeometry& g) {
  BackpropPrimitive p;
  p.activations = NhwcDesc(g.n, g.ic, g.ih, g.iw, memory::data_type::f32);
  p.gradient = NhwcDesc(g.n, g.oc, g.oh, g.ow, memory::data_type::f32);
  p.tf_filter = TfFilterDesc(g, memory::data_type::f32);
  return p;
}

template <typename PrimitiveDesc>
PrimitiveDesc BackwardDesc(const ConvGeometry& g, const BackpropPrimitive& p) {
  const memory::desc any_filter = AnyFilterDesc(g, memory::data_type::f32);
  const dnnl::convolution_forward::primitive_desc hint(
      Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      p.activations, any_filter, p.gradient, g.strides, g.dilations, g.pad_l, g.pad_r);
  return PrimitiveDesc(Engine(), dnnl::algorithm::convolution_direct, p.activations, any_filter,
                       p.gradient, g.strides, g.dilations, g.pad_l, g.pad_r, hint,
                       UserScratchpadAttr());
}

std::vector<int64_t> CacheKey(std::vector<int64_t> in, const std::vector<int64_t>& f) {
  in.insert(in.end(), f.begin(), f.end());
  return in;
}

// The shapes both gradients share: the conv of `in` by `f` must give `grad`.
ConvGeometry CheckedGeometry(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                             const std::vector<int64_t>& f, const std::vector<int64_t>& grad) {
  RequireConvShapes(in, f, /*depthwise=*/false);
  const ConvGeometry g = MakeConvGeometry(attrs, in, f, /*depthwise=*/false);
  Require(grad == g.out_shape(), [&] {
    return "out_backprop has shape " + ShapeString(grad) + " but the convolution of " +
           ShapeString(in) + " by the filter " + ShapeString(f) + " gives " +
           ShapeString(g.out_shape());
  });
  return g;
}

std::vector<int64_t> SizesInput(const KernelContext& ctx, int i, const char* name) {
  const std::vector<int64_t> sizes = IntValues(ctx.input(i).get());
  Require(sizes.size() == 4, [&] {
    return std::string(name) + " must hold 4 values, got " + std::to_string(sizes.size());
  });
  for (int64_t d : sizes) Require(d >= 0, std::string(name) + " must not be negative");
  return sizes;
}

void FillZero(TF_Tensor* t) { std::memset(TF_TensorData(t), 0, TF_TensorByteSize(t)); }

class ConvBackpropInputKernel {
 public:
  explicit ConvBackpropInputKernel(TF_OpKernelConstruction* ctx) : attrs_(ctx) {}

  void Compute(KernelContext& ctx) {
    const std::vector<int64_t> in = SizesInput(ctx, 0, "input_sizes");
    OwnedTensor filter = ctx.input(1), grad = ctx.input(2);
    const std::vector<int64_t> f = Shape(filter.get());
    const ConvGeometry g = CheckedGeometry(attrs_, in, f, Shape(grad.get()));
    OwnedTensor out = ctx.allocate_output(0, in, TF_FLOAT);
    if (NumElements(in) == 0) return;
    if (NumElements(f) == 0 || NumElements(g.out_shape()) == 0) return FillZero(out.get());
    auto p = cache_.Get(CacheKey(in, f), [&] {
      BackpropPrimitive p = SharedDescs(g);
      const auto pd = BackwardDesc<dnnl::convolution_backward_data::primitive_desc>(g, p);
      p.filter = pd.weights_desc();
      p.filter_reorder = MakeReorder(p.tf_filter, p.filter);
      p.scratchpad = pd.scratchpad_desc();
      p.primitive = dnnl::convolution_backward_data(pd);
      return p;
    });
    OwnedTensor filter_copy;  // in the primitive's layout, for the call
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_DIFF_DST, ArgMemory(p->gradient, TF_TensorData(grad.get()))},
             {DNNL_ARG_WEIGHTS, InputMemory(ctx, p->tf_filter, p->filter_reorder,
                                            TF_TensorData(filter.get()), filter_copy)},
             {DNNL_ARG_DIFF_SRC, ArgMemory(p->activations, TF_TensorData(out.get()))}});
  }

 private:
  const ConvAttrs attrs_;
  PrimitiveCache<BackpropPrimitive> cache_;
};

class ConvBackpropFilterKernel {
 public:
  explicit ConvBackpropFilterKernel(TF_OpKernelConstruction* ctx) : attrs_(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), grad = ctx.input(2);
    const std::vector<int64_t> f = SizesInput(ctx, 1, "filter_sizes");
    const std::vector<int64_t> in = Shape(input.get());
    const ConvGeometry g = CheckedGeometry(attrs_, in, f, Shape(grad.get()));
    OwnedTensor out = ctx.allocate_output(0, f, TF_FLOAT);
    if (NumElements(f) == 0) return;
    if (NumElements(in) == 0 || NumElements(g.out_shape()) == 0) return FillZero(out.get());
    auto p = cache_.Get(CacheKey(in, f), [&] {
      BackpropPrimitive p = SharedDescs(g);
      const auto pd = BackwardDesc<dnnl::convolution_backward_weights::primitive_desc>(g, p);
      p.filter = pd.diff_weights_desc();
      p.filter_reorder = MakeReorder(p.filter, p.tf_filter);
      p.scratchpad = pd.scratchpad_desc();
      p.primitive = dnnl::convolution_backward_weights(pd);
      return p;
    });
    // The primitive writes its own layout; TF's comes from it by reorder.
    OwnedTensor packed;
    void* target = TF_TensorData(out.get());
    if (p->filter_reorder) {
      packed = ctx.allocate_temp(p->filter.get_size());
      target = TF_TensorData(packed.get());
    }
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, ArgMemory(p->activations, TF_TensorData(input.get()))},
             {DNNL_ARG_DIFF_DST, ArgMemory(p->gradient, TF_TensorData(grad.get()))},
             {DNNL_ARG_DIFF_WEIGHTS, ArgMemory(p->filter, target)}});
    if (p->filter_reorder) p->filter_reorder->Run(ctx, target, TF_TensorData(out.get()));
  }

 private:
  const ConvAttrs attrs_;
  PrimitiveCache<BackpropPrimitive> cache_;
};

}  // namespace

void RegisterConvBackpropKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<ConvBackpropInputKernel>(
      {"Conv2DBackpropInput", {{"T", TF_FLOAT}}, {"input_sizes"}}, device_type, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterKernel<ConvBackpropFilterKernel>(
      {"Conv2DBackpropFilter", {{"T", TF_FLOAT}}, {"filter_sizes"}}, device_type, status);
}

}  // namespace int8flow::kernels
