// The indexing ops a Keras model needs on device: GatherV2 (embeddings, float or int8),
// SelectV2 and StridedSlice. They move elements, so they are copy loops
// (contiguous runs with memcpy), as TF's own CPU kernels are. And an
// Identity that hands a result to TF's CPU without moving it.
#include "kernels/indexing.h"

#include <cstring>

#include "kernels/onednn_util.h"
#include "kernels/op_definitions.h"

namespace int8flow::kernels {
namespace {

// Calls `visit(offsets)` for every index of `shape`, in row-major order, with
// each operand's element offset, given its per-dim strides (0: broadcast).
template <class Visit>
void ForEachIndex(const std::vector<int64_t>& shape,
                  const std::vector<std::vector<int64_t>>& strides, Visit visit) {
  if (NumElements(shape) == 0) return;
  const size_t rank = shape.size(), operands = strides.size();
  std::vector<int64_t> index(rank, 0), offsets(operands, 0);
  while (true) {
    visit(offsets);
    int d = static_cast<int>(rank) - 1;
    for (; d >= 0; --d) {
      for (size_t o = 0; o < operands; ++o) offsets[o] += strides[o][d];
      if (++index[d] < shape[d]) break;
      for (size_t o = 0; o < operands; ++o) offsets[o] -= strides[o][d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

// Row-major strides of `shape` read as `out` (right-aligned; size-1 dims
// and missing leading dims broadcast with stride 0).
std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& shape,
                                      const std::vector<int64_t>& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = shape.size() - 1 - i, o = out.size() - 1 - i;
    strides[o] = shape[d] == 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

// ---- GatherV2 ---------------------------------------------------------------
class GatherKernel {
 public:
  explicit GatherKernel(TF_OpKernelConstruction* ctx) {
    OwnedStatus status;
    int64_t batch_dims = 0;
    TF_OpKernelConstruction_GetAttrInt64(ctx, "batch_dims", &batch_dims, status.get());
    Check(status, "batch_dims");
    Require(batch_dims == 0, "QCPU's GatherV2 supports batch_dims = 0 only");
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor params = ctx.input(0), indices = ctx.input(1), axis_tensor = ctx.input(2);
    const auto ps = Shape(params.get()), is = Shape(indices.get());
    const std::vector<int64_t> axis_values = IntValues(axis_tensor.get());
    Require(axis_values.size() == 1, "axis must be a scalar");
    const int64_t rank = static_cast<int64_t>(ps.size());
    int64_t axis = axis_values[0];
    Require(axis >= -rank && axis < rank, "Expected axis in the range [" + std::to_string(-rank) +
                                              ", " + std::to_string(rank) + "), but got " +
                                              std::to_string(axis));
    if (axis < 0) axis += rank;
    std::vector<int64_t> out(ps.begin(), ps.begin() + axis);
    out.insert(out.end(), is.begin(), is.end());
    out.insert(out.end(), ps.begin() + axis + 1, ps.end());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= ps[d];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= ps[d];
    const int64_t limit = ps[axis];
    const std::vector<int64_t> index = IntValues(indices.get());
    for (size_t i = 0; i < index.size(); ++i)
      Require(index[i] >= 0 && index[i] < limit,
              "indices[" + std::to_string(i) + "] = " + std::to_string(index[i]) + " is not in [0, " +
                  std::to_string(limit) + ")");
    const TF_DataType type = TF_TensorType(params.get());
    OwnedTensor result = ctx.allocate_output(0, out, type);
    const size_t row = inner * TF_DataTypeSize(type);
    const char* src = static_cast<const char*>(TF_TensorData(params.get()));
    char* dst = static_cast<char*>(TF_TensorData(result.get()));
    for (int64_t o = 0; o < outer; ++o)
      for (size_t i = 0; i < index.size(); ++i)
        std::memcpy(dst + (o * index.size() + i) * row, src + (o * limit + index[i]) * row, row);
  }
};

// ---- SelectV2 -----------------------------------------------------------------
template <class T>
class SelectKernel {
 public:
  explicit SelectKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor cond = ctx.input(0), then = ctx.input(1), otherwise = ctx.input(2);
    const std::vector<std::vector<int64_t>> shapes = {Shape(cond.get()), Shape(then.get()),
                                                      Shape(otherwise.get())};
    size_t rank = 0;
    for (const auto& s : shapes) rank = std::max(rank, s.size());
    std::vector<int64_t> out(rank, 1);
    for (const auto& s : shapes)
      for (size_t i = 0; i < s.size(); ++i) {
        int64_t& o = out[rank - s.size() + i];
        Require(s[i] == o || s[i] == 1 || o == 1,
                "condition " + ShapeString(shapes[0]) + ", then " + ShapeString(shapes[1]) +
                    " and else " + ShapeString(shapes[2]) + " are not broadcastable");
        if (o == 1) o = s[i];
      }
    OwnedTensor result = ctx.allocate_output(0, out, TF_TensorType(then.get()));
    const bool* c = Data<bool>(cond.get());
    const T* t = Data<T>(then.get());
    const T* e = Data<T>(otherwise.get());
    T* dst = Data<T>(result.get());
    int64_t i = 0;
    ForEachIndex(out,
                 {BroadcastStrides(shapes[0], out), BroadcastStrides(shapes[1], out),
                  BroadcastStrides(shapes[2], out)},
                 [&](const std::vector<int64_t>& at) { dst[i++] = c[at[0]] ? t[at[1]] : e[at[2]]; });
  }
};

// ---- StridedSlice ------------------------------------------------------------
class StridedSliceKernel {
 public:
  explicit StridedSliceKernel(TF_OpKernelConstruction* ctx) {
    for (auto [name, mask] : {std::pair{"begin_mask", &begin_mask_}, {"end_mask", &end_mask_},
                              {"ellipsis_mask", &ellipsis_mask_}, {"new_axis_mask", &new_axis_mask_},
                              {"shrink_axis_mask", &shrink_axis_mask_}}) {
      OwnedStatus status;
      TF_OpKernelConstruction_GetAttrInt64(ctx, name, mask, status.get());
      Check(status, name);
    }
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto in = Shape(input.get());
    const auto begin = IntValues(ctx.input(1).get()), end = IntValues(ctx.input(2).get()),
               stride = IntValues(ctx.input(3).get());
    Require(begin.size() == end.size() && begin.size() == stride.size(),
            "Expected begin, end, and strides to be 1D equal size tensors");
    // Dense per-dim begin, size and step of the input; the output's shape.
    const int64_t rank = static_cast<int64_t>(in.size());
    std::vector<int64_t> first(rank, 0), count(rank), step(rank, 1), out;
    for (int64_t d = 0; d < rank; ++d) count[d] = in[d];
    int64_t dim = 0;
    const auto bit = [](int64_t mask, size_t i) { return (mask >> i) & 1; };
    for (size_t i = 0; i < begin.size(); ++i) {
      if (bit(ellipsis_mask_, i)) {
        int64_t after = 0;  // real dims the spec names after the ellipsis
        for (size_t j = i + 1; j < begin.size(); ++j) after += !bit(new_axis_mask_, j);
        for (const int64_t stop = rank - after; dim < stop; ++dim) out.push_back(in[dim]);
        continue;
      }
      if (bit(new_axis_mask_, i)) {
        out.push_back(1);
        continue;
      }
      Require(dim < rank, "Index out of range using input dim " + std::to_string(dim) +
                              "; input has only " + std::to_string(rank) + " dims");
      const int64_t size = in[dim], s = stride[i];
      Require(s != 0, "strides[" + std::to_string(i) + "] must be non-zero");
      if (bit(shrink_axis_mask_, i)) {
        const int64_t b = begin[i] < 0 ? begin[i] + size : begin[i];
        Require(b >= 0 && b < size, "slice index " + std::to_string(begin[i]) + " of dimension " +
                                        std::to_string(dim) + " out of bounds.");
        first[dim] = b, count[dim] = 1, step[dim] = 1;
      } else {
        const int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? size : size - 1;
        const auto clamp = [&](int64_t v) { return std::min(std::max(v < 0 ? v + size : v, lo), hi); };
        const int64_t b = bit(begin_mask_, i) ? (s > 0 ? lo : hi) : clamp(begin[i]);
        const int64_t e = bit(end_mask_, i) ? (s > 0 ? hi : lo) : clamp(end[i]);
        const int64_t n = s > 0 ? (e > b ? (e - b + s - 1) / s : 0) : (b > e ? (b - e - s - 1) / -s : 0);
        first[dim] = b, count[dim] = n, step[dim] = s;
        out.push_back(n);
      }
      ++dim;
    }
    for (; dim < rank; ++dim) out.push_back(in[dim]);
    OwnedTensor result = ctx.allocate_output(0, out, TF_TensorType(input.get()));
    const size_t bytes = TF_DataTypeSize(TF_TensorType(input.get()));
    const char* src = static_cast<const char*>(TF_TensorData(input.get()));
    char* dst = static_cast<char*>(TF_TensorData(result.get()));
    std::vector<int64_t> strides(rank, 1);
    for (int64_t d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * in[d + 1];
    int64_t origin = 0;
    for (int64_t d = 0; d < rank; ++d) origin += first[d] * strides[d], strides[d] *= step[d];
    int64_t i = 0;
    ForEachIndex(count, {strides}, [&](const std::vector<int64_t>& at) {
      std::memcpy(dst + bytes * i++, src + bytes * (origin + at[0]), bytes);
    });
  }

 private:
  int64_t begin_mask_ = 0, end_mask_ = 0, ellipsis_mask_ = 0, new_axis_mask_ = 0,
          shrink_axis_mask_ = 0;
};

// Identity with its output in host memory, which QCPU's memory already is:
// TF's CPU reads the result in place, where a device-to-host copy and its wait
// on TF's event manager cost 0.12 ms a call (the pass's HandResultsToHost).
class HostOutputKernel {
 public:
  explicit HostOutputKernel(TF_OpKernelConstruction*) {}
  void Compute(KernelContext& ctx) { ctx.set_output(0, ctx.input(0).get()); }
};

}  // namespace

void RegisterIndexingKernels(const char* device_type, TF_Status* status) {
  const auto ok = [&] { return TF_GetCode(status) == TF_OK; };
  // int8 tables: embeddings stored as int8 (int8_rewrite.cc), gathered as they are.
  for (TF_DataType params : {TF_FLOAT, TF_INT8})
    for (TF_DataType index : {TF_INT32, TF_INT64})
      for (TF_DataType axis : {TF_INT32, TF_INT64})
        if (ok())
          RegisterKernel<GatherKernel>(
              {"GatherV2", {{"Tparams", params}, {"Tindices", index}, {"Taxis", axis}},
               {"indices", "axis"}},
              device_type, status);
  if (ok()) RegisterKernel<SelectKernel<float>>({"SelectV2"}, device_type, status);
  // TF keeps int32 tensors of a device in host memory (index math).
  if (ok())
    RegisterKernel<SelectKernel<int32_t>>(
        {"SelectV2", {{"T", TF_INT32}}, {"condition", "t", "e", "output"}}, device_type, status);
  for (TF_DataType index : {TF_INT32, TF_INT64})
    if (ok())
      RegisterKernel<StridedSliceKernel>(
          {"StridedSlice", {{"T", TF_FLOAT}, {"Index", index}}, {"begin", "end", "strides"}},
          device_type, status);
  if (ok())
    RegisterKernel<HostOutputKernel>({"Identity", {{"T", TF_FLOAT}}, {"output"}, kHostOutputLabel},
                                     device_type, status);
}

}  // namespace int8flow::kernels
