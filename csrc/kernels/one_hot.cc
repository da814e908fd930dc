// OneHot to float32 on QCPU: categorical losses and metrics on integer
// labels, attention masks from token ids. Without it each result crossed
// from TF's CPU to QCPU (2.3x TF's time on [256, 64] labels of depth 64).
// The output, [outer, depth, inner] around `axis`, is filled with off_value,
// then each index in [0, depth) sets its element to on_value (others, as in
// TF, set none).
#include "kernels/one_hot.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/onednn_util.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

float Scalar(KernelContext& ctx, int i, const char* name) {
  OwnedTensor t = ctx.input(i);
  Require(TF_NumDims(t.get()) == 0, [&] {
    return std::string(name) + " must be a scalar, but got: " + ShapeString(Shape(t.get()));
  });
  return *Data<float>(t.get());
}

template <class Index>
class OneHotKernel {
 public:
  explicit OneHotKernel(TF_OpKernelConstruction* ctx) : axis_(GetIntAttr(ctx, "axis")) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor indices = ctx.input(0), depth_tensor = ctx.input(1);
    const auto shape = Shape(indices.get());
    const int64_t out_rank = static_cast<int64_t>(shape.size()) + 1;
    Require(axis_ == -1 || (axis_ >= 0 && axis_ < out_rank), [&] {
      return "Expected axis to be -1 or between [0, " + std::to_string(out_rank) +
             ").  But received: " + std::to_string(axis_);
    });
    Require(TF_NumDims(depth_tensor.get()) == 0, [&] {
      return "depth must be a scalar, but got: " + ShapeString(Shape(depth_tensor.get()));
    });
    const int64_t depth = IntValues(depth_tensor.get())[0];
    Require(depth >= 0,
            [&] { return "depth must be non-negative, got: " + std::to_string(depth); });
    const float on = Scalar(ctx, 2, "on_value"), off = Scalar(ctx, 3, "off_value");
    const int64_t axis = axis_ == -1 ? out_rank - 1 : axis_;
    std::vector<int64_t> out_shape = shape;
    out_shape.insert(out_shape.begin() + axis, depth);
    OwnedTensor out = ctx.allocate_output(0, out_shape, TF_FLOAT);
    const AroundAxis around = AroundAxisOf(out_shape, axis);
    const Index* index = Data<Index>(indices.get());
    float* y = Data<float>(out.get());
    const int64_t block = depth * around.inner;  // one outer row of the output
    ForRows(around.outer, block, [&](int64_t first, int64_t last, int) {
      std::fill(y + first * block, y + last * block, off);
      for (int64_t o = first; o < last; ++o)
        for (int64_t i = 0; i < around.inner; ++i) {
          const int64_t d = static_cast<int64_t>(index[o * around.inner + i]);
          if (d >= 0 && d < depth) y[o * block + d * around.inner + i] = on;
        }
    });
  }

 private:
  const int64_t axis_;
};

}  // namespace

void RegisterOneHotKernels(const char* device_type, TF_Status* status) {
  // Int32 indices and the depth are in host memory, where TF keeps a device's int32 tensors.
  RegisterKernel<OneHotKernel<int32_t>>(
      {"OneHot", {{"T", TF_FLOAT}, {"TI", TF_INT32}}, {"indices", "depth"}}, device_type, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterKernel<OneHotKernel<int64_t>>({"OneHot", {{"T", TF_FLOAT}, {"TI", TF_INT64}}, {"depth"}},
                                        device_type, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterKernel<OneHotKernel<uint8_t>>({"OneHot", {{"T", TF_FLOAT}, {"TI", TF_UINT8}}, {"depth"}},
                                        device_type, status);
}

}  // namespace int8flow::kernels
