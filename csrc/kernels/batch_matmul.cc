// BatchMatMulV2, BatchMatMul and _QcpuQuantizedBatchMatMul on oneDNN's matmul
// primitive, and the matmul step Einsum (einsum.cc) shares.
#include "kernels/batch_matmul.h"

#include <algorithm>
#include <string>

#include "kernels/bf16.h"
#include "kernels/channel_constants.h"
#include "kernels/fused_ops.h"
#include "kernels/onednn_util.h"
#include "kernels/packed_weights.h"
#include "kernels/quantization.h"
#include "ops/op_names.h"

namespace int8flow::kernels {

using dnnl::memory;

MatMulStep MakeMatMul(const memory::desc& a, const memory::desc& b, const memory::desc& dst,
                      bool pack_b, const dnnl::primitive_attr& attr, const memory::desc& bias,
                      bool bf16) {
  const memory::desc a_read = ComputeDesc(a, bf16), b_read = ComputeDesc(b, bf16);
  const memory::desc b_layout =
      pack_b ? memory::desc(b.get_dims(), b_read.get_data_type(), memory::format_tag::any) : b_read;
  const dnnl::matmul::primitive_desc pd =
      bias.is_zero() ? dnnl::matmul::primitive_desc(Engine(), a_read, b_layout, dst, attr)
                     : dnnl::matmul::primitive_desc(Engine(), a_read, b_layout, bias, dst, attr);
  return {dnnl::matmul(pd),
          a,
          b,
          dst,
          pd.scratchpad_desc(),
          pack_b ? pd.weights_desc() : memory::desc(),
          MakeReorder(a, a_read),
          pack_b ? std::nullopt : MakeReorder(b, b_read),
          pd.impl_info_str()};
}

namespace {

// ---- BatchMatMulV2: broadcasting batch dims, adj_x / adj_y as strides ---------
// The quantized op adds u8/s8 x, s8 y with a scale per output column (or one),
// and _QcpuFusedMatMul's fused ops (quantization.h).
class BatchMatMulKernel {
 public:
  explicit BatchMatMulKernel(TF_OpKernelConstruction* ctx)
      : adj_x_(GetBoolAttr(ctx, "adj_x")),
        adj_y_(GetBoolAttr(ctx, "adj_y")),
        quantized_(ctx, /*convolution=*/false),
        fused_(ctx, /*allow_scale=*/quantized_.enabled()) {}

  void Compute(KernelContext& ctx) {
    const std::vector<OwnedTensor> args = fused_.ReadArgs(ctx, 2 + quantized_.num_inputs());
    OwnedTensor x = ctx.input(0), y = ctx.input(1);
    const auto xs = Shape(x.get()), ys = Shape(y.get());
    Require(xs.size() >= 2 && ys.size() >= 2, [&] {
      return "In[0] and In[1] must be at least rank 2, got " + ShapeString(xs) + " and " +
             ShapeString(ys);
    });
    const size_t rank = std::max(xs.size(), ys.size());
    // Both padded with leading 1s to the same rank.
    std::vector<int64_t> xp(rank - xs.size(), 1), yp(rank - ys.size(), 1);
    xp.insert(xp.end(), xs.begin(), xs.end());
    yp.insert(yp.end(), ys.begin(), ys.end());
    std::vector<int64_t> out(rank);
    for (size_t d = 0; d + 2 < rank; ++d) {
      Require(xp[d] == yp[d] || xp[d] == 1 || yp[d] == 1, [&] {
        return "In[0] and In[1] must have compatible batch dimensions: " + ShapeString(xs) +
               " vs. " + ShapeString(ys);
      });
      out[d] = xp[d] == 1 ? yp[d] : xp[d];
    }
    const int64_t m = xp[rank - (adj_x_ ? 1 : 2)], k = xp[rank - (adj_x_ ? 2 : 1)];
    const int64_t ky = yp[rank - (adj_y_ ? 1 : 2)], n = yp[rank - (adj_y_ ? 2 : 1)];
    Require(k == ky, [&] {
      return "Matrix size-incompatible: In[0]: " + ShapeString(xs) + ", In[1]: " + ShapeString(ys);
    });
    out[rank - 2] = m;
    out[rank - 1] = n;
    const auto constants = constants_.Get(ctx, fused_, quantized_, 2, args, n);
    const std::vector<float>& bias = constants->bias;
    QuantizedOperands::Values quantization = quantized_.Read(ctx, 2, *constants);
    const TF_Tensor* addend = fused_.Addend(args, out);
    OwnedTensor result = ctx.allocate_output(0, out, quantized_.out_dtype());
    if (quantized_.FillNonFinite(quantization, result.get())) return;
    if (NumElements(out) == 0) return;
    if (k == 0) {
      // oneDNN leaves an empty product's output unwritten, bias and all.
      Require(fused_.empty(), "fused BatchMatMuls need an inner dimension > 0");
      return quantized_.FillZero(result.get());
    }
    std::vector<int64_t> key = xp;
    key.insert(key.end(), yp.begin(), yp.end());
    // A second operand shared by the whole batch is a layer's weights (Keras'
    // Dense and EinsumDense on 3-D inputs): pack it once. Per-batch ones are
    // activations (attention), new every call; quantized, they are packed
    // anyway, to reach 7 bits on CPUs without VNNI (quantization.h).
    const bool pack = NumElements(yp) == k * n || quantized_.enabled();
    key.push_back(quantized_.ZeroPointsUsed(quantization));
    const bool bf16 = Bf16Call(quantized_.enabled());
    key.push_back(bf16);
    auto p = cache_.Get(key, [&] {
      return BuildPreferringBf16(bf16, "BatchMatMul", [&](bool use_bf16) {
        return Build(xp, yp, out, n, pack, quantization, use_bf16);
      });
    });
    OwnedTensor x_copy, y_copy;  // bf16 copies, for the call
    std::unordered_map<int, memory> exec_args = {
        {DNNL_ARG_SRC, InputMemory(ctx, p->a, p->a_reorder, TF_TensorData(x.get()), x_copy)},
        {DNNL_ARG_WEIGHTS,
         pack ? quantized_.PackWeights(weights_, std::move(y), {}, p->b, p->packed_b, quantization)
              : InputMemory(ctx, p->b, p->b_reorder, TF_TensorData(y.get()), y_copy)},
        {DNNL_ARG_DST, ArgMemory(p->dst, TF_TensorData(result.get()))}};
    if (!bias.empty()) {
      exec_args.emplace(DNNL_ARG_BIAS,
                        memory(BiasDesc(out.size(), n), Engine(), fused_.BiasData(args, bias)));
    }
    if (addend)
      exec_args.emplace(fused_.addend_arg_id(),
                        memory(AddendDesc(out), Engine(), TF_TensorData(addend)));
    quantized_.AddArgs(quantization, exec_args);
    Execute(ctx, p->primitive, p->scratchpad, std::move(exec_args));
  }

