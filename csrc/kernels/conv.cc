// Conv2D, DepthwiseConv2dNative and Conv3D, plain, fused (_QcpuFusedConv2D,
// _QcpuFusedDepthwiseConv2dNative, _QcpuFusedConv3D) and quantized
// (_QcpuQuantizedConv2D, _QcpuQuantizedDepthwiseConv2dNative,
// _QcpuQuantizedConv3D), on oneDNN's convolution primitive.
//
// Weights are packed once into the layout the primitive prefers and kept in
// a cache that can never serve stale weights (packed_weights.h); a folded
// BatchNorm's scale is multiplied in while packing (float), or into the
// weights' per-channel scales (quantized, quantization.h).
#include "kernels/conv.h"

#include "kernels/bf16.h"
#include "kernels/channel_constants.h"
#include "kernels/conv_geometry.h"
#include "kernels/fused_ops.h"
#include "kernels/onednn_util.h"
#include "kernels/packed_weights.h"
#include "kernels/quantization.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

// What one input shape compiles to.
struct ConvPrimitive {
  dnnl::convolution_forward primitive;
  memory::desc src, user_weights, packed_weights, bias, dst, addend, scratchpad;
  std::optional<ReorderStep> src_reorder;  // into bf16 (bf16.h)
  std::vector<int64_t> out_shape;
};

class ConvKernel {
 public:
  explicit ConvKernel(TF_OpKernelConstruction* ctx)
      : depthwise_(OpType(ctx).find("Depthwise") != std::string::npos),
        attrs_(ctx),
        quantized_(ctx, /*convolution=*/true, depthwise_),
        fused_(ctx, /*allow_scale=*/true) {}

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 2 + quantized_.num_inputs());
    OwnedTensor input = ctx.input(0), filter = ctx.input(1);
    const auto in = Shape(input.get()), f = Shape(filter.get());
    RequireConvShapes(attrs_, in, f, depthwise_);
    const int64_t channels = depthwise_ ? f[2] * f[3] : f.back();

    const auto constants = constants_.Get(ctx, fused_, quantized_, 2, args, channels);
    const std::vector<float>& scale = constants->scale;
    const std::vector<float>& bias = constants->bias;
    QuantizedOperands::Values quantization = quantized_.Read(ctx, 2, *constants);

    // Keyed by both shapes: eager mode shares one kernel among all the
    // convolutions with the same attrs, whatever their filters.
    std::vector<int64_t> key = in;
    key.insert(key.end(), f.begin(), f.end());
    key.push_back(quantized_.ZeroPointsUsed(quantization));
    const bool bf16 = Bf16Call(quantized_.enabled());
    key.push_back(bf16);
    auto p = cache_.Get(key, [&] {
      return BuildPreferringBf16(
          bf16, "convolution", [&](bool use_bf16) { return Build(in, f, quantization, use_bf16); });
    });
    const auto& out_shape = p->out_shape;
    const TF_Tensor* addend = fused_.Addend(args, out_shape);
    OwnedTensor out = ctx.allocate_output(0, out_shape, quantized_.out_dtype());
    if (quantized_.FillNonFinite(quantization, out.get())) return;
    if (NumElements(out_shape) == 0) return;
    if (NumElements(in) == 0 || NumElements(f) == 0) {
      // An empty sum: the output is the fused ops applied to zero. Only
      // reachable with zero input channels; rare enough to refuse clearly.
      Require(fused_.empty(), "fused convolutions need at least one input channel");
      return quantized_.FillZero(out.get());
    }
    OwnedTensor src_copy;  // bf16, for the call
    std::unordered_map<int, memory> exec_args = {
        {DNNL_ARG_SRC,
         InputMemory(ctx, p->src, p->src_reorder, TF_TensorData(input.get()), src_copy)},
        {DNNL_ARG_WEIGHTS,
         quantized_.PackWeights(weights_, std::move(filter), scale, p->user_weights,
                                p->packed_weights, quantization)},
        {DNNL_ARG_DST, ArgMemory(p->dst, TF_TensorData(out.get()))}};
    if (!bias.empty())
      exec_args.emplace(DNNL_ARG_BIAS, ArgMemory(p->bias, const_cast<float*>(bias.data())));
    if (addend)
      exec_args.emplace(fused_.addend_arg_id(),
                        ArgMemory(p->addend, TF_TensorData(const_cast<TF_Tensor*>(addend))));
    quantized_.AddArgs(quantization, exec_args);
    Execute(ctx, p->primitive, p->scratchpad, std::move(exec_args));
  }

 private:
  ConvPrimitive Build(const std::vector<int64_t>& in, const std::vector<int64_t>& f,
                      const QuantizedOperands::Values& quantization, bool bf16) const {
    const ConvGeometry g = MakeConvGeometry(attrs_, in, f, depthwise_);
    ConvPrimitive p;
    p.out_shape = g.out_shape();
    p.src = ChannelsLastDesc(g.n, g.ic, g.in_spatial, quantized_.src_type());
    p.dst = ChannelsLastDesc(g.n, g.oc, g.out_spatial, quantized_.dst_type());
    p.addend = ChannelsLastDesc(g.n, g.oc, g.out_spatial, fused_.addend_type());
    p.bias = PlainF32({g.oc});
    p.user_weights = TfFilterDesc(g, quantized_.weights_type());
    const memory::desc any_weights = AnyFilterDesc(g, ComputeType(quantized_.weights_type(), bf16));
    dnnl::primitive_attr attr = UserScratchpadAttr();
    attr.set_post_ops(fused_.MakePostOps(p.addend));
    // A scale per output channel: dim 0 of the weights, dims 0-1 when grouped.
    quantized_.Configure(attr, /*weights_mask=*/g.groups == 1 ? 1 : 3, quantization);
    const memory::desc src = ComputeDesc(p.src, bf16);
    p.src_reorder = MakeReorder(p.src, src);
    auto pd =
        fused_.has_bias()
            ? dnnl::convolution_forward::primitive_desc(
                  Engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                  src, any_weights, p.bias, p.dst, g.strides, g.dilations, g.pad_l, g.pad_r, attr)
            : dnnl::convolution_forward::primitive_desc(
                  Engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                  src, any_weights, p.dst, g.strides, g.dilations, g.pad_l, g.pad_r, attr);
    p.packed_weights = pd.weights_desc();
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::convolution_forward(pd);
    return p;
  }

  const bool depthwise_;
  const ConvAttrs attrs_;
  const QuantizedOperands quantized_;
  const FusedOps fused_;
  PrimitiveCache<ConvPrimitive> cache_;
  PackedWeights weights_;
  ChannelConstantsCache constants_;
};

}  // namespace

void RegisterConvKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"Conv2D", "DepthwiseConv2dNative", "Conv3D", ops::kFusedConv2D,
                         ops::kFusedDepthwiseConv2D, ops::kFusedConv3D}) {
    RegisterKernel<ConvKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  // Their dtypes are checked by their op definitions.
  for (const char* op :
       {ops::kQuantizedConv2D, ops::kQuantizedDepthwiseConv2D, ops::kQuantizedConv3D}) {
    RegisterKernel<ConvKernel>({op, {}, {"input_zero_point"}}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
