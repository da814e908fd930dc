#include "kernels/packed_weights.h"

#include <cstdlib>

namespace int8flow::kernels {

std::shared_ptr<const PackedWeights::Entry> PackedWeights::FindOrPack(
    OwnedTensor weights, const std::vector<float>& scale, bool seven_bits,
    const dnnl::memory::desc& user, const dnnl::memory::desc& packed) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++lookups_;
    if (entry_ && TF_TensorData(entry_->source.get()) == TF_TensorData(weights.get()) &&
        entry_->user == user && entry_->layout == packed && entry_->scale == scale &&
        entry_->seven_bits == seven_bits)
      return entry_;  // a dnnl::memory shares its buffer: safe past a repack
  }
  auto entry = std::make_shared<Entry>();
  entry->scale = scale;
  entry->seven_bits = seven_bits;
  entry->user = user;
  entry->layout = packed;
  entry->packed = dnnl::memory(packed, Engine());
  const size_t count = TF_TensorElementCount(weights.get());
  const bool int8 = TF_TensorType(weights.get()) == TF_INT8;
  std::vector<float> multiplier = scale;
  if (seven_bits) {
    const int8_t* w = Data<int8_t>(weights.get());
    bool wide = false;
    for (size_t i = 0; i < count && !wide; ++i) wide = std::abs(w[i]) > 63;
    entry->factor = wide ? 0.5f : 1.f;
    multiplier = wide ? std::vector<float>{0.5f} : std::vector<float>{};
  }
  dnnl::memory::desc from_desc = user;
  void* source = TF_TensorData(weights.get());
  std::vector<float> scaled;
  if (!multiplier.empty()) {
    // Scaled in float, whatever the weights' type: the reorder into the
    // packed type rounds once (half to even).
    scaled.resize(count);
    for (size_t i = 0; i < count; ++i) {
      const float w =
          int8 ? static_cast<const int8_t*>(source)[i] : static_cast<const float*>(source)[i];
      scaled[i] = w * multiplier[i % multiplier.size()];
    }
    source = scaled.data();
    from_desc =
        dnnl::memory::desc(user.get_dims(), dnnl::memory::data_type::f32, user.get_strides());
  }
  dnnl::memory from(from_desc, Engine(), source);
  thread_local dnnl::stream stream(Engine());
  dnnl::reorder(from, entry->packed).execute(stream, from, entry->packed);
  stream.wait();
  entry->source = std::move(weights);
  std::lock_guard<std::mutex> lock(mutex_);
  ++misses_;
  entry_ = entry;
  account_.Set(1, static_cast<int64_t>(packed.get_size()));
  return entry;
}

dnnl::memory PackedWeights::Get(OwnedTensor weights, const std::vector<float>& scale,
                                const dnnl::memory::desc& user, const dnnl::memory::desc& packed) {
  return FindOrPack(std::move(weights), scale, false, user, packed)->packed;
}

bool PackedWeights::Varies() {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_ >= 3 && 2 * misses_ > lookups_;
}

std::pair<dnnl::memory, float> PackedWeights::GetInt8(OwnedTensor weights, bool seven_bits,
                                                      const dnnl::memory::desc& user,
                                                      const dnnl::memory::desc& packed) {
  const auto entry = FindOrPack(std::move(weights), {}, seven_bits, user, packed);
  return {entry->packed, entry->factor};
}

}  // namespace int8flow::kernels
