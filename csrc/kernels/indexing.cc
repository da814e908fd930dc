// The indexing ops a Keras model needs on device: GatherV2 (embeddings, float or int8),
// SelectV2, StridedSlice and its gradient. They move elements, so they are copy loops
// (contiguous runs with memcpy), as TF's own CPU kernels are. And an
// Identity that hands a result to TF's CPU without moving it.
#include "kernels/indexing.h"

#include <cstring>

#include "kernels/half_as_float.h"
#include "kernels/onednn_util.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"
#include "ops/op_names.h"

namespace int8flow::kernels {
namespace {

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
    Require(axis >= -rank && axis < rank, [&] {
      return "Expected axis in the range [" + std::to_string(-rank) + ", " + std::to_string(rank) +
             "), but got " + std::to_string(axis);
    });
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
      Require(index[i] >= 0 && index[i] < limit, [&] {  // the message only when it fails
        return "indices[" + std::to_string(i) + "] = " + std::to_string(index[i]) +
               " is not in [0, " + std::to_string(limit) + ")";
      });
    const TF_DataType type = TF_TensorType(params.get());
    OwnedTensor result = ctx.allocate_output(0, out, type);
    const size_t row = inner * TF_DataTypeSize(type);
    const char* src = static_cast<const char*>(TF_TensorData(params.get()));
    char* dst = static_cast<char*>(TF_TensorData(result.get()));
    // An embedding lookup: rows scattered over a table larger than the
    // caches, each a memory round trip. Split over the team when large, with
    // the rows a few ahead prefetched.
    const int64_t rows = outer * static_cast<int64_t>(index.size());
    const auto source = [&](int64_t r) {
      const int64_t o = r / static_cast<int64_t>(index.size());
      return src + (o * limit + index[r % index.size()]) * row;
    };
    const int teams = rows * inner <= kParallelElements ? 1 : omp_get_max_threads();
#pragma omp parallel for num_threads(teams) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      constexpr int64_t kAhead = 8;
      if (r + kAhead < rows) __builtin_prefetch(source(r + kAhead));
      std::memcpy(dst + r * row, source(r), row);
    }
  }
};

// ---- SelectV2 -----------------------------------------------------------------
// The flat loop for operands that each step (kC, kT, kE) or repeat one
// element, a loop per case: a where over 2^20 floats took 2.2 ms, TF 0.15,
// now 0.27.
template <class T, bool kC, bool kT, bool kE>
void SelectFlat(const bool* __restrict c, const T* __restrict t, const T* __restrict e,
                T* __restrict dst, int64_t begin, int64_t end) {
  static_assert(sizeof(T) == sizeof(uint32_t), "float and int32 only");
  for (int64_t j = begin; j < end; ++j) {
    // Picked by bit mask, not by branch: GCC branches on `c ? a : b`, and a
    // random mask (dropout's, a where over signs) mispredicts half the time.
    uint32_t a, b;
    std::memcpy(&a, t + (kT ? j : 0), sizeof a);
    std::memcpy(&b, e + (kE ? j : 0), sizeof b);
    const uint32_t take_a = 0u - static_cast<uint32_t>(c[kC ? j : 0]);
    const uint32_t bits = (a & take_a) | (b & ~take_a);
    std::memcpy(dst + j, &bits, sizeof bits);
  }
}

template <class T>
using SelectFlatFn = void (*)(const bool*, const T*, const T*, T*, int64_t, int64_t);

template <class T>
SelectFlatFn<T> SelectFlatFor(bool c, bool t, bool e) {
  static const SelectFlatFn<T> loops[8] = {
      &SelectFlat<T, false, false, false>, &SelectFlat<T, false, false, true>,
      &SelectFlat<T, false, true, false>,  &SelectFlat<T, false, true, true>,
      &SelectFlat<T, true, false, false>,  &SelectFlat<T, true, false, true>,
      &SelectFlat<T, true, true, false>,   &SelectFlat<T, true, true, true>};
  return loops[c * 4 + t * 2 + e];
}

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
        Require(s[i] == o || s[i] == 1 || o == 1, [&] {
          return "condition " + ShapeString(shapes[0]) + ", then " + ShapeString(shapes[1]) +
                 " and else " + ShapeString(shapes[2]) + " are not broadcastable";
        });
        if (o == 1) o = s[i];
      }
    OwnedTensor result = ctx.allocate_output(0, out, TF_TensorType(then.get()));
    const bool* c = Data<bool>(cond.get());
    const T* t = Data<T>(then.get());
    const T* e = Data<T>(otherwise.get());
    T* dst = Data<T>(result.get());
    // Operands of the output's size or of one element (dropout's mask and a
    // zero, each training step) take a flat loop; others walk every index.
    const int64_t n = NumElements(out);
    int64_t step[3];
    bool flat = true;
    for (int k = 0; k < 3; ++k) {
      const int64_t count = NumElements(shapes[k]);
      step[k] = count == n ? 1 : 0;
      flat = flat && (count == n || count == 1);
    }
    if (flat) {
      const SelectFlatFn<T> loop = SelectFlatFor<T>(step[0], step[1], step[2]);
      return ForChunks(n, [&](int64_t begin, int64_t end, int) { loop(c, t, e, dst, begin, end); });
    }
    int64_t i = 0;
    ForEachIndex(
        out,
        {BroadcastStrides(shapes[0], out), BroadcastStrides(shapes[1], out),
         BroadcastStrides(shapes[2], out)},
        [&](const std::vector<int64_t>& at) { dst[i++] = c[at[0]] ? t[at[1]] : e[at[2]]; });
  }
};

