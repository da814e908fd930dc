// The per-output-channel constants of a MatMul or convolution node, derived
// from its inputs: the scale and bias its fused affine ops fold into
// (FusedOps::FoldAffine) and, quantized, the weights' scales with that scale
// in (QuantizedOperands::WeightScales).
//
// Deriving them (a BatchNorm's rsqrt and a check of every scale, per channel)
// cost ~5 us a call on each of ResNet50's convolutions, 0.3 ms of its 6 ms at
// batch 1, so they are kept while the same input buffers come back. The cache
// holds a reference to each input it derived from, and a buffer TF can
// neither free nor reuse holds the same values (packed_weights.h says why).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "kernels/fused_ops.h"
#include "kernels/quantization.h"

namespace int8flow::kernels {

struct ChannelConstants {
  std::vector<float> scale, bias;         // FoldAffine's; either may be empty
  std::vector<float> weight_scales;       // a quantized node's, `scale` folded in
  dnnl::memory::desc weight_scales_desc;  // theirs, for ArgMemory
};

class ChannelConstantsCache {
 public:
  // For a node whose quantized inputs start at `first_quantized` (its
  // QuantizedOperands::Read's `first`), its fused ops' `args` following them.
  std::shared_ptr<const ChannelConstants> Get(const KernelContext& ctx, const FusedOps& fused,
                                              const QuantizedOperands& quantized,
                                              int first_quantized,
                                              const std::vector<OwnedTensor>& args,
                                              int64_t channels);

 private:
  struct Entry {
    int64_t channels = 0;
    std::vector<const void*> buffers;  // the inputs' data, in the order read
    std::vector<OwnedTensor> held;     // a reference to each: see the top
    std::shared_ptr<const ChannelConstants> value;
  };
  std::mutex mutex_;
  std::shared_ptr<const Entry> entry_;
};

}  // namespace int8flow::kernels
