// The int8 arithmetic the graph pass and the kernels share, with no oneDNN:
// which int8 path the CPU takes, and per-channel weight quantization, which
// _QcpuQuantizeWeights runs per weight buffer and the pass runs once on
// constant weights (graph/int8_weights.cc), with the same result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace int8flow::ops {

// Whether the CPU oneDNN runs on has VNNI (or AMX): u8·s8 products summed in
// int32 by one instruction (runtime::CpuFeatures::int8_path). Without it
// oneDNN's u8·s8 code uses vpmaddubsw, whose int16 sums of two products
// saturate past 32767.
bool CpuHasVnni();

// Whether oneDNN runs int8 on AMX, whose tile instructions take s8 and u8
// activations alike.
bool CpuHasAmx();

// The largest |q| of quantized weights here: 127, or 63 (7 bits) without
// VNNI, where no u8·s8 pair then saturates. A depthwise filter sums no
// channels, so no pairs: 127 on every CPU.
float WeightLevels(bool depthwise);

// Where per-channel weights of `shape` keep their channels: axis
// `channel_axis` (negative: from the end). Element i is in channel
// (i / inner) % channels. nullopt when the axis is outside the shape.
struct WeightChannels {
  int64_t count, channels, inner;
};
std::optional<WeightChannels> WeightChannelsOf(const std::vector<int64_t>& shape,
                                               int64_t channel_axis);

// Symmetric per-channel s8 of float weights laid out as `layout`: `q`, and
// `scales` (one per channel, 0 for a channel of zeros, whose weights stay 0).
// Returns what is wrong with the weights (NaN or Inf), or "" when they are
// quantized.
std::string QuantizeWeightsPerChannel(const float* w, const WeightChannels& layout, float levels,
                                      int8_t* q, float* scales);

}  // namespace int8flow::ops
