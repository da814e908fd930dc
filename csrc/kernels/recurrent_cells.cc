// Keras' recurrent cells' element-wise steps, each as one kernel. Each op
// of a loop body costs TF's executor and our kernel entry a few
// microseconds, more than a step's work at the sizes recurrent layers have
// (an LSTM(128) at batch 8: 8x512 gates).
//
// The gates go through the same oneDNN eltwise primitives as the Sigmoid and
// Tanh kernels, so the results are those of the unfused graph.
// _QcpuLstmCell: sigmoid over all of z (the candidate's quarter is not
// needed but costs less than a strided call), tanh over the candidate,
// copied out, and over the new c. _QcpuGruCell: the two gates' sums side by
// side, one sigmoid over both, one tanh over the candidate.
#include "kernels/recurrent_cells.h"

#include <string>
#include <vector>

#include "kernels/activations.h"
#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"
#include "ops/activations.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

// The activation `op`'s primitive over `n` contiguous floats, in place or
// not: the one its standalone kernel runs (activations.h).
struct EltwisePrimitive {
  dnnl::eltwise_forward primitive;
  memory::desc data, scratchpad;
};

EltwisePrimitive BuildEltwise(const char* op, int64_t n) {
  const Activation& activation = *FindActivation(op);
  EltwisePrimitive p;
  p.data = PlainF32({n});
  const auto pd = ActivationPrimitiveDesc(activation, activation.alpha, p.data);
  p.scratchpad = pd.scratchpad_desc();
  p.primitive = dnnl::eltwise_forward(pd);
  return p;
}

void RunEltwise(KernelContext& ctx, const EltwisePrimitive& p, const float* src, float* dst) {
  Execute(ctx, p.primitive, p.scratchpad,
          {{DNNL_ARG_SRC, ArgMemory(p.data, const_cast<float*>(src))},
           {DNNL_ARG_DST, ArgMemory(p.data, dst)}});
}

// c = f * c_prev + i * g, with i, f (and o) the gates' quarters of a row.
INT8FLOW_VECTOR_CLONES void NewState(const float* gates, const float* candidate,
                                     const float* c_prev, float* c, int64_t batch, int64_t units) {
  for (int64_t b = 0; b < batch; ++b) {
    const float* i = gates + 4 * b * units;
    const float* f = i + units;
    for (int64_t u = 0; u < units; ++u) {
      const int64_t at = b * units + u;
      c[at] = f[u] * c_prev[at] + i[u] * candidate[at];
    }
  }
}

// h = o * tanh(c).
INT8FLOW_VECTOR_CLONES void Output(const float* gates, const float* tanh_c, float* h, int64_t batch,
                                   int64_t units) {
  for (int64_t b = 0; b < batch; ++b) {
    const float* o = gates + (4 * b + 3) * units;
    for (int64_t u = 0; u < units; ++u) h[b * units + u] = o[u] * tanh_c[b * units + u];
  }
}

// z_sum = xz + rz and r_sum = xr + rr, side by side in `sums`.
INT8FLOW_VECTOR_CLONES void GateSums(const float* xz, const float* rz, const float* xr,
                                     const float* rr, float* sums, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    sums[i] = xz[i] + rz[i];
    sums[n + i] = xr[i] + rr[i];
  }
}

// candidate = r * rh + xh, r the second half of `gates`.
INT8FLOW_VECTOR_CLONES void CandidateSum(const float* gates, const float* rh, const float* xh,
                                         float* candidate, int64_t n) {
  for (int64_t i = 0; i < n; ++i) candidate[i] = gates[n + i] * rh[i] + xh[i];
}

// h = z * h_prev + tanh(candidate) * (1 - z), z the first half of `gates`.
INT8FLOW_VECTOR_CLONES void GruOutput(const float* gates, const float* h_prev,
                                      const float* candidate, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = gates[i] * h_prev[i] + candidate[i] * (1.f - gates[i]);
}

