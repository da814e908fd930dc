#include "ops/int8_math.h"

#include <algorithm>
#include <cmath>

#include "runtime/runtime.h"

namespace int8flow::ops {

bool CpuHasVnni() { return runtime::GetCpuFeatures().int8_path != "avx2"; }

bool CpuHasAmx() { return runtime::GetCpuFeatures().int8_path == "amx"; }

float WeightLevels(bool depthwise) { return depthwise || CpuHasVnni() ? 127.f : 63.f; }

std::optional<WeightChannels> WeightChannelsOf(const std::vector<int64_t>& shape,
                                               int64_t channel_axis) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t axis = channel_axis < 0 ? channel_axis + rank : channel_axis;
  if (axis < 0 || axis >= rank) return std::nullopt;
  WeightChannels layout{1, shape[axis], 1};
  for (int64_t d = 0; d < rank; ++d) {
    layout.count *= shape[d];
    if (d > axis) layout.inner *= shape[d];
  }
  return layout;
}

std::string QuantizeWeightsPerChannel(const float* w, const WeightChannels& layout, float levels,
                                      int8_t* q, float* scales) {
  const auto [count, channels, inner] = layout;
  std::vector<float> max_abs(channels, 0.f);
  for (int64_t i = 0; i < count; ++i) {
    if (w[i] != w[i]) return "the weights hold NaN: cannot quantize them";
    float& m = max_abs[(i / inner) % channels];
    m = std::max(m, std::fabs(w[i]));
  }
  for (int64_t c = 0; c < channels; ++c) {
    if (!std::isfinite(max_abs[c]))
      return "weights of channel " + std::to_string(c) + " are not finite: cannot quantize them";
    scales[c] = max_abs[c] / levels;
  }
  for (int64_t i = 0; i < count; ++i) {
    const float scale = scales[(i / inner) % channels];
    q[i] = scale > 0
               ? static_cast<int8_t>(std::nearbyint(std::clamp(w[i] / scale, -levels, levels)))
               : 0;
  }
  return "";
}

}  // namespace int8flow::ops
