#include "kernels/channel_constants.h"

namespace int8flow::kernels {

std::shared_ptr<const ChannelConstants> ChannelConstantsCache::Get(
    const KernelContext& ctx, const FusedOps& fused, const QuantizedOperands& quantized,
    int first_quantized, const std::vector<OwnedTensor>& args, int64_t channels) {
  const int weight_scales_input = first_quantized + QuantizedOperands::kWeightScalesOffset;
  OwnedTensor weight_scales = quantized.enabled() ? ctx.input(weight_scales_input) : nullptr;
  // The affine args come first among `args`; the Add's input after them is
  // an activation, new every call, and no part of the constants.
  std::vector<const void*> buffers;
  for (int i = 0; i < fused.num_affine_args(); ++i) buffers.push_back(TF_TensorData(args[i].get()));
  if (weight_scales) buffers.push_back(TF_TensorData(weight_scales.get()));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entry_ && entry_->channels == channels && entry_->buffers == buffers) return entry_->value;
  }
  auto value = std::make_shared<ChannelConstants>();
  fused.FoldAffine(args, channels, value->scale, value->bias);
  if (weight_scales) {
    value->weight_scales = quantized.WeightScales(weight_scales.get(), channels, value->scale);
    value->weight_scales_desc =
        dnnl::memory::desc({channels}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
  }
  auto entry = std::make_shared<Entry>();
  entry->channels = channels;
  entry->buffers = std::move(buffers);
  const int first_arg = first_quantized + quantized.num_inputs();
  for (int i = 0; i < fused.num_affine_args(); ++i) entry->held.push_back(ctx.input(first_arg + i));
  if (weight_scales) entry->held.push_back(std::move(weight_scales));
  entry->value = value;
  std::lock_guard<std::mutex> lock(mutex_);
  entry_ = std::move(entry);
  return value;
}

}  // namespace int8flow::kernels
