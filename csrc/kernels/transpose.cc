// Transpose on QCPU: output dim d is input dim perm[d]. The input read through
// the output's dims, each with the stride of the input dim it comes from, is a
// strided oneDNN memory, and a reorder of it into the output's dense layout is
// the transpose. Dims of size 1 drop and dims that stay adjacent merge first,
// so the reorder walks the fewest: attention's [B, T, H, D] -> [B, H, T, D] is
// four, a recurrent layer's batch-major to time-major three. When the last
// dim keeps its order and is long, the output is runs of it, copied;
// otherwise oneDNN reorders. Without this kernel a Transpose ran on TF's CPU, its input and
// output copied across.
#include "kernels/transpose.h"

#include <algorithm>
#include <cstring>

#include "kernels/half_as_float.h"
#include "kernels/onednn_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

using dnnl::memory;

std::string PermString(const std::vector<int64_t>& perm) {
  std::string s;
  for (int64_t p : perm) s += (s.empty() ? "" : ",") + std::to_string(p);
  return "{" + s + "}";
}

class TransposeKernel {
 public:
  explicit TransposeKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), perm_tensor = ctx.input(1);
    const auto shape = Shape(x.get());
    const int64_t rank = static_cast<int64_t>(shape.size());
    Require(TF_NumDims(perm_tensor.get()) == 1,
            [&] { return "perm must be a vector, not " + ShapeString(Shape(perm_tensor.get())); });
    const std::vector<int64_t> perm = IntValues(perm_tensor.get());
    Require(static_cast<int64_t>(perm.size()) == rank, [&] {
      return "transpose expects a vector of size " + std::to_string(rank) +
             ". But input(1) is a vector of size " + std::to_string(perm.size());
    });
    // TF's rules: a negative entry counts from the end; each dim exactly once.
    std::vector<int64_t> from(rank), out(rank);
    std::vector<bool> taken(rank, false);
    for (int64_t d = 0; d < rank; ++d) {
      from[d] = perm[d] < 0 ? perm[d] + rank : perm[d];
      Require(from[d] >= 0 && from[d] < rank, [&] {
        return std::to_string(perm[d]) + " is out of range [0 .. " + std::to_string(rank) + ")";
      });
      taken[from[d]] = true;
      out[d] = shape[from[d]];
    }
    for (int64_t d = 0; d < rank; ++d)
      Require(taken[d],
              [&] { return std::to_string(d) + " is missing from " + PermString(perm) + "."; });
    OwnedTensor y = ctx.allocate_output(0, out, TF_FLOAT);
    if (NumElements(out) == 0) return;
    const memory::dims in_strides = DenseStrides(shape);
    memory::dims dims, strides;
    for (int64_t d = 0; d < rank; ++d) {
      if (out[d] == 1) continue;
      const int64_t stride = in_strides[from[d]];
      if (!dims.empty() && strides.back() == stride * out[d]) {  // still adjacent in the input
        dims.back() *= out[d];
        strides.back() = stride;
      } else {
        dims.push_back(out[d]);
        strides.push_back(stride);
      }
    }
    if (dims.size() <= 1)  // the input's order: a copy
      return static_cast<void>(
          std::memcpy(TF_TensorData(y.get()), TF_TensorData(x.get()), TF_TensorByteSize(x.get())));
    if (strides.back() == 1 && dims.back() >= 16)
      return CopyRuns(dims, strides, Data<float>(x.get()), Data<float>(y.get()));
    Require(dims.size() <= DNNL_MAX_NDIMS, [&] {
      return "QCPU's Transpose takes at most " + std::to_string(DNNL_MAX_NDIMS) +
             " dims once adjacent ones merge, got " + std::to_string(dims.size());
    });
    std::vector<int64_t> key(dims.begin(), dims.end());
    key.insert(key.end(), strides.begin(), strides.end());
    const auto reorder = cache_.Get(key, [&] {
      return ReorderStep(memory::desc(dims, memory::data_type::f32, strides), PlainF32(dims));
    });
    reorder->Run(ctx, TF_TensorData(x.get()), TF_TensorData(y.get()));
  }

 private:
  // The last dim keeps its order and is at least 16 long: the output is runs
  // of it, each copied from where `strides` put it. oneDNN's reorder took
  // 63 us for an LSTM's [8, 50, 32] -> [50, 8, 32], this a few; on shorter
  // runs a call per run costs more than oneDNN (attention's head split,
  // runs of 8: 0.33 ms against 0.14 for 2^20 floats). A row's runs (the
  // next-to-last dim) share one index decomposition.
  static void CopyRuns(const memory::dims& dims, const memory::dims& strides, const float* in,
                       float* out) {
    const int64_t rank = static_cast<int64_t>(dims.size()), run = dims[rank - 1];
    const int64_t runs = dims[rank - 2], run_stride = strides[rank - 2];
    int64_t rows = 1;
    for (int64_t d = 0; d < rank - 2; ++d) rows *= dims[d];
    ForRows(rows, runs * run, [&](int64_t first, int64_t last, int) {
      for (int64_t r = first; r < last; ++r) {
        int64_t from = 0;
        for (int64_t d = rank - 3, rest = r; d >= 0; rest /= dims[d--])
          from += rest % dims[d] * strides[d];
        float* to = out + r * runs * run;
        for (int64_t j = 0; j < runs; ++j, to += run)
          std::copy_n(in + from + j * run_stride, run, to);
      }
    });
  }

  PrimitiveCache<ReorderStep> cache_;
};

}  // namespace

void RegisterTransposeKernels(const char* device_type, TF_Status* status) {
  for (TF_DataType index : {TF_INT32, TF_INT64}) {
    KernelSpec spec{"Transpose", {{"T", TF_FLOAT}, {"Tperm", index}}, {"perm"}};
    spec.async = true;  // its readers may start independent branches (kernel_registration.h)
    RegisterWithHalfTypes<TransposeKernel>(spec, device_type, status);
    if (TF_GetCode(status) != TF_OK) return;
  }
}

}  // namespace int8flow::kernels
