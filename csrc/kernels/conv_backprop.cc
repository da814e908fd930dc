// Conv2DBackpropInput (plain and fused) and Conv2DBackpropFilter, float32
// NHWC, and their 3-D twins Conv3DBackpropInputV2 and Conv3DBackpropFilterV2
// (NDHWC), on oneDNN. They are the convolutions' gradients, which a training
// loop's While body (ConvLSTM2D's) runs on QCPU alone, where no other device
// can stand in; the input gradients are also Conv2DTranspose's and
// Conv3DTranspose's forward ops. The filter is TF's [k..., ig, oc].
#include "kernels/conv_backprop.h"

#include <cstring>

#include "kernels/conv_geometry.h"
#include "kernels/fused_ops.h"
#include "kernels/packed_weights.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

std::vector<int64_t> CacheKey(std::vector<int64_t> in, const std::vector<int64_t>& f) {
  in.insert(in.end(), f.begin(), f.end());
  return in;
}

// The shapes both gradients share: the conv of `in` by `f` must give `grad`.
ConvGeometry CheckedGeometry(const ConvAttrs& attrs, const std::vector<int64_t>& in,
                             const std::vector<int64_t>& f, const std::vector<int64_t>& grad) {
  RequireConvShapes(attrs, in, f, /*depthwise=*/false);
  const ConvGeometry g = MakeConvGeometry(attrs, in, f, /*depthwise=*/false);
  Require(grad == g.out_shape(), [&] {
    return "out_backprop has shape " + ShapeString(grad) + " but the convolution of " +
           ShapeString(in) + " by the filter " + ShapeString(f) + " gives " +
           ShapeString(g.out_shape());
  });
  return g;
}

// A shape input, input_sizes or filter_sizes, of a convolution's rank.
std::vector<int64_t> SizesInput(const KernelContext& ctx, int i, const char* name,
                                const ConvAttrs& attrs) {
  const std::vector<int64_t> sizes = IntValues(ctx.input(i).get());
  const size_t rank = attrs.spatial_rank + 2;
  Require(sizes.size() == rank, [&] {
    return std::string(name) + " must hold " + std::to_string(rank) + " values, got " +
           std::to_string(sizes.size());
  });
  for (int64_t d : sizes)
    Require(d >= 0, [&] { return std::string(name) + " must not be negative"; });
  return sizes;
}

void FillZero(TF_Tensor* t) { std::memset(TF_TensorData(t), 0, TF_TensorByteSize(t)); }

// Conv2DBackpropInput is a deconvolution of out_backprop by the filter,
// which oneDNN runs forward with a bias and post-ops: Conv2DTranspose's
// BiasAdd and activation fuse into it (_QcpuFusedConv2DBackpropInput), and
// its constant filter is packed once, not per call.
class ConvBackpropInputKernel {
 public:
  explicit ConvBackpropInputKernel(TF_OpKernelConstruction* ctx)
      : attrs_(ctx), fused_(ctx, /*allow_scale=*/false) {
    Require(!fused_.has_addend(), "fused_ops: a transposed convolution fuses no Add");
  }

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 3);
    const std::vector<int64_t> in = SizesInput(ctx, 0, "input_sizes", attrs_);
    OwnedTensor filter = ctx.input(1), grad = ctx.input(2);
    const std::vector<int64_t> f = Shape(filter.get());
    const ConvGeometry g = CheckedGeometry(attrs_, in, f, Shape(grad.get()));
    std::vector<float> no_scale, bias;
    fused_.FoldAffine(args, g.ic, no_scale, bias);
    OwnedTensor out = ctx.allocate_output(0, in, TF_FLOAT);
    if (NumElements(in) == 0) return;
    if (NumElements(f) == 0 || NumElements(g.out_shape()) == 0) {
      Require(fused_.empty(), "fused transposed convolutions need at least one input channel");
      return FillZero(out.get());
    }
    auto p = cache_.Get(CacheKey(in, f), [&] { return Build(g); });
    std::unordered_map<int, memory> exec_args = {
        {DNNL_ARG_SRC, ArgMemory(p->src, TF_TensorData(grad.get()))},
        {DNNL_ARG_WEIGHTS, weights_.Get(std::move(filter), {}, p->user_weights, p->packed_weights)},
        {DNNL_ARG_DST, ArgMemory(p->dst, TF_TensorData(out.get()))}};
    if (!bias.empty()) exec_args.emplace(DNNL_ARG_BIAS, ArgMemory(p->bias, bias.data()));
    Execute(ctx, p->primitive, p->scratchpad, std::move(exec_args));
  }

 private:
  struct TransposedConvPrimitive {
    dnnl::deconvolution_forward primitive;
    memory::desc src, dst, user_weights, packed_weights, bias, scratchpad;
  };

  TransposedConvPrimitive Build(const ConvGeometry& g) const {
    TransposedConvPrimitive p;
    const auto f32 = memory::data_type::f32;
    p.src = ChannelsLastDesc(g.n, g.oc, g.out_spatial, f32);  // the conv's output: out_backprop
    p.dst = ChannelsLastDesc(g.n, g.ic, g.in_spatial, f32);
    p.bias = PlainF32({g.ic});
    p.user_weights = TfFilterDesc(g, f32, /*transposed=*/true);
    const memory::desc any_weights = AnyFilterDesc(g, f32, /*transposed=*/true);
    dnnl::primitive_attr attr = UserScratchpadAttr();
    attr.set_post_ops(fused_.MakePostOps(memory::desc()));
    const auto kind = dnnl::prop_kind::forward_inference;
    const auto algorithm = dnnl::algorithm::deconvolution_direct;
    auto pd = fused_.has_bias() ? dnnl::deconvolution_forward::primitive_desc(
                                      Engine(), kind, algorithm, p.src, any_weights, p.bias, p.dst,
                                      g.strides, g.dilations, g.pad_l, g.pad_r, attr)
                                : dnnl::deconvolution_forward::primitive_desc(
                                      Engine(), kind, algorithm, p.src, any_weights, p.dst,
                                      g.strides, g.dilations, g.pad_l, g.pad_r, attr);
    p.packed_weights = pd.weights_desc();
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::deconvolution_forward(pd);
    return p;
  }

  const ConvAttrs attrs_;
  const FusedOps fused_;
  PrimitiveCache<TransposedConvPrimitive> cache_;
  PackedWeights weights_;
};

