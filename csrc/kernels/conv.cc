// Conv2D and DepthwiseConv2dNative, plain, fused (_QcpuFusedConv2D,
// _QcpuFusedDepthwiseConv2dNative) and quantized (_QcpuQuantizedConv2D,
// _QcpuQuantizedDepthwiseConv2dNative), on oneDNN's convolution primitive.
//
// Weights are packed once into the layout the primitive prefers and kept in
// a cache that can never serve stale weights (packed_weights.h); a folded
// BatchNorm's scale is multiplied in while packing (float), or into the
// weights' per-channel scales (quantized, quantization.h).
#include "kernels/conv.h"

#include "kernels/bf16.h"
#include "kernels/channel_constants.h"
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
        strides_(GetIntListAttr(ctx, "strides")),
        dilations_(GetIntListAttr(ctx, "dilations")),
        padding_(GetStringAttr(ctx, "padding")),
        quantized_(ctx, /*convolution=*/true, depthwise_),
        fused_(ctx, /*allow_scale=*/true) {
    Require(GetStringAttr(ctx, "data_format") == "NHWC",
            "QCPU convolutions support the NHWC data format only");
    Require(strides_.size() == 4 && strides_[0] == 1 && strides_[3] == 1 && strides_[1] > 0 &&
                strides_[2] > 0,
            "strides must be [1, h, w, 1] with positive h and w");
    Require(dilations_.size() == 4 && dilations_[0] == 1 && dilations_[3] == 1 &&
                dilations_[1] > 0 && dilations_[2] > 0,
            "dilations must be [1, h, w, 1] with positive h and w");
    Require(padding_ == "SAME" || padding_ == "VALID" || padding_ == "EXPLICIT",
            "unknown padding '" + padding_ + "'");
    if (padding_ == "EXPLICIT") {
      explicit_paddings_ = GetIntListAttr(ctx, "explicit_paddings");
      Require(explicit_paddings_.size() == 8, "explicit_paddings must hold 8 values");
      for (int64_t p : explicit_paddings_) Require(p >= 0, "explicit_paddings must be >= 0");
    }
  }

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 2 + quantized_.num_inputs());
    OwnedTensor input = ctx.input(0), filter = ctx.input(1);
    const auto in = Shape(input.get()), f = Shape(filter.get());
    Require(in.size() == 4, "input must be 4-D, got " + ShapeString(in));
    Require(f.size() == 4, "filter must be 4-D, got " + ShapeString(f));
    const int64_t channels = depthwise_ ? f[2] * f[3] : f[3];
    if (depthwise_)
      Require(in[3] == f[2], "input depth must equal filter depth: input " + ShapeString(in) +
                                 ", filter " + ShapeString(f));
    else
      Require(f[2] > 0 && in[3] % f[2] == 0,
              "input depth must be evenly divisible by filter depth: input " + ShapeString(in) +
                  ", filter " + ShapeString(f));

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
    const int64_t n = in[0], ih = in[1], iw = in[2], ic = in[3];
    const int64_t kh = f[0], kw = f[1];
    const int64_t groups = depthwise_ ? ic : ic / f[2];
    const int64_t oc = depthwise_ ? f[2] * f[3] : f[3];
    const int64_t ig = ic / groups, og = oc / groups;
    int64_t oh, ow, top, bottom, left, right;
    if (padding_ == "SAME") {
      SamePadding(ih, kh, strides_[1], dilations_[1], oh, top, bottom);
      SamePadding(iw, kw, strides_[2], dilations_[2], ow, left, right);
    } else {
      top = bottom = left = right = 0;
      if (padding_ == "EXPLICIT") {
        top = explicit_paddings_[2], bottom = explicit_paddings_[3];
        left = explicit_paddings_[4], right = explicit_paddings_[5];
      }
      const int64_t ekh = (kh - 1) * dilations_[1] + 1, ekw = (kw - 1) * dilations_[2] + 1;
      Require(
          ih + top + bottom >= ekh && iw + left + right >= ekw,
          "the filter " + ShapeString(f) + " is larger than the padded input " + ShapeString(in));
      oh = (ih + top + bottom - ekh) / strides_[1] + 1;
      ow = (iw + left + right - ekw) / strides_[2] + 1;
    }
    ConvPrimitive p;
    p.out_shape = {n, oh, ow, oc};
    // Activations stay in TF's NHWC; oneDNN's logical order is NCHW.
    p.src = memory::desc({n, ic, ih, iw}, quantized_.src_type(), memory::format_tag::nhwc);
    p.dst = memory::desc({n, oc, oh, ow}, quantized_.dst_type(), memory::format_tag::nhwc);
    p.addend = memory::desc({n, oc, oh, ow}, fused_.addend_type(), memory::format_tag::nhwc);
    const memory::data_type weights_type = quantized_.weights_type();
    const memory::data_type read_weights_type = ComputeType(weights_type, bf16);
    p.bias = PlainF32({oc});
    // TF's filter [kh, kw, ig, oc] (depthwise: [kh, kw, ic, multiplier]),
    // read in place through strides; output channel o = g * og + (o % og).
    memory::desc any_weights;
    if (groups == 1) {
      p.user_weights =
          memory::desc({oc, ig, kh, kw}, weights_type, memory::dims{1, oc, kw * ig * oc, ig * oc});
      any_weights = memory::desc({oc, ig, kh, kw}, read_weights_type, memory::format_tag::any);
    } else {
      p.user_weights = memory::desc({groups, og, ig, kh, kw}, weights_type,
                                    memory::dims{og, 1, oc, kw * ig * oc, ig * oc});
      any_weights =
          memory::desc({groups, og, ig, kh, kw}, read_weights_type, memory::format_tag::any);
    }
    dnnl::primitive_attr attr = UserScratchpadAttr();
    attr.set_post_ops(fused_.MakePostOps(p.addend));
    // A scale per output channel: dim 0 of the weights, dims 0-1 when grouped.
    quantized_.Configure(attr, /*weights_mask=*/groups == 1 ? 1 : 3, quantization);
    const memory::dims strides = {strides_[1], strides_[2]};
    const memory::dims dilations = {dilations_[1] - 1, dilations_[2] - 1};
    const memory::dims pad_l = {top, left}, pad_r = {bottom, right};
    const memory::desc src = ComputeDesc(p.src, bf16);
    p.src_reorder = MakeReorder(p.src, src);
    auto pd =
        fused_.has_bias()
            ? dnnl::convolution_forward::primitive_desc(
                  Engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                  src, any_weights, p.bias, p.dst, strides, dilations, pad_l, pad_r, attr)
            : dnnl::convolution_forward::primitive_desc(
                  Engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                  src, any_weights, p.dst, strides, dilations, pad_l, pad_r, attr);
    p.packed_weights = pd.weights_desc();
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::convolution_forward(pd);
    return p;
  }

  const bool depthwise_;
  const std::vector<int64_t> strides_, dilations_;
  const std::string padding_;
  std::vector<int64_t> explicit_paddings_;
  const QuantizedOperands quantized_;
  const FusedOps fused_;
  PrimitiveCache<ConvPrimitive> cache_;
  PackedWeights weights_;
  ChannelConstantsCache constants_;
};

}  // namespace

void RegisterConvKernels(const char* device_type, TF_Status* status) {
  for (const char* op :
       {"Conv2D", "DepthwiseConv2dNative", ops::kFusedConv2D, ops::kFusedDepthwiseConv2D}) {
    RegisterKernel<ConvKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  // Their dtypes are checked by their op definitions.
  for (const char* op : {ops::kQuantizedConv2D, ops::kQuantizedDepthwiseConv2D}) {
    RegisterKernel<ConvKernel>({op, {}, {"input_zero_point"}}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
