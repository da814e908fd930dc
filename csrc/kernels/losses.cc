// SparseSoftmaxCrossEntropyWithLogits, the loss of a Keras classifier's
// `fit` (sparse categorical cross-entropy of a softmax's logits). Without a
// QCPU kernel it ran on TF's CPU, and each training step copied the logits
// out and the loss and its gradient back, each copy a wait on TF's event
// manager. TF's CPU formulas, row by row: with m the row's max and
// s = sum(exp(x - m)), loss = log(s) - (x[label] - m) and
// backprop = exp(x - m) / s - onehot(label).
#include "kernels/losses.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/kernel_registration.h"
#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

template <class Label>
class SparseSoftmaxCrossEntropyKernel {
 public:
  explicit SparseSoftmaxCrossEntropyKernel(TF_OpKernelConstruction*) {}

  void Compute(KernelContext& ctx) {
    OwnedTensor logits = ctx.input(0), labels = ctx.input(1);
    const auto shape = Shape(logits.get()), label_shape = Shape(labels.get());
    Require(shape.size() == 2,
            [&] { return "logits must be 2-D, but got shape " + ShapeString(shape); });
    Require(label_shape.size() == 1,
            [&] { return "labels must be 1-D, but got shape " + ShapeString(label_shape); });
    Require(shape[0] == label_shape[0], [&] {
      return "logits and labels must have the same first dimension, got logits shape " +
             ShapeString(shape) + " and labels shape " + ShapeString(label_shape);
    });
    const int64_t rows = shape[0], classes = shape[1];
    Require(classes > 0 || rows == 0, [&] {
      return "Must have at least one class, but got logits shape " + ShapeString(shape);
    });
    const Label* label = Data<Label>(labels.get());
    // Checked before the loop, which may run on OpenMP threads.
    for (int64_t r = 0; r < rows; ++r)
      Require(label[r] >= 0 && label[r] < classes, [&] {
        std::string message = "Received a label value of " + std::to_string(label[r]) +
                              " which is outside the valid range of [0, " +
                              std::to_string(classes) + ").  Label values:";
        for (int64_t i = 0; i < rows; ++i) message += " " + std::to_string(label[i]);
        return message;
      });
    OwnedTensor loss = ctx.allocate_output(0, {rows}, TF_FLOAT);
    OwnedTensor backprop = ctx.allocate_output(1, shape, TF_FLOAT);
    const float* x = Data<float>(logits.get());
    float* l = Data<float>(loss.get());
    float* g = Data<float>(backprop.get());
    ForRows(rows, classes, [&](int64_t first, int64_t last, int) {
      for (int64_t r = first; r < last; ++r) {
        const float* row = x + r * classes;
        float* grad = g + r * classes;
        const float max = *std::max_element(row, row + classes);
        float sum = 0.f;
        for (int64_t j = 0; j < classes; ++j) sum += grad[j] = std::exp(row[j] - max);
        l[r] = std::log(sum) - (row[label[r]] - max);
        for (int64_t j = 0; j < classes; ++j) grad[j] /= sum;
        grad[label[r]] -= 1.f;
      }
    });
  }
};

}  // namespace

void RegisterLossKernels(const char* device_type, TF_Status* status) {
  constexpr char kOp[] = "SparseSoftmaxCrossEntropyWithLogits";
  RegisterKernel<SparseSoftmaxCrossEntropyKernel<int32_t>>(
      {kOp, {{"T", TF_FLOAT}, {"Tlabels", TF_INT32}}}, device_type, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterKernel<SparseSoftmaxCrossEntropyKernel<int64_t>>(
      {kOp, {{"T", TF_FLOAT}, {"Tlabels", TF_INT64}}}, device_type, status);
}

}  // namespace int8flow::kernels
