#include "kernels/half_as_float.h"

#include <cstring>

#include "kernels/onednn_util.h"  // NumElements
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(f));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

OwnedTensor AllocateFloatTemp(const KernelContext& ctx, const std::vector<int64_t>& dims) {
  OwnedStatus status;
  TF_AllocatorAttributes attrs{TF_ALLOCATOR_ATTRIBUTES_STRUCT_SIZE, 0};
  TF_Tensor* t = TF_AllocateTemp(ctx.raw(), TF_FLOAT, dims.data(), static_cast<int>(dims.size()),
                                 &attrs, status.get());
  if (!status.ok())
    throw KernelError("allocating scratch memory: " + status.message(), TF_RESOURCE_EXHAUSTED);
  return OwnedTensor(t);
}

// Output `i` of the node, in its half type, rounded from float32 `values`.
void WriteRounded(const KernelContext& ctx, TF_DataType half, int i, const TF_Tensor* values) {
  const std::vector<int64_t> dims = Shape(values);
  OwnedTensor out = ctx.allocate_output(i, dims, half);
  RoundFromFloat(half, Data<float>(values), TF_TensorData(out.get()), NumElements(dims));
}

}  // namespace

Bf16::Bf16(float f) : bits(FloatToBf16(f)) {}
Bf16::operator float() const { return Bf16ToFloat(bits); }

void WidenToFloat(TF_DataType half, const void* in, float* out, int64_t n) {
  ForChunks(n, [&](int64_t begin, int64_t end, int) {
    if (half == TF_BFLOAT16) {
      const auto* h = static_cast<const uint16_t*>(in);
      for (int64_t i = begin; i < end; ++i) out[i] = Bf16ToFloat(h[i]);
    } else {
      const auto* h = static_cast<const _Float16*>(in);
      for (int64_t i = begin; i < end; ++i) out[i] = static_cast<float>(h[i]);
    }
  });
}

void RoundFromFloat(TF_DataType half, const float* in, void* out, int64_t n) {
  ForChunks(n, [&](int64_t begin, int64_t end, int) {
    if (half == TF_BFLOAT16) {
      auto* h = static_cast<uint16_t*>(out);
      for (int64_t i = begin; i < end; ++i) h[i] = FloatToBf16(in[i]);
    } else {
      auto* h = static_cast<_Float16*>(out);
      for (int64_t i = begin; i < end; ++i) h[i] = static_cast<_Float16>(in[i]);
    }
  });
}

void HalfStaging::Finish(const KernelContext& ctx) {
  for (const Staged& s : outputs_) WriteRounded(ctx, half_, s.index, s.storage.get());
}

namespace detail {

OwnedTensor StagedInput(HalfStaging& staging, const KernelContext& ctx, OwnedTensor t) {
  if (TF_TensorType(t.get()) != staging.half()) return t;
  const std::vector<int64_t> dims = Shape(t.get());
  OwnedTensor wide = AllocateFloatTemp(ctx, dims);
  WidenToFloat(staging.half(), TF_TensorData(t.get()), Data<float>(wide.get()), NumElements(dims));
  return wide;
}

OwnedTensor StagedOutput(HalfStaging& staging, const KernelContext& ctx, int i,
                         const std::vector<int64_t>& dims) {
  OwnedTensor storage = AllocateFloatTemp(ctx, dims);
  // The kernel's handle on the staged buffer, which the staging owns.
  const size_t bytes = sizeof(float) * static_cast<size_t>(NumElements(dims));
  OwnedTensor view(TF_NewTensor(
      TF_FLOAT, dims.data(), static_cast<int>(dims.size()), TF_TensorData(storage.get()), bytes,
      [](void*, size_t, void*) {}, nullptr));
  if (!view || (bytes > 0 && TF_TensorData(view.get()) != TF_TensorData(storage.get())))
    throw KernelError("staging a float32 output: TF copied the buffer", TF_INTERNAL);
  staging.outputs_.push_back({i, std::move(storage)});
  return view;
}

void StagedSetOutput(HalfStaging& staging, const KernelContext& ctx, int i, const TF_Tensor* t) {
  WriteRounded(ctx, staging.half(), i, t);
}

}  // namespace detail
}  // namespace int8flow::kernels