// ---- StridedSlice, StridedSliceGrad ----------------------------------------------
// The masks of a StridedSlice node.
struct SliceMasks {
  int64_t begin = 0, end = 0, ellipsis = 0, new_axis = 0, shrink_axis = 0;

  explicit SliceMasks(TF_OpKernelConstruction* ctx) {
    for (auto [name, mask] : {std::pair{"begin_mask", &begin},
                              {"end_mask", &end},
                              {"ellipsis_mask", &ellipsis},
                              {"new_axis_mask", &new_axis},
                              {"shrink_axis_mask", &shrink_axis}}) {
      OwnedStatus status;
      TF_OpKernelConstruction_GetAttrInt64(ctx, name, mask, status.get());
      Check(status, name);
    }
  }
};

// Which elements of an input of shape `in` a strided slice takes: dense
// per-dim begin, count and step, and the output's shape.
struct SliceGeometry {
  std::vector<int64_t> first, count, step, out;

  // Visits each run of taken elements that lie in a row in both tensors:
  // (its index in the output, its offset in the input, its length). A run
  // is the last dim's count when that dim's step is 1, else one element: a
  // GRU step's three [32, 128] slices of [32, 384] took 11 us each element
  // by element, against stock TF's whole step of 140.
  template <class Visit>
  void ForEachRun(const std::vector<int64_t>& in, Visit visit) const {
    const int64_t rank = static_cast<int64_t>(in.size());
    std::vector<int64_t> strides(rank, 1);
    for (int64_t d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * in[d + 1];
    int64_t origin = 0;
    for (int64_t d = 0; d < rank; ++d) origin += first[d] * strides[d], strides[d] *= step[d];
    std::vector<int64_t> rows = count;
    int64_t run = 1;
    if (rank > 0 && step.back() == 1) run = count.back(), rows.back() = 1;
    int64_t i = 0;
    ForEachIndex(rows, {strides}, [&](const std::vector<int64_t>& at) {
      visit(i, origin + at[0], run);
      i += run;
    });
  }
};

SliceGeometry StridedSliceOf(const std::vector<int64_t>& in, const std::vector<int64_t>& begin,
                             const std::vector<int64_t>& end, const std::vector<int64_t>& stride,
                             const SliceMasks& masks) {
  Require(begin.size() == end.size() && begin.size() == stride.size(),
          "Expected begin, end, and strides to be 1D equal size tensors");
  const int64_t rank = static_cast<int64_t>(in.size());
  SliceGeometry g{std::vector<int64_t>(rank, 0), in, std::vector<int64_t>(rank, 1), {}};
  int64_t dim = 0;
  const auto bit = [](int64_t mask, size_t i) { return (mask >> i) & 1; };
  for (size_t i = 0; i < begin.size(); ++i) {
    if (bit(masks.ellipsis, i)) {
      int64_t after = 0;  // real dims the spec names after the ellipsis
      for (size_t j = i + 1; j < begin.size(); ++j) after += !bit(masks.new_axis, j);
      for (const int64_t stop = rank - after; dim < stop; ++dim) g.out.push_back(in[dim]);
      continue;
    }
    if (bit(masks.new_axis, i)) {
      g.out.push_back(1);
      continue;
    }
    Require(dim < rank, [&] {
      return "Index out of range using input dim " + std::to_string(dim) + "; input has only " +
             std::to_string(rank) + " dims";
    });
    const int64_t size = in[dim], s = stride[i];
    Require(s != 0, [&] { return "strides[" + std::to_string(i) + "] must be non-zero"; });
    if (bit(masks.shrink_axis, i)) {
      const int64_t b = begin[i] < 0 ? begin[i] + size : begin[i];
      Require(b >= 0 && b < size, [&] {
        return "slice index " + std::to_string(begin[i]) + " of dimension " + std::to_string(dim) +
               " out of bounds.";
      });
      g.first[dim] = b, g.count[dim] = 1, g.step[dim] = 1;
    } else {
      const int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? size : size - 1;
      const auto clamp = [&](int64_t v) {
        return std::min(std::max(v < 0 ? v + size : v, lo), hi);
      };
      const int64_t b = bit(masks.begin, i) ? (s > 0 ? lo : hi) : clamp(begin[i]);
      const int64_t e = bit(masks.end, i) ? (s > 0 ? hi : lo) : clamp(end[i]);
      const int64_t n =
          s > 0 ? (e > b ? (e - b + s - 1) / s : 0) : (b > e ? (b - e - s - 1) / -s : 0);
      g.first[dim] = b, g.count[dim] = n, g.step[dim] = s;
      g.out.push_back(n);
    }
    ++dim;
  }
  for (; dim < rank; ++dim) g.out.push_back(in[dim]);
  return g;
}

class StridedSliceKernel {
 public:
  explicit StridedSliceKernel(TF_OpKernelConstruction* ctx) : masks_(ctx) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto in = Shape(input.get());
    const SliceGeometry g =
        StridedSliceOf(in, IntValues(ctx.input(1).get()), IntValues(ctx.input(2).get()),
                       IntValues(ctx.input(3).get()), masks_);
    OwnedTensor result = ctx.allocate_output(0, g.out, TF_TensorType(input.get()));
    const size_t bytes = TF_DataTypeSize(TF_TensorType(input.get()));
    const char* src = static_cast<const char*>(TF_TensorData(input.get()));
    char* dst = static_cast<char*>(TF_TensorData(result.get()));
    g.ForEachRun(in, [&](int64_t i, int64_t at, int64_t run) {
      std::memcpy(dst + bytes * i, src + bytes * at, bytes * run);
    });
  }

