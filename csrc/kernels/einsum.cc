// Two-operand Einsum on oneDNN's matmul primitive (the batched matmul step of
// batch_matmul.h); its operand and result permutations are oneDNN reorders.
#include "kernels/einsum.h"

#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "kernels/batch_matmul.h"
#include "kernels/bf16.h"
#include "kernels/onednn_util.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

// ---- Einsum with two operands -------------------------------------------------
// Labels sort into batch (both operands and the output), free (one operand
// and the output) and contracted (not in the output). A label in one operand
// only and not in the output is summed: it is contracted against a stride-0
// view of the other operand. Each operand is reordered into
// [batch, free, contracted] (or [batch, contracted, free]) when it is not
// already laid out so; one batched matmul follows; the result is reordered
// into the output's label order unless it already is in it.
class EinsumKernel {
 public:
  explicit EinsumKernel(TF_OpKernelConstruction* ctx) {
    const std::string equation = GetStringAttr(ctx, "equation");
    const auto arrow = equation.find("->");
    const auto comma = equation.find(',');
    Require(arrow != std::string::npos && comma != std::string::npos && comma < arrow &&
                equation.find(',', comma + 1) == std::string::npos,
            "QCPU's Einsum takes two operands and an explicit output: '" + equation + "'");
    Require(equation.find('.') == std::string::npos,
            "QCPU's Einsum does not support ellipses: '" + equation + "'");
    a_ = equation.substr(0, comma);
    b_ = equation.substr(comma + 1, arrow - comma - 1);
    out_ = equation.substr(arrow + 2);
    for (const std::string* labels : {&a_, &b_, &out_}) {
      for (size_t i = 0; i < labels->size(); ++i)
        Require(labels->find((*labels)[i], i + 1) == std::string::npos,
                "QCPU's Einsum does not support repeated labels (diagonals): '" + equation + "'");
    }
    for (char c : out_)
      Require(a_.find(c) != std::string::npos || b_.find(c) != std::string::npos, [&] {
        return "output label '" + std::string(1, c) + "' appears in no operand of '" + equation +
               "'";
      });
    for (char c : out_) {
      const bool in_a = a_.find(c) != std::string::npos, in_b = b_.find(c) != std::string::npos;
      (in_a && in_b ? batch_ : in_a ? free_a_ : free_b_).push_back(c);
    }
    for (char c : a_ + b_)
      if (out_.find(c) == std::string::npos && contracted_.find(c) == std::string::npos)
        contracted_.push_back(c);
  }

  void Compute(KernelContext& ctx) {
    Require(ctx.num_inputs() == 2, "QCPU's Einsum takes two operands");
    OwnedTensor a = ctx.input(0), b = ctx.input(1);
    const auto as = Shape(a.get()), bs = Shape(b.get());
    Require(as.size() == a_.size() && bs.size() == b_.size(), [&] {
      return "operand ranks " + ShapeString(as) + ", " + ShapeString(bs) +
             " do not match the labels";
    });
    std::map<char, int64_t> size;
    const auto learn = [&](const std::string& labels, const std::vector<int64_t>& shape) {
      for (size_t i = 0; i < labels.size(); ++i) {
        auto [it, inserted] = size.emplace(labels[i], shape[i]);
        Require(inserted || it->second == shape[i], [&] {
          return "label '" + std::string(1, labels[i]) + "' has sizes " +
                 std::to_string(it->second) + " and " + std::to_string(shape[i]);
        });
      }
    };
    learn(a_, as);
    learn(b_, bs);
    std::vector<int64_t> out;
    for (char c : out_) out.push_back(size[c]);
    OwnedTensor result = ctx.allocate_output(0, out, TF_FLOAT);
    if (NumElements(out) == 0) return;
    int64_t k = 1;
    for (char c : contracted_) k *= size[c];
    if (k == 0) {
      std::memset(TF_TensorData(result.get()), 0, TF_TensorByteSize(result.get()));
      return;
    }
    std::vector<int64_t> key = as;
    key.insert(key.end(), bs.begin(), bs.end());
    const bool bf16 = Bf16Call(/*quantized=*/false);
    key.push_back(bf16);
    auto p = cache_.Get(key, [&] {
      return BuildPreferringBf16(bf16, "Einsum",
                                 [&](bool use_bf16) { return Build(size, as, bs, use_bf16); });
    });

    // Operands into their matmul layouts (and bf16) where needed, in TF
    // scratch memory: by the plan's reorder, or by the matmul step's.
    OwnedTensor a_temp, b_temp, out_temp;
    const auto& a_reorder = p->reorder_a ? p->reorder_a : p->matmul.a_reorder;
    const auto& b_reorder = p->reorder_b ? p->reorder_b : p->matmul.b_reorder;
    void* dst = TF_TensorData(result.get());
    if (p->reorder_out) {
      out_temp = ctx.allocate_temp(p->matmul.dst.get_size());
      dst = TF_TensorData(out_temp.get());
    }
    Execute(
        ctx, p->matmul.primitive, p->matmul.scratchpad,
        {{DNNL_ARG_SRC, InputMemory(ctx, p->matmul.a, a_reorder, TF_TensorData(a.get()), a_temp)},
         {DNNL_ARG_WEIGHTS,
          InputMemory(ctx, p->matmul.b, b_reorder, TF_TensorData(b.get()), b_temp)},
         {DNNL_ARG_DST, ArgMemory(p->matmul.dst, dst)}});
    if (p->reorder_out) p->reorder_out->Run(ctx, dst, TF_TensorData(result.get()));
  }

