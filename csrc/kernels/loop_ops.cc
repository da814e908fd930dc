// The ops of recurrent layers' loop bodies that QCPU had no kernel for.
//
// Keras compiles fit and predict with XLA wherever a non-CPU device is listed,
// and QCPU is one; its while loops are then traced for XLA and never lowered
// to Switch/Merge. The pass turns XLA off (xla_skip.cc), so TF runs each such
// loop as a While op on QCPU whose body and condition are instantiated on QCPU
// alone: every op in them needs a QCPU kernel (TF's placer never sees them).
// These are the ones Keras' SimpleRNN, LSTM, GRU and Bidirectional layers use,
// in inference and training, beside the ones registered elsewhere.
#include "kernels/loop_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/half_as_float.h"
#include "kernels/onednn_util.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

// ---- LogicalAnd, LogicalOr (loop conditions): broadcasting bool ------------------
template <bool kAnd>
class LogicalKernel {
 public:
  explicit LogicalKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    BroadcastBinary<bool, bool>(ctx, TF_BOOL,
                                [](bool x, bool y) { return kAnd ? x && y : x || y; });
  }
};

class LogicalNotKernel {
 public:
  explicit LogicalNotKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    OwnedTensor y = ctx.allocate_output(0, Shape(x.get()), TF_BOOL);
    const bool* in = Data<bool>(x.get());
    bool* out = Data<bool>(y.get());
    for (int64_t i = 0, n = NumElements(Shape(x.get())); i < n; ++i) out[i] = !in[i];
  }
};

// ---- ZerosLike (gradients of the loop's tensor lists) -----------------------------
class ZerosLikeKernel {
 public:
  explicit ZerosLikeKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    OwnedTensor y = ctx.allocate_output(0, Shape(x.get()), TF_TensorType(x.get()));
    std::memset(TF_TensorData(y.get()), 0, TF_TensorByteSize(y.get()));
  }
};

// ---- BiasAddGrad: the sum over every dim but the channels -------------------------
// Channels last (a Dense's or an NHWC conv's gradient, every training step):
// rows of `channels` added into double sums, a vectorized loop per part of
// the rows, the parts' sums then added in order. Doubles keep a conv's
// hundred thousand rows within TF's tree-summed result; element by element a
// [32,26,26,32] gradient took 320 us.
INT8FLOW_VECTOR_CLONES
void AddRows(const float* g, int64_t begin, int64_t end, int64_t channels, double* sum) {
  for (int64_t r = begin; r < end; ++r)
    for (int64_t c = 0; c < channels; ++c) sum[c] += g[r * channels + c];
}

class BiasAddGradKernel {
 public:
  explicit BiasAddGradKernel(TF_OpKernelConstruction* ctx)
      : channels_first_(GetStringAttr(ctx, "data_format") == "NCHW") {}

  void Compute(KernelContext& ctx) {
    OwnedTensor dy = ctx.input(0);
    const auto shape = Shape(dy.get());
    Require(shape.size() >= 2,
            [&] { return "Input tensor must be at least 2D: " + ShapeString(shape); });
    const size_t channel_dim = channels_first_ ? 1 : shape.size() - 1;
    const int64_t channels = shape[channel_dim];
    const auto [outer, inner] = AroundAxisOf(shape, static_cast<int64_t>(channel_dim));
    OwnedTensor db = ctx.allocate_output(0, {channels}, TF_FLOAT);
    float* sum = Data<float>(db.get());
    const float* g = Data<float>(dy.get());
    if (inner == 1) return SumRows(g, outer, channels, sum);
    std::fill(sum, sum + channels, 0.f);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < channels; ++c) {
        const float* row = g + (o * channels + c) * inner;
        float s = 0.f;
        for (int64_t i = 0; i < inner; ++i) s += row[i];
        sum[c] += s;
      }
  }

 private:
  static void SumRows(const float* g, int64_t rows, int64_t channels, float* sum) {
    const int teams = omp_get_max_threads();  // ForRows' parts: at most one per thread
    std::vector<double> parts(static_cast<size_t>(channels) * teams, 0.0);
    ForRows(rows, channels, [&](int64_t first, int64_t last, int part) {
      AddRows(g, first, last, channels, parts.data() + static_cast<size_t>(part) * channels);
    });
    for (int64_t c = 0; c < channels; ++c) {
      double total = 0.0;
      for (int p = 0; p < teams; ++p) total += parts[static_cast<size_t>(p) * channels + c];
      sum[c] = static_cast<float>(total);
    }
  }

  const bool channels_first_;
};

