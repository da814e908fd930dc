#include "kernels/packed_weights.h"

namespace int8flow::kernels {

dnnl::memory PackedWeights::Get(OwnedTensor weights, const std::vector<float>& scale,
                                const dnnl::memory::desc& user, const dnnl::memory::desc& packed) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entry_ && TF_TensorData(entry_->source.get()) == TF_TensorData(weights.get()) &&
        entry_->user == user && entry_->layout == packed && entry_->scale == scale)
      return entry_->packed;  // a dnnl::memory shares its buffer: safe past a repack
  }
  auto entry = std::make_shared<Entry>();
  entry->scale = scale;
  entry->user = user;
  entry->layout = packed;
  entry->packed = dnnl::memory(packed, Engine());
  const float* source = Data<float>(weights.get());
  std::vector<float> scaled;
  if (!scale.empty()) {
    const size_t count = TF_TensorElementCount(weights.get());
    scaled.resize(count);
    for (size_t i = 0; i < count; ++i) scaled[i] = source[i] * scale[i % scale.size()];
    source = scaled.data();
  }
  dnnl::memory from(user, Engine(), const_cast<float*>(source));
  thread_local dnnl::stream stream(Engine());
  dnnl::reorder(from, entry->packed).execute(stream, from, entry->packed);
  stream.wait();
  entry->source = std::move(weights);
  std::lock_guard<std::mutex> lock(mutex_);
  entry_ = entry;
  return entry->packed;
}

}  // namespace int8flow::kernels