 private:
  struct Plan {
    std::optional<ReorderStep> reorder_a, reorder_b, reorder_out;
    MatMulStep matmul;
  };

  // `labels` of a tensor stored as `stored` (row-major, its labels
  // `stored_labels`), viewed in the order `order`; stride 0 for a label the
  // tensor does not have.
  static memory::desc View(const std::string& order, const std::string& stored_labels,
                           const std::vector<int64_t>& stored,
                           const std::map<char, int64_t>& size) {
    const memory::dims stored_strides = DenseStrides(memory::dims(stored.begin(), stored.end()));
    memory::dims dims, strides;
    for (char c : order) {
      dims.push_back(size.at(c));
      const auto at = stored_labels.find(c);
      strides.push_back(at == std::string::npos ? 0 : stored_strides[at]);
    }
    if (dims.empty()) dims = {1}, strides = {1};
    return memory::desc(dims, memory::data_type::f32, strides);
  }

  // The tensor (labels `stored_labels`, shape `stored`) as [batch..., r, c]
  // for the matmul, `slots` = {r, c} each one label or none (a dim of 1).
  memory::desc SlotView(const std::vector<std::string>& slots, const std::string& stored_labels,
                        const std::vector<int64_t>& stored,
                        const std::map<char, int64_t>& size) const {
    const memory::dims stored_strides = DenseStrides(memory::dims(stored.begin(), stored.end()));
    memory::dims dims, strides;
    for (char c : batch_) {
      dims.push_back(size.at(c));
      strides.push_back(stored_strides[stored_labels.find(c)]);
    }
    for (const std::string& slot : slots) {
      dims.push_back(slot.empty() ? 1 : size.at(slot[0]));
      strides.push_back(slot.empty() ? 1 : stored_strides[stored_labels.find(slot[0])]);
    }
    return memory::desc(dims, memory::data_type::f32, strides);
  }

  Plan Build(const std::map<char, int64_t>& size, const std::vector<int64_t>& as,
             const std::vector<int64_t>& bs, bool bf16) const {
    const auto product = [&](const std::string& labels) {
      int64_t n = 1;
      for (char c : labels) n *= size.at(c);
      return n;
    };
    const int64_t batch = product(batch_), m = product(free_a_), n = product(free_b_),
                  k = product(contracted_);
    // Dense row-major in the matmul's label order (as the matmul reads it:
    // bf16 too, when `bf16`), and the operands viewed so.
    const auto dense = [&](const std::string& order, bool read_as_bf16) {
      memory::dims dims;
      for (char c : order) dims.push_back(size.at(c));
      if (dims.empty()) dims = {1};
      return ComputeDesc(PlainF32(dims), read_as_bf16);
    };
    const std::string a_order = batch_ + free_a_ + contracted_;
    const std::string b_order = batch_ + contracted_ + free_b_;
    const std::string out_order = batch_ + free_a_ + free_b_;
    std::vector<int64_t> out_shape;
    for (char c : out_) out_shape.push_back(size.at(c));
    Plan plan;
    // When M, N and K are one label (or none) each, the matmul reads and
    // writes the tensors in place through strides, batch dims and all
    // (attention's einsums): no reorder, if oneDNN has a fast kernel for it.
    const bool in_place = free_a_.size() <= 1 && free_b_.size() <= 1 && contracted_.size() == 1 &&
                          a_.find(contracted_) != std::string::npos &&
                          b_.find(contracted_) != std::string::npos;
    if (in_place) {
      plan.matmul = MakeMatMul(SlotView({free_a_, contracted_}, a_, as, size),
                               SlotView({contracted_, free_b_}, b_, bs, size),
                               SlotView({free_a_, free_b_}, out_, out_shape, size), false,
                               UserScratchpadAttr(), {}, bf16);
      if (plan.matmul.impl.find("ref") == std::string::npos) return plan;
    }
    plan.reorder_a = MakeReorder(View(a_order, a_, as, size), dense(a_order, bf16));
    plan.reorder_b = MakeReorder(View(b_order, b_, bs, size), dense(b_order, bf16));
    plan.reorder_out = MakeReorder(dense(out_order, false), View(out_order, out_, out_shape, size));
    plan.matmul = MakeMatMul(ComputeDesc(PlainF32({batch, m, k}), bf16),
                             ComputeDesc(PlainF32({batch, k, n}), bf16), PlainF32({batch, m, n}));
    return plan;
  }

  std::string a_, b_, out_, batch_, free_a_, free_b_, contracted_;
  PrimitiveCache<Plan> cache_;
};

}  // namespace

void RegisterEinsumKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<EinsumKernel>({"Einsum"}, device_type, status);
}

}  // namespace int8flow::kernels