// ---- Split, SplitV (the gates of LSTM and GRU cells) ---------------------------
// Copies `input` into outputs of `sizes` along `axis` (0 <= axis < rank):
// each output a run of contiguous blocks.
void SplitInto(KernelContext& ctx, const OwnedTensor& input, int64_t axis,
               const std::vector<int64_t>& sizes) {
  const auto shape = Shape(input.get());
  const auto [outer, inner] = AroundAxisOf(shape, axis);
  const size_t bytes = TF_DataTypeSize(TF_TensorType(input.get()));
  const char* src = static_cast<const char*>(TF_TensorData(input.get()));
  int64_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto out_shape = shape;
    out_shape[axis] = sizes[i];
    OwnedTensor out =
        ctx.allocate_output(static_cast<int>(i), out_shape, TF_TensorType(input.get()));
    char* dst = static_cast<char*>(TF_TensorData(out.get()));
    const size_t run = bytes * sizes[i] * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + o * run, src + bytes * (o * shape[axis] + offset) * inner, run);
    offset += sizes[i];
  }
}

int64_t ScalarIndex(const TF_Tensor* t, const char* what) {
  const auto values = IntValues(t);
  Require(values.size() == 1, [&] {
    return std::string(what) + " must be a scalar, got shape " + ShapeString(Shape(t));
  });
  return values[0];
}

// ---- ConcatV2 (the gradient of Split: the gates joined again) -------------------------
class ConcatKernel {
 public:
  explicit ConcatKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    const int n = ctx.num_inputs() - 1;
    std::vector<OwnedTensor> inputs;
    for (int i = 0; i < n; ++i) inputs.push_back(ctx.input(i));
    auto shape = Shape(inputs[0].get());
    const int64_t rank = static_cast<int64_t>(shape.size());
    int64_t axis = ScalarIndex(ctx.input(n).get(), "axis");
    Require(axis >= -rank && axis < rank, [&] {
      return "ConcatOp : Expected concatenating dimensions in the range [" + std::to_string(-rank) +
             ", " + std::to_string(rank) + "), but got " + std::to_string(axis);
    });
    if (axis < 0) axis += rank;
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
      auto s = Shape(inputs[i].get());
      Require(s.size() == shape.size(), [&] {
        return "ConcatOp : Ranks of all input tensors should match: shape[0] = " +
               ShapeString(shape) + " vs. shape[" + std::to_string(i) + "] = " + ShapeString(s);
      });
      total += s[axis];
      s[axis] = shape[axis];
      Require(s == shape, [&] {
        return "ConcatOp : Dimension mismatch of input " + std::to_string(i) + ": " +
               ShapeString(Shape(inputs[i].get())) + " against " + ShapeString(shape);
      });
    }
    const auto [outer, inner] = AroundAxisOf(shape, axis);
    shape[axis] = total;
    OwnedTensor out = ctx.allocate_output(0, shape, TF_FLOAT);
    float* dst = Data<float>(out.get());
    struct Run {
      const float* data;
      int64_t length;  // of each of its outer rows
    };
    std::vector<Run> runs;
    for (const OwnedTensor& t : inputs)
      runs.push_back({Data<float>(t.get()), Shape(t.get())[axis] * inner});
    // Output row o is each input's row o in turn, the rows split over the
    // team: on the last axis the runs are short (16384 runs of 64 floats
    // took 1.2 ms on one thread, TF's CPU kernel 0.08).
    const int64_t row = total * inner;
    ForRows(outer, row, [&](int64_t first, int64_t last, int) {
      for (int64_t o = first; o < last; ++o) {
        float* to = dst + o * row;
        for (const Run& r : runs) to = std::copy_n(r.data + o * r.length, r.length, to);
      }
    });
  }
};