class ConvBackpropFilterKernel {
 public:
  explicit ConvBackpropFilterKernel(TF_OpKernelConstruction* ctx) : attrs_(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), grad = ctx.input(2);
    const std::vector<int64_t> f = SizesInput(ctx, 1, "filter_sizes", attrs_);
    const std::vector<int64_t> in = Shape(input.get());
    const ConvGeometry g = CheckedGeometry(attrs_, in, f, Shape(grad.get()));
    OwnedTensor out = ctx.allocate_output(0, f, TF_FLOAT);
    if (NumElements(f) == 0) return;
    if (NumElements(in) == 0 || NumElements(g.out_shape()) == 0) return FillZero(out.get());
    auto p = cache_.Get(CacheKey(in, f), [&] { return Build(g); });
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
  struct FilterGradientPrimitive {
    dnnl::convolution_backward_weights primitive;
    memory::desc activations, gradient, scratchpad;  // NHWC: the conv's input and output
    memory::desc filter;                             // the primitive's layout
    std::optional<ReorderStep> filter_reorder;       // from it to TF's, when they differ
  };

  static FilterGradientPrimitive Build(const ConvGeometry& g) {
    const auto f32 = memory::data_type::f32;
    FilterGradientPrimitive p;
    p.activations = ChannelsLastDesc(g.n, g.ic, g.in_spatial, f32);
    p.gradient = ChannelsLastDesc(g.n, g.oc, g.out_spatial, f32);
    const memory::desc any_filter = AnyFilterDesc(g, f32);
    const auto algorithm = dnnl::algorithm::convolution_direct;
    const dnnl::convolution_forward::primitive_desc hint(
        Engine(), dnnl::prop_kind::forward_training, algorithm, p.activations, any_filter,
        p.gradient, g.strides, g.dilations, g.pad_l, g.pad_r);
    const dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), algorithm, p.activations, any_filter, p.gradient, g.strides, g.dilations, g.pad_l,
        g.pad_r, hint, UserScratchpadAttr());
    p.filter = pd.diff_weights_desc();
    p.filter_reorder = MakeReorder(p.filter, TfFilterDesc(g, f32));
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::convolution_backward_weights(pd);
    return p;
  }

  const ConvAttrs attrs_;
  PrimitiveCache<FilterGradientPrimitive> cache_;
};

}  // namespace

void RegisterConvBackpropKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"Conv2DBackpropInput", ops::kFusedConv2DBackpropInput,
                         "Conv3DBackpropInputV2", ops::kFusedConv3DBackpropInput}) {
    RegisterKernel<ConvBackpropInputKernel>({op, {{"T", TF_FLOAT}}, {"input_sizes"}}, device_type,
                                            status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  for (const char* op : {"Conv2DBackpropFilter", "Conv3DBackpropFilterV2"}) {
    RegisterKernel<ConvBackpropFilterKernel>({op, {{"T", TF_FLOAT}}, {"filter_sizes"}}, device_type,
                                             status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
