// Mean, Sum, Max and Min over any axes (float32) on oneDNN's reduction
// primitive: global average pooling, LayerNormalization's moments,
// squeeze-and-excitation blocks.
#include "kernels/reduction.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/half_as_float.h"
#include "kernels/nan_rules.h"
#include "kernels/onednn_util.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

struct Reduction {
  const char* op;
  dnnl::algorithm algorithm;
  float empty_value;  // TF's result when reducing over nothing
  // The pooling that computes it over H and W of an NHWC tensor (global
  // pooling), or undef: oneDNN 3.2 has only a reference reduction for that
  // layout, and its pooling is jitted and 30x faster there.
  dnnl::algorithm global_pooling;
  bool drops_nan = false;  // oneDNN's max/min skip NaN, TF's return it (nan_rules.h)
};

const std::vector<Reduction>& Reductions() {
  static const std::vector<Reduction> table = {
      {"Mean", dnnl::algorithm::reduction_mean, std::numeric_limits<float>::quiet_NaN(),
       dnnl::algorithm::pooling_avg_exclude_padding},
      {"Sum", dnnl::algorithm::reduction_sum, 0.f, dnnl::algorithm::undef},
      {"Max", dnnl::algorithm::reduction_max, -std::numeric_limits<float>::infinity(),
       dnnl::algorithm::pooling_max, true},
      {"Min", dnnl::algorithm::reduction_min, std::numeric_limits<float>::infinity(),
       dnnl::algorithm::undef, true},
  };
  return table;
}

class ReductionKernel {
 public:
  explicit ReductionKernel(TF_OpKernelConstruction* ctx)
      : keep_dims_(GetBoolAttr(ctx, "keep_dims")) {
    const std::string op = OpType(ctx);
    for (const Reduction& r : Reductions())
      if (op == r.op) reduction_ = &r;
    Require(reduction_ != nullptr, "no QCPU reduction for op " + op);
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0), axes_tensor = ctx.input(1);
    const auto in = Shape(input.get());
    const int rank = static_cast<int>(in.size());
    std::vector<bool> reduced(rank, false);
    for (int64_t axis : IntValues(axes_tensor.get())) {
      Require(axis >= -rank && axis < rank, "Invalid reduction dimension (" + std::to_string(axis) +
                                                " for input with " + std::to_string(rank) +
                                                " dimension(s)");
      reduced[axis < 0 ? axis + rank : axis] = true;
    }
    std::vector<int64_t> kept(in), out;  // kept: reduced axes as 1
    for (int d = 0; d < rank; ++d) {
      if (reduced[d]) kept[d] = 1;
      if (!reduced[d] || keep_dims_) out.push_back(kept[d]);
    }
    OwnedTensor output = ctx.allocate_output(0, out, TF_FLOAT);
    const int64_t count = NumElements(out);
    if (count == 0) return;
    float* dst = Data<float>(output.get());
    if (NumElements(in) == 0) return std::fill(dst, dst + count, reduction_->empty_value);
    if (kept == in) {  // nothing to reduce
      std::memcpy(dst, TF_TensorData(input.get()), TF_TensorByteSize(input.get()));
      return;
    }
    std::vector<int64_t> key = in;
    key.insert(key.end(), kept.begin(), kept.end());
    const bool global_pooling = reduction_->global_pooling != dnnl::algorithm::undef && rank == 4 &&
                                reduced == std::vector<bool>{false, true, true, false};
    auto p = cache_.Get(key, [&] { return global_pooling ? BuildPooling(in) : Build(in, kept); });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, ArgMemory(p->src, TF_TensorData(input.get()))},
             {DNNL_ARG_DST, ArgMemory(p->dst, dst)}});
    const float* x = Data<float>(input.get());
    if (reduction_->drops_nan && AnyNaN(x, NumElements(in))) PropagateReducedNaN(x, in, dst, kept);
  }

 private:
  struct Primitive {
    dnnl::primitive primitive;
    memory::desc src, dst, scratchpad;
  };

  Primitive Build(const std::vector<int64_t>& in, const std::vector<int64_t>& kept) const {
    Primitive p;
    p.src = PlainF32(OneDnnDims(in));
    p.dst = PlainF32(OneDnnDims(kept));
    dnnl::reduction::primitive_desc pd(Engine(), reduction_->algorithm, p.src, p.dst, 0.f, 0.f,
                                       UserScratchpadAttr());
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::reduction(pd);
    return p;
  }

  // NHWC [n, h, w, c] -> [n, 1, 1, c] as one h x w pooling window.
  Primitive BuildPooling(const std::vector<int64_t>& in) const {
    Primitive p;
    p.src = memory::desc({in[0], in[3], in[1], in[2]}, memory::data_type::f32,
                         memory::format_tag::nhwc);
    p.dst = memory::desc({in[0], in[3], 1, 1}, memory::data_type::f32, memory::format_tag::nhwc);
    dnnl::pooling_forward::primitive_desc pd(
        Engine(), dnnl::prop_kind::forward_inference, reduction_->global_pooling, p.src, p.dst,
        {1, 1}, {in[1], in[2]}, {0, 0}, {0, 0}, {0, 0}, UserScratchpadAttr());
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::pooling_forward(pd);
    return p;
  }

  const bool keep_dims_;
  const Reduction* reduction_ = nullptr;
  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterReductionKernels(const char* device_type, TF_Status* status) {
  for (const Reduction& r : Reductions()) {
    for (TF_DataType index : {TF_INT32, TF_INT64}) {
      RegisterWithHalfTypes<ReductionKernel>(
          {r.op, {{"T", TF_FLOAT}, {"Tidx", index}}, {"reduction_indices"}}, device_type, status);
      if (TF_GetCode(status) != TF_OK) return;
    }
  }
}

}  // namespace int8flow::kernels