class SplitKernel {
 public:
  explicit SplitKernel(TF_OpKernelConstruction* ctx) : num_split_(GetIntAttr(ctx, "num_split")) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(1);
    const auto shape = Shape(input.get());
    const int64_t rank = static_cast<int64_t>(shape.size());
    int64_t axis = ScalarIndex(ctx.input(0).get(), "split_dim");
    Require(axis >= -rank && axis < rank, [&] {
      return "-input rank(-" + std::to_string(rank) + ") <= split_dim < input rank (" +
             std::to_string(rank) + "), but got " + std::to_string(axis);
    });
    if (axis < 0) axis += rank;
    Require(shape[axis] % num_split_ == 0, [&] {
      return "Number of ways to split should evenly divide the split dimension, "
             "but got split_dim " +
             std::to_string(axis) + " (size = " + std::to_string(shape[axis]) + ") and num_split " +
             std::to_string(num_split_);
    });
    SplitInto(ctx, input, axis, std::vector<int64_t>(num_split_, shape[axis] / num_split_));
  }

 private:
  const int64_t num_split_;
};

class SplitVKernel {
 public:
  explicit SplitVKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto shape = Shape(input.get());
    const int64_t rank = static_cast<int64_t>(shape.size());
    int64_t axis = ScalarIndex(ctx.input(2).get(), "split_dim");
    Require(axis >= -rank && axis < rank, [&] {
      return "split_dim " + std::to_string(axis) + " out of range for a " + std::to_string(rank) +
             "-D input";
    });
    if (axis < 0) axis += rank;
    auto sizes = IntValues(ctx.input(1).get());
    int64_t known = 0, unknown = -1;  // one size may be -1: the rest
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] == -1) {
        Require(unknown < 0, "There can only be one -1 in the input.");
        unknown = static_cast<int64_t>(i);
      } else {
        Require(sizes[i] >= 0, [&] {
          return "Split size at index " + std::to_string(i) + " must be >= 0, got " +
                 std::to_string(sizes[i]);
        });
        known += sizes[i];
      }
    }
    if (unknown >= 0) sizes[unknown] = shape[axis] - known;
    Require((unknown >= 0 ? sizes[unknown] >= 0 : known == shape[axis]), [&] {
      return "Determined shape must either match input shape along split_dim exactly if fully "
             "specified, "
             "or be less than the size of the input along split_dim if not fully specified.  "
             "Got: " +
             std::to_string(known);
    });
    SplitInto(ctx, input, axis, sizes);
  }
};

// ---- Tile (a masked RNN's mask, bool, widened to the state's width) -------------------
// `count` copies of the `bytes`-byte element at `value`, from `dst` on.
void FillWith(char* dst, const char* value, int64_t count, size_t bytes) {
  const auto fill = [&](auto element) {
    std::memcpy(&element, value, sizeof(element));
    std::fill_n(reinterpret_cast<decltype(element)*>(dst), count, element);
  };
  switch (bytes) {
    case 1: return fill(uint8_t{});
    case 2: return fill(uint16_t{});
    case 4: return fill(uint32_t{});
    case 8: return fill(uint64_t{});
    default:
      for (int64_t i = 0; i < count; ++i) std::memcpy(dst + i * bytes, value, bytes);
  }
}

class TileKernel {
 public:
  explicit TileKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor input = ctx.input(0);
    const auto shape = Shape(input.get());
    const auto multiples = IntValues(ctx.input(1).get());
    const size_t rank = shape.size();
    Require(multiples.size() == rank, [&] {
      return "Expected multiples argument to be a vector of length " + std::to_string(rank) +
             " but got length " + std::to_string(multiples.size());
    });
    // The output, row-major, is a walk over [m0, s0, m1, s1, ...] that reads the
    // input at stride 0 along each multiple, the last dim's run copied whole
    // (element by element, a [32, 8, 64, 64] float tile took 2.4x TF's time)
    // and repeated m_last times: one fill when the run is one element (a
    // mean's gradient, MSE's in `fit`, tiles [..., 1] to [..., k]: 3 ms for
    // 2^21 floats as a copy per element).
    const auto strides = BroadcastStrides(shape, shape);
    std::vector<int64_t> out_shape, walk, from;
    for (size_t d = 0; d < rank; ++d) {
      Require(multiples[d] >= 0, [&] {
        return "Expected multiples[" + std::to_string(d) + "] >= 0, but got " +
               std::to_string(multiples[d]);
      });
      out_shape.push_back(shape[d] * multiples[d]);
      walk.insert(walk.end(), {multiples[d], shape[d]});
      from.insert(from.end(), {0, strides[d]});
    }
    const TF_DataType dtype = TF_TensorType(input.get());
    OwnedTensor out = ctx.allocate_output(0, out_shape, dtype);
    const size_t bytes = TF_DataTypeSize(dtype);
    const size_t run = (rank == 0 ? 1 : static_cast<size_t>(shape.back())) * bytes;
    int64_t repeats = 1;
    if (rank > 0) {
      walk.pop_back(), from.pop_back();
      repeats = walk.back();
      walk.pop_back(), from.pop_back();
    }
    const char* src = static_cast<const char*>(TF_TensorData(input.get()));
    char* dst = static_cast<char*>(TF_TensorData(out.get()));
    ForEachIndex(walk, {from}, [&](const std::vector<int64_t>& at) {
      const char* from_run = src + at[0] * bytes;
      if (run == bytes) {
        FillWith(dst, from_run, repeats, bytes);
      } else {
        for (int64_t r = 0; r < repeats; ++r) std::memcpy(dst + r * run, from_run, run);
      }
      dst += run * repeats;
    });
  }
};

