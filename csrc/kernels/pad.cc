// Pad (constant zero) on QCPU: a oneDNN reorder of the input into its place
// inside the zeroed output. Keras' ZeroPadding2D emits it before a VALID conv.
#include "kernels/pad.h"

#include <cstring>

#include "kernels/onednn_util.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

class PadKernel {
 public:
  explicit PadKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), paddings_tensor = ctx.input(1);
    const auto in = Shape(input.get());
    const auto pads_shape = Shape(paddings_tensor.get());
    const int rank = static_cast<int>(in.size());
    Require(pads_shape == std::vector<int64_t>{rank, 2}, [&] {
      return "paddings must be a matrix of shape [" + std::to_string(rank) + ", 2], got " +
             ShapeString(pads_shape);
    });
    const std::vector<int64_t> pads = IntValues(paddings_tensor.get());
    std::vector<int64_t> out(rank), offsets(rank);
    for (int d = 0; d < rank; ++d) {
      Require(pads[2 * d] >= 0 && pads[2 * d + 1] >= 0, [&] {
        return "paddings must be non-negative, got " + std::to_string(pads[2 * d]) + " and " +
               std::to_string(pads[2 * d + 1]) + " for dim " + std::to_string(d);
      });
      offsets[d] = pads[2 * d];
      out[d] = in[d] + pads[2 * d] + pads[2 * d + 1];
    }
    OwnedTensor output = ctx.allocate_output(0, out, TF_FLOAT);
    if (NumElements(out) == 0) return;
    std::memset(TF_TensorData(output.get()), 0, TF_TensorByteSize(output.get()));
    if (NumElements(in) == 0) return;
    std::vector<int64_t> key = in;
    key.insert(key.end(), pads.begin(), pads.end());
    auto p = cache_.Get(key, [&] { return Build(in, out, offsets); });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_FROM, ArgMemory(p->src, TF_TensorData(input.get()))},
             {DNNL_ARG_TO, ArgMemory(p->dst, TF_TensorData(output.get()))}});
  }

 private:
  struct Primitive {
    dnnl::reorder primitive;
    memory::desc src, dst, scratchpad;
  };

  static Primitive Build(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                         const std::vector<int64_t>& offsets) {
    Primitive p;
    p.src = PlainF32(OneDnnDims(in));
    // The output viewed as just the input's window.
    p.dst = PlainF32(OneDnnDims(out)).submemory_desc(OneDnnDims(in), OneDnnDims(offsets));
    dnnl::reorder::primitive_desc pd(Engine(), p.src, Engine(), p.dst, UserScratchpadAttr());
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::reorder(pd);
    return p;
  }

  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterPadKernels(const char* device_type, TF_Status* status) {
  for (TF_DataType index : {TF_INT32, TF_INT64}) {
    RegisterKernel<PadKernel>({"Pad", {{"T", TF_FLOAT}, {"Tpaddings", index}}, {"paddings"}},
                              device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
