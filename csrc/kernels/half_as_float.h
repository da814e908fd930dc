// bf16 and float16 nodes served by QCPU's float32 kernels: inputs widened to
// float32, outputs rounded back (to nearest even) when the kernel returns.
//
// For the loop bodies of Keras RNNs under a mixed-precision policy: TF runs
// them on QCPU alone (loop_ops.cc), and their cells compute in bf16 or
// float16. They are loop-only (KernelSpec::loop_only): everywhere else such
// nodes run on TF's CPU, whose kernels compute in those types natively.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel_registration.h"

namespace int8flow::kernels {

// bf16 as a number for loops that static_cast (Cast): to float32 exactly,
// from it to nearest even, as TF's (Eigen's) bfloat16 does.
struct Bf16 {
  uint16_t bits = 0;
  Bf16() = default;
  explicit Bf16(float f);
  operator float() const;  // implicit: a number, as Eigen's bfloat16 is
};

inline bool IsHalfType(TF_DataType t) { return t == TF_BFLOAT16 || t == TF_HALF; }

// float32 <-> bf16 / float16 (_Float16), rounding to nearest even.
void WidenToFloat(TF_DataType half, const void* in, float* out, int64_t n);
void RoundFromFloat(TF_DataType half, const float* in, void* out, int64_t n);

class HalfStaging {
 public:
  explicit HalfStaging(TF_DataType half) : half_(half) {}
  TF_DataType half() const { return half_; }
  // The node's outputs, rounded from the staged float32 ones.
  void Finish(const KernelContext& ctx);

 private:
  friend OwnedTensor detail::StagedInput(HalfStaging&, const KernelContext&, OwnedTensor);
  friend OwnedTensor detail::StagedOutput(HalfStaging&, const KernelContext&, int,
                                          const std::vector<int64_t>&);
  friend void detail::StagedSetOutput(HalfStaging&, const KernelContext&, int, const TF_Tensor*);
  struct Staged {
    int index;
    OwnedTensor storage;  // float32, what the kernel writes
  };
  const TF_DataType half_;
  std::vector<Staged> outputs_;
};

// `Kernel` (float32) serving a node of type `kHalf`.
template <class Kernel, TF_DataType kHalf>
class HalfAsFloat {
 public:
  explicit HalfAsFloat(TF_OpKernelConstruction* ctx) : kernel_(ctx) {}

  void Compute(KernelContext& ctx) {
    HalfStaging staging(kHalf);
    KernelContext staged(ctx.raw(), &staging);
    kernel_.Compute(staged);
    staging.Finish(ctx);
  }

 private:
  Kernel kernel_;
};

// Registers `Kernel` for `spec`, and for a standard op (not one of our
// private ones, whose definitions take float32 only) HalfAsFloat<Kernel> for
// the same spec with each float32 type constraint made bf16, then float16,
// for loop bodies only: elsewhere TF's CPU computes those types natively.
template <class Kernel>
void RegisterWithHalfTypes(const KernelSpec& spec, const char* device_type, TF_Status* status) {
  RegisterKernel<Kernel>(spec, device_type, status);
  if (TF_GetCode(status) != TF_OK || spec.op[0] == '_') return;
  const auto with = [&](TF_DataType half) {
    KernelSpec typed = LoopOnly(spec);
    for (auto& constraint : typed.types)
      if (constraint.second == TF_FLOAT) constraint.second = half;
    return typed;
  };
  RegisterKernel<HalfAsFloat<Kernel, TF_BFLOAT16>>(with(TF_BFLOAT16), device_type, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterKernel<HalfAsFloat<Kernel, TF_HALF>>(with(TF_HALF), device_type, status);
}

}  // namespace int8flow::kernels