// ---- Cast (in a cond's branches: an optimizer's sparse update of an Embedding) ----
// The types a loop or branch body casts between (bf16 and float16: an RNN's
// cell under a mixed-precision policy); static_cast, as TF's CPU kernel
// (Eigen) converts, x != 0 to bool, and to the half types to nearest even.
constexpr TF_DataType kCastTypes[] = {TF_FLOAT, TF_DOUBLE, TF_INT32,    TF_INT64, TF_BOOL,
                                      TF_UINT8, TF_INT8,   TF_BFLOAT16, TF_HALF};

// GCC vectorizes no load or store of bool: a bool is read and written as the
// byte it is (0 or 1 in TF's tensors).
template <class T>
using AsStored = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;

template <class From, class To>
INT8FLOW_VECTOR_CLONES void CastRange(const AsStored<From>* in, AsStored<To>* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<AsStored<To>>(static_cast<To>(static_cast<From>(in[i])));
}

// out = x cast to To, over threads in vector loops: a scalar loop on one
// thread made a mask's bool-to-float Cast 5x TF's time, on 2^20 elements.
template <class To>
void CastFrom(const TF_Tensor* x, To* out, int64_t n) {
  const auto each = [&](const auto* in) {
    using From = std::remove_cv_t<std::remove_pointer_t<decltype(in)>>;
    const auto* stored_in = reinterpret_cast<const AsStored<From>*>(in);
    auto* stored_out = reinterpret_cast<AsStored<To>*>(out);
    ForChunks(n, [&](int64_t begin, int64_t end, int) {
      CastRange<From, To>(stored_in + begin, stored_out + begin, end - begin);
    });
  };
  switch (TF_TensorType(x)) {
    case TF_FLOAT: return each(Data<float>(x));
    case TF_DOUBLE: return each(Data<double>(x));
    case TF_INT32: return each(Data<int32_t>(x));
    case TF_INT64: return each(Data<int64_t>(x));
    case TF_BOOL: return each(Data<bool>(x));
    case TF_UINT8: return each(Data<uint8_t>(x));
    case TF_INT8: return each(Data<int8_t>(x));
    case TF_BFLOAT16: return each(Data<Bf16>(x));
    case TF_HALF: return each(Data<_Float16>(x));
    default: throw KernelError("Cast: unsupported source type");
  }
}

// Casts to or from bf16/float16 are for loop bodies only (half_as_float.h).
// An int32 side is in host memory, where TF keeps a device's int32 tensors:
// in device memory, a Cast to int32 that a function returned was copied to
// the host after (2^20 elements: 0.09 ms).
KernelSpec CastSpec(TF_DataType from, TF_DataType to) {
  KernelSpec spec{"Cast", {{"SrcT", from}, {"DstT", to}}};
  if (from == TF_INT32) spec.host_memory.push_back("x");
  if (to == TF_INT32) spec.host_memory.push_back("y");
  return IsHalfType(from) || IsHalfType(to) ? LoopOnly(spec) : spec;
}

