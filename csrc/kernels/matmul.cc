// MatMul, _QcpuFusedMatMul and _QcpuQuantizedMatMul on oneDNN's matmul
// primitive, with the fused bias, residual add and activation as post-ops
// of the same primitive, and the weights (the second operand) packed once
// (packed_weights.h). The quantized op is the fused one on u8/s8
// activations and s8 weights (quantization.h).
#include "kernels/matmul.h"

#include <algorithm>

#include "kernels/bf16.h"
#include "kernels/channel_constants.h"
#include "kernels/fused_ops.h"
#include "kernels/half_as_float.h"
#include "kernels/onednn_util.h"
#include "kernels/packed_weights.h"
#include "kernels/quantization.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

struct MatMulPrimitive {
  dnnl::matmul primitive;
  memory::desc src, weights, packed_weights, bias, dst, addend, scratchpad;
  std::optional<ReorderStep> src_reorder;  // into bf16 (bf16.h)
};

class MatMulKernel {
 public:
  explicit MatMulKernel(TF_OpKernelConstruction* ctx)
      : transpose_a_(GetBoolAttr(ctx, "transpose_a")),
        transpose_b_(GetBoolAttr(ctx, "transpose_b")),
        quantized_(ctx, /*convolution=*/false),
        fused_(ctx, /*allow_scale=*/quantized_.enabled()) {}

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 2 + quantized_.num_inputs());
    OwnedTensor a = ctx.input(0), b = ctx.input(1);
    const auto a_shape = Shape(a.get()), b_shape = Shape(b.get());
    // `a` may carry leading batch dims (the pass fuses BatchMatMulV2 of a
    // batch by one matrix): its rows are all but its last dim.
    Require(a_shape.size() >= 2 && b_shape.size() == 2 && (a_shape.size() == 2 || !transpose_a_),
            [&] {
              return "MatMul takes matrices, got " + ShapeString(a_shape) + " and " +
                     ShapeString(b_shape);
            });
    const int64_t m = a_shape.size() == 2
                          ? a_shape[transpose_a_ ? 1 : 0]
                          : NumElements(a_shape) / std::max<int64_t>(a_shape.back(), 1);
    const int64_t k = a_shape[a_shape.size() == 2 && transpose_a_ ? 0 : a_shape.size() - 1];
    const int64_t n = b_shape[transpose_b_ ? 0 : 1], kb = b_shape[transpose_b_ ? 1 : 0];
    Require(k == kb, [&] {
      return "Matrix size-incompatible: In[0]: " + ShapeString(a_shape) +
             ", In[1]: " + ShapeString(b_shape);
    });
    std::vector<int64_t> out_shape(a_shape.begin(), a_shape.end() - 1);
    if (a_shape.size() == 2) out_shape = {m};
    out_shape.push_back(n);
    const auto constants = constants_.Get(ctx, fused_, quantized_, 2, args, n);
    const std::vector<float>& bias = constants->bias;
    QuantizedOperands::Values quantization = quantized_.Read(ctx, 2, *constants);
    const TF_Tensor* addend = fused_.Addend(args, out_shape);

    OwnedTensor out = ctx.allocate_output(0, out_shape, quantized_.out_dtype());
    if (quantized_.FillNonFinite(quantization, out.get())) return;
    if (m == 0 || n == 0) return;
    if (k == 0) {
      // oneDNN leaves an empty product's output unwritten, bias and all.
      Require(fused_.empty(), "fused MatMuls need an inner dimension > 0");
      return quantized_.FillZero(out.get());
    }
    const bool bf16 = Bf16Call(quantized_.enabled());
    const bool single_thread = SmallProduct(m, k, n);
    // Float weights new each call are read as they are (PackedWeights::Varies).
    const bool read_in_place = !quantized_.enabled() && !bf16 && weights_.Varies();
    auto p =
        cache_.Get({m, k, n, quantized_.ZeroPointsUsed(quantization), bf16, read_in_place}, [&] {
          const OmpThreadsScope threads(single_thread);
          return BuildPreferringBf16(bf16, "MatMul", [&](bool use_bf16) {
            return Build(m, k, n, quantization, use_bf16, read_in_place);
          });
        });
    OwnedTensor src_copy;  // bf16, for the call
    std::unordered_map<int, memory> exec_args = {
        {DNNL_ARG_SRC, InputMemory(ctx, p->src, p->src_reorder, TF_TensorData(a.get()), src_copy)},
        {DNNL_ARG_WEIGHTS, read_in_place
                               ? ArgMemory(p->weights, TF_TensorData(b.get()))
                               : quantized_.PackWeights(weights_, std::move(b), {}, p->weights,
                                                        p->packed_weights, quantization)},
        {DNNL_ARG_DST, ArgMemory(p->dst, TF_TensorData(out.get()))}};
    if (!bias.empty()) {
      exec_args.emplace(DNNL_ARG_BIAS, ArgMemory(p->bias, fused_.BiasData(args, bias)));
    }
    if (addend)
      exec_args.emplace(fused_.addend_arg_id(), ArgMemory(p->addend, TF_TensorData(addend)));
    quantized_.AddArgs(quantization, exec_args);
    Execute(ctx, p->primitive, p->scratchpad, std::move(exec_args), single_thread);
  }

 private:
  MatMulPrimitive Build(int64_t m, int64_t k, int64_t n,
                        const QuantizedOperands::Values& quantization, bool bf16,
                        bool read_in_place) const {
    MatMulPrimitive p;
    // A transposed operand is the same buffer read with swapped strides.
    p.src = memory::desc({m, k}, quantized_.src_type(),
                         transpose_a_ ? memory::dims{1, m} : memory::dims{k, 1});
    p.weights = memory::desc({k, n}, quantized_.weights_type(),
                             transpose_b_ ? memory::dims{1, k} : memory::dims{n, 1});
    p.bias = PlainF32({1, n});
    p.dst = memory::desc({m, n}, quantized_.dst_type(), memory::dims{n, 1});
    p.addend = memory::desc({m, n}, fused_.addend_type(), memory::dims{n, 1});
    dnnl::primitive_attr attr = UserScratchpadAttr();
    attr.set_post_ops(fused_.MakePostOps(p.addend));
    quantized_.Configure(attr, /*weights_mask=*/1 << 1, quantization);  // a scale per column of b
    // Weights in the layout oneDNN prefers, packed once (packed_weights.h).
    const memory::desc any_weights({k, n}, ComputeType(quantized_.weights_type(), bf16),
                                   memory::format_tag::any);
    const memory::desc src = ComputeDesc(p.src, bf16);
    p.src_reorder = MakeReorder(p.src, src);
    const auto make = [&](const memory::desc& weights) {
      return fused_.has_bias()
                 ? dnnl::matmul::primitive_desc(Engine(), src, weights, p.bias, p.dst, attr)
                 : dnnl::matmul::primitive_desc(Engine(), src, weights, p.dst, attr);
    };
    dnnl::matmul::primitive_desc pd = make(read_in_place ? p.weights : any_weights);
    // oneDNN 3.2 pads a narrow product's packed weights to 64 columns: a
    // Dense of 10 classes on 262144 features read 64 MiB a call instead of
    // 10 (1.3 ms). Float weights that would more than double stay row-major.
    const size_t plain_bytes = static_cast<size_t>(k * n) * sizeof(float);
    if (!quantized_.enabled() && !bf16 && pd.weights_desc().get_size() > 2 * plain_bytes)
      pd = make(memory::desc({k, n}, memory::data_type::f32, memory::format_tag::ab));
    p.packed_weights = pd.weights_desc();
    p.scratchpad = pd.scratchpad_desc();
    p.primitive = dnnl::matmul(pd);
    return p;
  }

  const bool transpose_a_, transpose_b_;
  const QuantizedOperands quantized_;
  const FusedOps fused_;
  PrimitiveCache<MatMulPrimitive> cache_;
  PackedWeights weights_;
  ChannelConstantsCache constants_;
};

}  // namespace

void RegisterMatMulKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"MatMul", ops::kFusedMatMul}) {
    RegisterWithHalfTypes<MatMulKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  // Its dtypes are checked by its op definition.
  RegisterKernel<MatMulKernel>({ops::kQuantizedMatMul, {}, {"a_zero_point"}}, device_type, status);
}

}  // namespace int8flow::kernels