class LstmCellKernel {
 public:
  explicit LstmCellKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor z = ctx.input(0), c_prev = ctx.input(1);
    const auto z_shape = Shape(z.get()), c_shape = Shape(c_prev.get());
    Require(z_shape.size() == 2 && c_shape.size() == 2 && z_shape[0] == c_shape[0] &&
                z_shape[1] == 4 * c_shape[1],
            [&] {
              return "LSTM cell: gates of [batch, 4 * units] and a state of [batch, units], got " +
                     ShapeString(z_shape) + " and " + ShapeString(c_shape);
            });
    const int64_t batch = c_shape[0], units = c_shape[1], cells = batch * units;
    OwnedTensor h = ctx.allocate_output(0, c_shape, TF_FLOAT);
    OwnedTensor c = ctx.allocate_output(1, c_shape, TF_FLOAT);
    if (cells == 0) return;
    auto sigmoid =
        sigmoid_.Get({4 * cells}, [&] { return BuildEltwise(ops::kSigmoid, 4 * cells); });
    auto tanh = tanh_.Get({cells}, [&] { return BuildEltwise(ops::kTanh, cells); });
    // Scratch: the gates' sigmoids (4 * cells), then the candidate's tanh and
    // the new state's (cells each).
    OwnedTensor scratch = ctx.allocate_temp(6 * cells * sizeof(float));
    float* gates = Data<float>(scratch.get());
    float* candidate = gates + 4 * cells;
    float* tanh_c = candidate + cells;
    const float* zs = Data<float>(z.get());
    RunEltwise(ctx, *sigmoid, zs, gates);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t u = 0; u < units; ++u) candidate[b * units + u] = zs[(4 * b + 2) * units + u];
    RunEltwise(ctx, *tanh, candidate, candidate);
    NewState(gates, candidate, Data<float>(c_prev.get()), Data<float>(c.get()), batch, units);
    RunEltwise(ctx, *tanh, Data<float>(c.get()), tanh_c);
    Output(gates, tanh_c, Data<float>(h.get()), batch, units);
  }

 private:
  PrimitiveCache<EltwisePrimitive> sigmoid_, tanh_;
};

class GruCellKernel {
 public:
  explicit GruCellKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    // xz, xr, xh, rz, rr, rh, h_prev: ops/op_names.h.
    std::vector<OwnedTensor> in;
    for (int i = 0; i < 7; ++i) in.push_back(ctx.input(i));
    const auto shape = Shape(in[6].get());
    for (int i = 0; i < 6; ++i)
      Require(Shape(in[i].get()) == shape, [&] {
        return "GRU cell: every input must have the state's shape " + ShapeString(shape) +
               ", input " + std::to_string(i) + " has " + ShapeString(Shape(in[i].get()));
      });
    OwnedTensor h = ctx.allocate_output(0, shape, TF_FLOAT);
    const int64_t n = NumElements(shape);
    if (n == 0) return;
    const auto data = [&](int i) { return Data<float>(in[i].get()); };
    auto sigmoid = sigmoid_.Get({2 * n}, [&] { return BuildEltwise(ops::kSigmoid, 2 * n); });
    auto tanh = tanh_.Get({n}, [&] { return BuildEltwise(ops::kTanh, n); });
    // Scratch: the gates (z, r), then the candidate.
    OwnedTensor scratch = ctx.allocate_temp(3 * n * sizeof(float));
    float* gates = Data<float>(scratch.get());
    float* candidate = gates + 2 * n;
    GateSums(data(0), data(3), data(1), data(4), gates, n);
    RunEltwise(ctx, *sigmoid, gates, gates);
    CandidateSum(gates, data(5), data(2), candidate, n);
    RunEltwise(ctx, *tanh, candidate, candidate);
    GruOutput(gates, data(6), candidate, Data<float>(h.get()), n);
  }

 private:
  PrimitiveCache<EltwisePrimitive> sigmoid_, tanh_;
};

}  // namespace

void RegisterRecurrentCellKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<LstmCellKernel>({ops::kLstmCell}, device_type, status);
  if (TF_GetCode(status) == TF_OK)
    RegisterKernel<GruCellKernel>({ops::kGruCell}, device_type, status);
}

}  // namespace int8flow::kernels
