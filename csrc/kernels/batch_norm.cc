// TF's FusedBatchNorm family on oneDNN's batch_normalization primitive.
// Inference normalizes with the given mean and variance; training computes
// the batch's, and returns them as TF's CPU kernel does: the running
// (Bessel-corrected, exponentially averaged) statistics in outputs 1 and 2,
// the batch's own mean and biased variance in the reserve spaces 1 and 2.
// In inference the reserve spaces 1 and 2 (read only by a gradient) hold the
// running statistics, as TF's oneDNN kernel gives them (its Eigen one, which
// TF runs where its oneDNN is off, the default on CPUs without VNNI, leaves
// them unset). reserve_space_3, unused on CPU, takes the shape of the kernel
// TF's CPU runs on this host: [0] from oneDNN, a scalar 0 from Eigen.
// Keras 3 emits tf.nn.batch_normalization instead (folded by the graph pass,
// fusion_patterns.cc); these ops come from tf.keras 2, tf.compat.v1 and
// SavedModels.
#include "kernels/batch_norm.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/onednn_util.h"
#include "tensorflow/core/util/util.h"  // IsMKLEnabled: whether TF's CPU runs its oneDNN kernels

namespace int8flow::kernels {
namespace {

using dnnl::memory;

class FusedBatchNormKernel {
 public:
  explicit FusedBatchNormKernel(TF_OpKernelConstruction* ctx)
      : epsilon_(GetFloatAttr(ctx, "epsilon")),
        is_training_(GetBoolAttr(ctx, "is_training")),
        avg_factor_(TF_OpKernelConstruction_HasAttr(ctx, "exponential_avg_factor", nullptr)
                        ? GetFloatAttr(ctx, "exponential_avg_factor")
                        : 1.f),
        data_format_(GetStringAttr(ctx, "data_format")),
        v3_(OpType(ctx) == "FusedBatchNormV3") {
    Require(data_format_ == "NHWC" || data_format_ == "NCHW" ||
                (v3_ && (data_format_ == "NDHWC" || data_format_ == "NCDHW")),
            "unsupported data_format '" + data_format_ + "'");
  }

  void Compute(KernelContext& ctx) {
    OwnedTensor x = ctx.input(0), scale = ctx.input(1), offset = ctx.input(2), mean = ctx.input(3),
                variance = ctx.input(4);
    const auto shape = Shape(x.get());
    const size_t rank = data_format_.size();  // "NHWC" -> 4
    Require(shape.size() == rank, [&] {
      return "input must be " + std::to_string(rank) + "-dimensional, got " + ShapeString(shape) +
             " for data_format " + data_format_;
    });
    const bool channels_last = data_format_.back() == 'C';
    const int64_t channels = channels_last ? shape.back() : shape[1];
    const auto check_vector = [&](const char* what, const TF_Tensor* t, bool required) {
      const auto s = Shape(t);
      Require(s.size() == 1,
              [&] { return std::string(what) + " must be 1-dimensional, got " + ShapeString(s); });
      Require(s[0] == channels || (!required && s[0] == 0), [&] {
        return std::string(what) +
               " must have the same number of elements as the channels of x, got " +
               std::to_string(s[0]) + " and " + std::to_string(channels);
      });
    };
    check_vector("scale", scale.get(), true);
    check_vector("offset", offset.get(), true);
    // Training with a factor of 1 ignores the running statistics: TF lets them be empty.
    const bool running_needed = !is_training_ || avg_factor_ != 1.f;
    check_vector("mean", mean.get(), running_needed);
    check_vector("variance", variance.get(), running_needed);

    OwnedTensor y = ctx.allocate_output(0, shape, TF_FLOAT);
    std::vector<OwnedTensor> stats;  // batch_mean, batch_variance, reserve_space_1, _2
    for (int i = 1; i <= 4; ++i) stats.push_back(ctx.allocate_output(i, {channels}, TF_FLOAT));
    const bool tf_uses_onednn = tensorflow::IsMKLEnabled();
    if (v3_) {  // unused on CPU: the shape and value of TF's kernel
      OwnedTensor unused = ctx.allocate_output(
          5, tf_uses_onednn ? std::vector<int64_t>{0} : std::vector<int64_t>{}, TF_FLOAT);
      if (!tf_uses_onednn) *Data<float>(unused.get()) = 0.f;
    }
    const auto out = [&](int i) { return Data<float>(stats[i].get()); };
    const size_t vector_bytes = channels * sizeof(float);

    const int64_t count = channels > 0 ? NumElements(shape) / channels : 0;
    if (count == 0) {  // no batch: NaN statistics and zero reserve spaces, as TF's CPU kernel
      for (int i = 0; i < 4; ++i)
        std::fill(out(i), out(i) + channels, i < 2 ? std::numeric_limits<float>::quiet_NaN() : 0.f);
      return;
    }
    if (!is_training_) {
      std::memcpy(out(0), Data<float>(mean.get()), vector_bytes);
      std::memcpy(out(1), Data<float>(variance.get()), vector_bytes);
      Normalize(ctx, shape, channels_last, x, y, scale, offset, out(0), out(1));
      std::memcpy(out(2), out(0), vector_bytes);
      std::memcpy(out(3), out(1), vector_bytes);
      return;
    }
    // The batch's mean and biased variance land in the reserve spaces.
    Normalize(ctx, shape, channels_last, x, y, scale, offset, out(2), out(3));
    const float bessel =
        static_cast<float>(count) / static_cast<float>(std::max<int64_t>(count - 1, 1));
    const float* old_mean = Data<float>(mean.get());
    const float* old_variance = Data<float>(variance.get());
    for (int64_t c = 0; c < channels; ++c) {
      const float batch_mean = out(2)[c], batch_variance = out(3)[c] * bessel;
      out(0)[c] = avg_factor_ == 1.f ? batch_mean
                                     : (1.f - avg_factor_) * old_mean[c] + avg_factor_ * batch_mean;
      out(1)[c] = avg_factor_ == 1.f
                      ? batch_variance
                      : (1.f - avg_factor_) * old_variance[c] + avg_factor_ * batch_variance;
    }
  }

