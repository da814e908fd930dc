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
#include <utility>
#include <vector>

#include "kernels/onednn_util.h"

namespace int8flow::kernels {

class PackedWeights {
 public:
  // f32 `weights` read through `user` (TF's layout, as strides), in `packed`
  // (the primitive's weights_desc()), each element multiplied by
  // scale[i % scale.size()] when `scale` is set: the output channel is the
  // innermost dim of TF's filters.
  dnnl::memory Get(OwnedTensor weights, const std::vector<float>& scale,
                   const dnnl::memory::desc& user, const dnnl::memory::desc& packed);
  // s8 `weights`, likewise. With `seven_bits` (a CPU without VNNI, where a
  // u8·s8 pair can saturate) they are packed halved unless they already fit
  // in 7 bits. Returns the packed memory and the factor applied: 0.5 or 1.
  std::pair<dnnl::memory, float> GetInt8(OwnedTensor weights, bool seven_bits,
                                         const dnnl::memory::desc& user,
                                         const dnnl::memory::desc& packed);
  // Whether this node's weights are new at most calls (a gradient, an
  // activation): packing then costs a reorder primitive, a buffer and an
  // OpenMP team per call, more than the packed layout saves. More than half
  // of at least 3 lookups missed.
  bool Varies();

 private:
  struct Entry {
    OwnedTensor source;
    std::vector<float> scale;  // as asked for
    bool seven_bits = false;   // as asked for (GetInt8)
    float factor = 1.f;        // GetInt8's, as applied
    dnnl::memory::desc user, layout;
    dnnl::memory packed;
  };
  // The cached entry for these arguments, packed anew on a miss.
  std::shared_ptr<const Entry> FindOrPack(OwnedTensor weights, const std::vector<float>& scale,
                                          bool seven_bits, const dnnl::memory::desc& user,
                                          const dnnl::memory::desc& packed);
  std::mutex mutex_;
  std::shared_ptr<const Entry> entry_;
  int64_t lookups_ = 0, misses_ = 0;
  CacheAccount account_{runtime::CacheKind::kPackedWeights};
};

}  // namespace int8flow::kernels
