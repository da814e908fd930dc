// MaxPool and AvgPool (NHWC) on oneDNN's pooling primitive: float32, and
// MaxPool on int8 too (the int8 pass quantizes before a MaxPool, which
// commutes with quantizing). TF's AvgPool leaves padding out of the average,
// as pooling_avg_exclude_padding; MaxPool's explicit padding takes no part in
// the max, as in oneDNN.
#include "kernels/pooling.h"

#include "kernels/onednn_util.h"
#include "kernels/quantization.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

class PoolKernel {
 public:
  explicit PoolKernel(TF_OpKernelConstruction* ctx)
      : algorithm_(OpType(ctx) == "MaxPool" ? dnnl::algorithm::pooling_max
                                            : dnnl::algorithm::pooling_avg_exclude_padding),
        ksize_(GetIntListAttr(ctx, "ksize")),
        strides_(GetIntListAttr(ctx, "strides")),
        padding_(GetStringAttr(ctx, "padding")) {
    Require(GetStringAttr(ctx, "data_format") == "NHWC",
            "QCPU pooling supports the NHWC data format only");
    Require(
        ksize_.size() == 4 && ksize_[0] == 1 && ksize_[3] == 1 && ksize_[1] > 0 && ksize_[2] > 0,
        "ksize must be [1, h, w, 1] with positive h and w");
    Require(strides_.size() == 4 && strides_[0] == 1 && strides_[3] == 1 && strides_[1] > 0 &&
                strides_[2] > 0,
            "strides must be [1, h, w, 1] with positive h and w");
    Require(padding_ == "SAME" || padding_ == "VALID" || padding_ == "EXPLICIT",
            "padding must be SAME, VALID or EXPLICIT");
    if (padding_ == "EXPLICIT") {
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

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto in = Shape(input.get());
    Require(in.size() == 4, [&] { return "input must be 4-D, got " + ShapeString(in); });
    int64_t oh, ow, top = 0, bottom = 0, left = 0, right = 0;
    if (padding_ == "SAME") {
      SamePadding(in[1], ksize_[1], strides_[1], 1, oh, top, bottom);
      SamePadding(in[2], ksize_[2], strides_[2], 1, ow, left, right);
    } else {
      if (padding_ == "EXPLICIT") {
        top = explicit_paddings_[2], bottom = explicit_paddings_[3];
        left = explicit_paddings_[4], right = explicit_paddings_[5];
      }
      Require(in[1] + top + bottom >= ksize_[1] && in[2] + left + right >= ksize_[2], [&] {
        return "the window [" + std::to_string(ksize_[1]) + ", " + std::to_string(ksize_[2]) +
               "] is larger than the input " + ShapeString(in);
      });
      oh = (in[1] + top + bottom - ksize_[1]) / strides_[1] + 1;
      ow = (in[2] + left + right - ksize_[2]) / strides_[2] + 1;
    }
    const std::vector<int64_t> out = {in[0], oh, ow, in[3]};
    const TF_DataType dtype = TF_TensorType(input.get());
    OwnedTensor output = ctx.allocate_output(0, out, dtype);
    // _MklNativeMaxPool (op_definitions.h) has a workspace output for
    // training; inference needs none.
    if (TF_NumOutputs(ctx.raw()) > 1) ctx.allocate_output(1, {0}, TF_UINT8);
    if (NumElements(out) == 0) return;
    auto p = cache_.Get(in, [&] {
      Primitive p;
      const memory::data_type type = OneDnnType(dtype);
      p.src = memory::desc({in[0], in[3], in[1], in[2]}, type, memory::format_tag::nhwc);
      p.dst = memory::desc({in[0], in[3], oh, ow}, type, memory::format_tag::nhwc);
      dnnl::pooling_forward::primitive_desc pd(Engine(), dnnl::prop_kind::forward_inference,
                                               algorithm_, p.src, p.dst, {strides_[1], strides_[2]},
                                               {ksize_[1], ksize_[2]}, {0, 0}, {top, left},
                                               {bottom, right}, UserScratchpadAttr());
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
  const std::vector<int64_t> ksize_, strides_;
  const std::string padding_;
  std::vector<int64_t> explicit_paddings_;
  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterPoolingKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"MaxPool", "AvgPool"}) {
    RegisterKernel<PoolKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  for (const TF_DataType dtype : {TF_UINT8, TF_INT8}) {
    RegisterKernel<PoolKernel>({"MaxPool", {{"T", dtype}}}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