 private:
  const SliceMasks masks_;
};

// The gradient of a StridedSlice: zeros of the input's shape (input 0), with
// dy (input 4) at the elements the slice took. In recurrent layers' training
// loops.
class StridedSliceGradKernel {
 public:
  explicit StridedSliceGradKernel(TF_OpKernelConstruction* ctx) : masks_(ctx) {}

  void Compute(KernelContext& ctx) {
    const auto in = IntValues(ctx.input(0).get());
    for (int64_t d : in)
      Require(d >= 0, [&] {
        return "StridedSliceGrad: the input shape " + ShapeString(in) + " is negative";
      });
    const SliceGeometry g =
        StridedSliceOf(in, IntValues(ctx.input(1).get()), IntValues(ctx.input(2).get()),
                       IntValues(ctx.input(3).get()), masks_);
    OwnedTensor dy = ctx.input(4);
    Require(NumElements(Shape(dy.get())) == NumElements(g.out), [&] {
      return "shape of dy was " + ShapeString(Shape(dy.get())) + " instead of " +
             ShapeString(g.out);
    });
    OwnedTensor dx = ctx.allocate_output(0, in, TF_FLOAT);
    float* out = Data<float>(dx.get());
    std::fill(out, out + NumElements(in), 0.f);
    const float* grad = Data<float>(dy.get());
    g.ForEachRun(in, [&](int64_t i, int64_t at, int64_t run) {
      std::copy(grad + i, grad + i + run, out + at);
    });
  }

 private:
  const SliceMasks masks_;
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
  // int8 tables: embeddings stored as int8 (graph/int8_embeddings.cc), gathered as they are.
  for (TF_DataType params : {TF_FLOAT, TF_INT8})
    for (TF_DataType index : {TF_INT32, TF_INT64})
      for (TF_DataType axis : {TF_INT32, TF_INT64})
        if (ok())
          RegisterKernel<GatherKernel>({"GatherV2",
                                        {{"Tparams", params}, {"Tindices", index}, {"Taxis", axis}},
                                        {"indices", "axis"}},
                                       device_type, status);
  if (ok()) RegisterWithHalfTypes<SelectKernel<float>>({"SelectV2"}, device_type, status);
  // TF keeps int32 tensors of a device in host memory (index math).
  if (ok())
    RegisterKernel<SelectKernel<int32_t>>(
        {"SelectV2", {{"T", TF_INT32}}, {"condition", "t", "e", "output"}}, device_type, status);
  for (TF_DataType index : {TF_INT32, TF_INT64})
    if (ok())
      RegisterWithHalfTypes<StridedSliceKernel>(
          {"StridedSlice", {{"T", TF_FLOAT}, {"Index", index}}, {"begin", "end", "strides"}},
          device_type, status);
  for (TF_DataType index : {TF_INT32, TF_INT64})
    if (ok())
      RegisterWithHalfTypes<StridedSliceGradKernel>({"StridedSliceGrad",
                                                     {{"T", TF_FLOAT}, {"Index", index}},
                                                     {"shape", "begin", "end", "strides"}},
                                                    device_type, status);
  // What QCPU nodes hand back to a caller: floats, an ArgMax's int64, masks
  // (int32 tensors are in host memory already).
  for (TF_DataType type :
       {TF_FLOAT, TF_BOOL, TF_INT64, TF_DOUBLE, TF_HALF, TF_BFLOAT16, TF_INT8, TF_UINT8})
    if (ok())
      RegisterKernel<HostOutputKernel>(
          {"Identity", {{"T", type}}, {"output"}, ops::kHostOutputLabel}, device_type, status);
}

}  // namespace int8flow::kernels
