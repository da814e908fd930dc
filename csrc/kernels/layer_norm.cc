// _QcpuLayerNorm: the graph Keras' LayerNormalization emits, as one oneDNN
// layer_normalization primitive (one pass over the data instead of ten ops).
#include "kernels/layer_norm.h"

#include <cstring>

#include "kernels/onednn_util.h"
#include "kernels/op_definitions.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

class LayerNormKernel {
 public:
  explicit LayerNormKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), gamma = ctx.input(1), beta = ctx.input(2), eps = ctx.input(3);
    const auto shape = Shape(x.get());
    Require(!shape.empty(), "x must have at least one dimension");
    const int64_t channels = shape.back();
    for (const auto& [what, t] : {std::pair{"gamma", gamma.get()}, {"beta", beta.get()}})
      Require(static_cast<int64_t>(TF_TensorElementCount(t)) == channels,
              std::string(what) + " must hold " + std::to_string(channels) + " values, got " +
                  ShapeString(Shape(t)));
    Require(TF_TensorElementCount(eps.get()) == 1, "epsilon must be a scalar");
    OwnedTensor out = ctx.allocate_output(0, shape, TF_FLOAT);
    if (NumElements(shape) == 0) return;
    const float epsilon = *Data<float>(eps.get());
    // Rows of `channels`, normalized each; epsilon is part of the primitive.
    const int64_t rows = NumElements(shape) / channels;
    int32_t eps_bits;
    std::memcpy(&eps_bits, &epsilon, sizeof eps_bits);
    auto p = cache_.Get({rows, channels, eps_bits}, [&] {
      Primitive p;
      p.data = PlainF32({rows, channels});
      p.channel = PlainF32({channels});
      dnnl::layer_normalization_forward::primitive_desc pd(
          Engine(), dnnl::prop_kind::forward_inference, p.data, p.data, epsilon,
          dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift,
          UserScratchpadAttr());
      p.scratchpad = pd.scratchpad_desc();
      p.primitive = dnnl::layer_normalization_forward(pd);
      return p;
    });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, memory(p->data, Engine(), TF_TensorData(x.get()))},
             {DNNL_ARG_DST, memory(p->data, Engine(), TF_TensorData(out.get()))},
             {DNNL_ARG_SCALE, memory(p->channel, Engine(), TF_TensorData(gamma.get()))},
             {DNNL_ARG_SHIFT, memory(p->channel, Engine(), TF_TensorData(beta.get()))}});
  }

 private:
  struct Primitive {
    dnnl::layer_normalization_forward primitive;
    memory::desc data, channel, scratchpad;
  };
  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterLayerNormKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<LayerNormKernel>({kLayerNorm}, device_type, status);
}

}  // namespace int8flow::kernels
