// _QcpuLayerNorm: the graph Keras' LayerNormalization emits, as one oneDNN
// layer_normalization primitive (one pass over the data instead of ten ops).
#include "kernels/layer_norm.h"

#include <cstring>

#include "kernels/fused_ops.h"
#include "kernels/onednn_util.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

class LayerNormKernel {
 public:
  explicit LayerNormKernel(TF_OpKernelConstruction* ctx) : fused_(ctx, /*allow_scale=*/true) {
    for (const std::string& op : GetStringListAttr(ctx, "fused_ops"))
      Require(
          op == "Scale" || op == "BiasAdd",
          "LayerNorm's fused_ops may hold Scale (gamma) and BiasAdd (beta) only, got '" + op + "'");
  }

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 2);
    OwnedTensor x = ctx.input(0), eps = ctx.input(1);
    const auto shape = Shape(x.get());
    Require(!shape.empty(), "x must have at least one dimension");
    const int64_t channels = shape.back();
    std::vector<float> gamma, beta;  // empty when not fused
    fused_.FoldAffine(args, channels, gamma, beta);
    Require(TF_TensorElementCount(eps.get()) == 1, "epsilon must be a scalar");
    OwnedTensor out = ctx.allocate_output(0, shape, TF_FLOAT);
    if (NumElements(shape) == 0) return;
    const float epsilon = *Data<float>(eps.get());
    // Rows of `channels`, normalized each; epsilon is part of the primitive.
    const int64_t rows = NumElements(shape) / channels;
    int32_t eps_bits;
    std::memcpy(&eps_bits, &epsilon, sizeof eps_bits);
    auto flags = dnnl::normalization_flags::none;
    if (!gamma.empty()) flags |= dnnl::normalization_flags::use_scale;
    if (!beta.empty()) flags |= dnnl::normalization_flags::use_shift;
    auto p = cache_.Get({rows, channels, eps_bits}, [&] {
      Primitive p;
      p.data = PlainF32({rows, channels});
      p.channel = PlainF32({channels});
      dnnl::layer_normalization_forward::primitive_desc pd(
          Engine(), dnnl::prop_kind::forward_inference, p.data, p.data, epsilon, flags,
          UserScratchpadAttr());
      p.scratchpad = pd.scratchpad_desc();
      p.primitive = dnnl::layer_normalization_forward(pd);
      return p;
    });
    std::unordered_map<int, memory> exec_args = {
        {DNNL_ARG_SRC, ArgMemory(p->data, TF_TensorData(x.get()))},
        {DNNL_ARG_DST, ArgMemory(p->data, TF_TensorData(out.get()))}};
    if (!gamma.empty()) exec_args.emplace(DNNL_ARG_SCALE, ArgMemory(p->channel, gamma.data()));
    if (!beta.empty()) exec_args.emplace(DNNL_ARG_SHIFT, ArgMemory(p->channel, beta.data()));
    Execute(ctx, p->primitive, p->scratchpad, std::move(exec_args));
  }

 private:
  struct Primitive {
    dnnl::layer_normalization_forward primitive;
    memory::desc data, channel, scratchpad;
  };
  const FusedOps fused_;  // fixed per node: one set of flags for every cached primitive
  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterLayerNormKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<LayerNormKernel>({ops::kLayerNorm}, device_type, status);
}

}  // namespace int8flow::kernels