class CastKernel {
 public:
  explicit CastKernel(TF_OpKernelConstruction* ctx) : to_(GetTypeAttr(ctx, "DstT")) {
    if (IsHalfType(to_))
      Require(!GetBoolAttr(ctx, "Truncate"),
              "Cast with Truncate=true to bfloat16 or float16 has no QCPU kernel");
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0);
    const auto shape = Shape(x.get());
    OwnedTensor y = ctx.allocate_output(0, shape, to_);
    const int64_t n = NumElements(shape);
    switch (to_) {
      case TF_FLOAT: return CastFrom(x.get(), Data<float>(y.get()), n);
      case TF_DOUBLE: return CastFrom(x.get(), Data<double>(y.get()), n);
      case TF_INT32: return CastFrom(x.get(), Data<int32_t>(y.get()), n);
      case TF_INT64: return CastFrom(x.get(), Data<int64_t>(y.get()), n);
      case TF_BOOL: return CastFrom(x.get(), Data<bool>(y.get()), n);
      case TF_UINT8: return CastFrom(x.get(), Data<uint8_t>(y.get()), n);
      case TF_INT8: return CastFrom(x.get(), Data<int8_t>(y.get()), n);
      case TF_BFLOAT16: return CastFrom(x.get(), Data<Bf16>(y.get()), n);
      case TF_HALF: return CastFrom(x.get(), Data<_Float16>(y.get()), n);
      default: throw KernelError("Cast: unsupported destination type");
    }
  }

 private:
  const TF_DataType to_;
};

}  // namespace

void RegisterLoopKernels(const char* device_type, TF_Status* status) {
  const auto ok = [&] { return TF_GetCode(status) == TF_OK; };
  // In host memory, where a loop's conditions (int32 Less) put their bools
  // and where LoopCond and While read the result: a device-memory kernel cost
  // three host-device copies per step, each a wait on TF's event manager.
  if (ok())
    RegisterKernel<LogicalKernel<true>>({"LogicalAnd", {}, {"x", "y", "z"}}, device_type, status);
  if (ok())
    RegisterKernel<LogicalKernel<false>>({"LogicalOr", {}, {"x", "y", "z"}}, device_type, status);
  if (ok()) RegisterKernel<LogicalNotKernel>({"LogicalNot", {}, {"x", "y"}}, device_type, status);
  if (ok()) RegisterWithHalfTypes<ZerosLikeKernel>({"ZerosLike"}, device_type, status);
  if (ok())
    RegisterKernel<ZerosLikeKernel>({"ZerosLike", {{"T", TF_INT32}}, {"x", "y"}}, device_type,
                                    status);
  if (ok()) RegisterWithHalfTypes<BiasAddGradKernel>({"BiasAddGrad"}, device_type, status);
  // TF keeps a device's int32 tensors in host memory: the split dims and sizes.
  for (TF_DataType index : {TF_INT32, TF_INT64})
    if (ok())
      RegisterWithHalfTypes<ConcatKernel>(
          {"ConcatV2", {{"T", TF_FLOAT}, {"Tidx", index}}, {"axis"}}, device_type, status);
  if (ok())
    RegisterWithHalfTypes<SplitKernel>({"Split", {{"T", TF_FLOAT}}, {"split_dim"}}, device_type,
                                       status);
  // TF registers no Cast on devices: top-level ones go to TF's CPU, not those in a body.
  for (TF_DataType from : kCastTypes)
    for (TF_DataType to : kCastTypes)
      if (ok()) RegisterKernel<CastKernel>(CastSpec(from, to), device_type, status);
  // A masked RNN tiles its bool mask; RepeatVector and attention masks tile floats.
  for (TF_DataType type : {TF_BOOL, TF_FLOAT})
    for (TF_DataType index : {TF_INT32, TF_INT64})
      if (ok())
        RegisterKernel<TileKernel>({"Tile", {{"T", type}, {"Tmultiples", index}}, {"multiples"}},
                                   device_type, status);
  for (TF_DataType index : {TF_INT32, TF_INT64})
    if (ok())
      RegisterWithHalfTypes<SplitVKernel>(
          {"SplitV", {{"T", TF_FLOAT}, {"Tlen", index}}, {"size_splits", "split_dim"}}, device_type,
          status);
}

}  // namespace int8flow::kernels
