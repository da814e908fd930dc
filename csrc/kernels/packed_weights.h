// Weights packed once into the layout a oneDNN primitive prefers, per node.
//
// Why a hit can never be stale: the cache holds a reference to the weight
// tensor it packed. While that reference lives, TF can neither free nor
// reuse the buffer, and every TF update of a variable whose buffer is shared
// (AssignVariableOp, the ResourceApply* optimizers, scatter updates) writes a
// new buffer instead of the old one. So the same buffer address means the
// same values. A per-output-channel scale folded in while packing (a
// BatchNorm's) is compared by value: it is a few floats.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "kernels/onednn_util.h"

namespace int8flow::kernels {

class PackedWeights {
 public:
  // `weights` read through `user` (TF's layout, as strides), in `packed`
  // (the primitive's weights_desc()), each element multiplied by
  // scale[i % scale.size()] when `scale` is set: the output channel is the
  // innermost dim of TF's filters.
  dnnl::memory Get(OwnedTensor weights, const std::vector<float>& scale,
                   const dnnl::memory::desc& user, const dnnl::memory::desc& packed);

 private:
  struct Entry {
    OwnedTensor source;
    std::vector<float> scale;
    dnnl::memory::desc user, layout;
    dnnl::memory packed;
  };
  std::mutex mutex_;
  std::shared_ptr<const Entry> entry_;
};

}  // namespace int8flow::kernels