 private:
  struct Primitive {
    dnnl::batch_normalization_forward primitive;
    memory::desc data, channel, scratchpad;
  };

  // y = (x - mean) * rsqrt(variance + epsilon) * scale + offset. In inference
  // `mean` and `variance` are read; in training oneDNN writes the batch's.
  void Normalize(KernelContext& ctx, const std::vector<int64_t>& shape, bool channels_last,
                 const OwnedTensor& x, const OwnedTensor& y, const OwnedTensor& scale,
                 const OwnedTensor& offset, float* mean, float* variance) {
    // oneDNN's dims are N, C, spatial...; the tag says where C lies in memory.
    memory::dims dims = {shape[0], channels_last ? shape.back() : shape[1]};
    for (size_t d = channels_last ? 1 : 2; d < shape.size() - (channels_last ? 1 : 0); ++d)
      dims.push_back(shape[d]);
    auto p = cache_.Get(shape, [&] {
      Primitive p;
      const bool spatial3 = shape.size() == 5;
      const auto tag = channels_last
                           ? (spatial3 ? memory::format_tag::ndhwc : memory::format_tag::nhwc)
                           : (spatial3 ? memory::format_tag::ncdhw : memory::format_tag::nchw);
      p.data = memory::desc(dims, memory::data_type::f32, tag);
      p.channel = PlainF32({dims[1]});
      auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
      if (!is_training_) flags = flags | dnnl::normalization_flags::use_global_stats;
      dnnl::batch_normalization_forward::primitive_desc pd(
          Engine(),
          is_training_ ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
          p.data, p.data, epsilon_, flags, UserScratchpadAttr());
      p.scratchpad = pd.scratchpad_desc();
      p.primitive = dnnl::batch_normalization_forward(pd);
      return p;
    });
    Execute(ctx, p->primitive, p->scratchpad,
            {{DNNL_ARG_SRC, ArgMemory(p->data, TF_TensorData(x.get()))},
             {DNNL_ARG_DST, ArgMemory(p->data, TF_TensorData(y.get()))},
             {DNNL_ARG_SCALE, ArgMemory(p->channel, TF_TensorData(scale.get()))},
             {DNNL_ARG_SHIFT, ArgMemory(p->channel, TF_TensorData(offset.get()))},
             {DNNL_ARG_MEAN, ArgMemory(p->channel, mean)},
             {DNNL_ARG_VARIANCE, ArgMemory(p->channel, variance)}});
  }

  const float epsilon_;
  const bool is_training_;
  const float avg_factor_;
  const std::string data_format_;
  const bool v3_;
  PrimitiveCache<Primitive> cache_;
};

}  // namespace

void RegisterBatchNormKernels(const char* device_type, TF_Status* status) {
  RegisterKernel<FusedBatchNormKernel>({"FusedBatchNorm"}, device_type, status);
  for (const char* op : {"FusedBatchNormV2", "FusedBatchNormV3"}) {
    if (TF_GetCode(status) != TF_OK) return;
    RegisterKernel<FusedBatchNormKernel>({op, {{"T", TF_FLOAT}, {"U", TF_FLOAT}}}, device_type,
                                         status);
  }
}

}  // namespace int8flow::kernels