 private:
  MatMulStep Build(const std::vector<int64_t>& xp, const std::vector<int64_t>& yp,
                   const std::vector<int64_t>& out, int64_t n, bool pack,
                   const QuantizedOperands::Values& quantization, bool bf16) const {
    dnnl::primitive_attr attr = UserScratchpadAttr();
    attr.set_post_ops(fused_.MakePostOps(AddendDesc(out)));
    quantized_.Configure(attr, /*weights_mask=*/1 << (out.size() - 1),
                         quantization);  // a scale per column
    const memory::dims dst_dims = OneDnnDims(out);
    return MakeMatMul(Operand(xp, adj_x_, quantized_.src_type()),
                      Operand(yp, adj_y_, quantized_.weights_type()),
                      memory::desc(dst_dims, quantized_.dst_type(), DenseStrides(dst_dims)), pack,
                      attr, fused_.has_bias() ? BiasDesc(out.size(), n) : memory::desc(), bf16);
  }

  // The fused Add's input: dense, shaped like the result.
  memory::desc AddendDesc(const std::vector<int64_t>& out) const {
    const memory::dims dims = OneDnnDims(out);
    return memory::desc(dims, fused_.addend_type(), DenseStrides(dims));
  }

  // A bias of `n` broadcast over every other dim of a rank-`rank` result.
  static memory::desc BiasDesc(size_t rank, int64_t n) {
    memory::dims dims(rank, 1);
    dims.back() = n;
    return PlainF32(dims);
  }

  // The stored [..., r, c] read as [..., c, r] when adjoint.
  static memory::desc Operand(const std::vector<int64_t>& stored, bool adjoint,
                              memory::data_type type) {
    memory::dims dims(stored.begin(), stored.end());
    memory::dims strides = DenseStrides(dims);
    const size_t r = dims.size();
    if (adjoint) {
      std::swap(dims[r - 2], dims[r - 1]);
      std::swap(strides[r - 2], strides[r - 1]);
    }
    return memory::desc(dims, type, strides);
  }

  const bool adj_x_, adj_y_;
  const QuantizedOperands quantized_;
  const FusedOps fused_;
  PrimitiveCache<MatMulStep> cache_;
  PackedWeights weights_;
  ChannelConstantsCache constants_;
};

}  // namespace

void RegisterBatchMatMulKernels(const char* device_type, TF_Status* status) {
  for (const char* op : {"BatchMatMulV2", "BatchMatMul"}) {
    RegisterKernel<BatchMatMulKernel>({op}, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
  // Its dtypes are checked by its op definition.
  RegisterKernel<BatchMatMulKernel>({ops::kQuantizedBatchMatMul, {}, {"x_zero_point"}}, device_type,
                                    status);
}

}  // namespace int8flow::kernels
