// What the oneDNN kernels share: one engine, a stream per thread, primitive
// caches, and execution with scratchpad memory from TF's allocator.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/kernel_registration.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace int8flow::kernels {

dnnl::engine& Engine();

// Dims as oneDNN spells them; a rank-0 tensor becomes {1}.
dnnl::memory::dims OneDnnDims(const std::vector<int64_t>& shape);
int64_t NumElements(const std::vector<int64_t>& shape);
std::string ShapeString(const std::vector<int64_t>& shape);

// One spatial dim of a window of `k` taps, `dilation` apart, sliding by
// `stride` over `in` elements: TF's output size and pads for `padding`
// "SAME", "VALID" or "EXPLICIT" (pads `explicit_before`, `explicit_after`).
// False when the window is larger than the padded input.
struct WindowSpan {
  int64_t out = 0, before = 0, after = 0;
};
bool SlideWindow(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                 const std::string& padding, int64_t explicit_before, int64_t explicit_after,
                 WindowSpan& span);
// The spatial rank of a window op (a convolution, a pool) from its
// data_format: NHWC 2, NDHWC 3; any other is refused, naming `op_kind`.
size_t ChannelsLastSpatialRank(TF_OpKernelConstruction* ctx, const char* op_kind);
// Throws unless `values`, a window attr (strides, ksize, dilations) of
// `spatial_rank` spatial dims, is [1, spatial..., 1] with positive spatial values.
void RequireSpatialList(const std::vector<int64_t>& values, size_t spatial_rank, const char* name);

// TF's channels-last activations ([n, spatial..., c], 1 to 3 spatial dims)
// in oneDNN's logical order [n, c, spatial...].
dnnl::memory::desc ChannelsLastDesc(int64_t n, int64_t c, const std::vector<int64_t>& spatial,
                                    dnnl::memory::data_type type);

// A dense row-major f32 memory descriptor of `dims`.
dnnl::memory::desc PlainF32(const dnnl::memory::dims& dims);
// Row-major strides of `dims`.
dnnl::memory::dims DenseStrides(const dnnl::memory::dims& dims);

// A memory of `desc` at `data`, for one argument of a primitive that the
// current kernel call runs. Creating a dnnl::memory costs ~0.3 us (mallocs
// for its desc and storage) and a quantized kernel needs up to nine a call,
// so each thread keeps the ones it made, per desc, and repoints them. Only
// for descs that outlive the call (a primitive cache entry's): a desc made
// per call would only fill the cache.
dnnl::memory ArgMemory(const dnnl::memory::desc& desc, void* data);

// Primitive attributes every kernel uses: scratchpad memory comes from the
// caller (see Execute), so one primitive may run on many threads at once.
dnnl::primitive_attr UserScratchpadAttr();

// The name of the implementation oneDNN picked for `primitive` ("brg:avx512_core",
// "ref:any", ...); empty if it has none.
std::string ImplementationOf(const dnnl::primitive& primitive);

// Runs `primitive` with `args`, adding scratchpad memory from TF's allocator
// when the primitive needs some, and waits for it to finish. On the calling
// thread alone when `single_thread` or when the arguments are small.
void Execute(KernelContext& ctx, const dnnl::primitive& primitive,
             const dnnl::memory::desc& scratchpad, std::unordered_map<int, dnnl::memory> args,
             bool single_thread = false);

// Whether an (m x k) by (k x n) product runs faster on the calling thread
// than on OpenMP's team: waking the team costs more than it saves, and the
// independent products of a recurrent step, each with a team of its own,
// fight over the cores (an LSTM(128) step at batch 8 on 2 cores: 29 us a
// MatMul with teams, 6.6 us without). oneDNN fixes a matmul's team when it
// is built, so a kernel builds and runs such a primitive under
// OmpThreadsScope and Execute(single_thread).
bool SmallProduct(int64_t m, int64_t k, int64_t n);

// Sets this thread's OpenMP team size to one for a scope when `single`,
// restoring it after.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(bool single);
  ~OmpThreadsScope();
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
  bool active_;
};

// A reorder between two layouts or types, built once with the primitive
// it feeds and run at each call (einsum's operand orders, bf16 inputs).
class ReorderStep {
 public:
  ReorderStep(const dnnl::memory::desc& from, const dnnl::memory::desc& to);
  const dnnl::memory::desc& to() const { return to_; }
  void Run(KernelContext& ctx, void* from, void* to) const;

 private:
  dnnl::reorder primitive_;
  dnnl::memory::desc from_, to_, scratchpad_;
};
// The step from `from` to `to`; none when they are the same.
std::optional<ReorderStep> MakeReorder(const dnnl::memory::desc& from,
                                       const dnnl::memory::desc& to);

// The memory a primitive reads for an input held at `data` as `desc`: the
// data itself, or, with a `reorder`, its copy in TF temp memory, which `keep`
// holds for the call.
dnnl::memory InputMemory(KernelContext& ctx, const dnnl::memory::desc& desc,
                         const std::optional<ReorderStep>& reorder, void* data, OwnedTensor& keep);

// One cache's share of int8flow.stats()["caches"]: Set() reports what the
// cache holds now and the destructor gives it back, so the totals follow
// kernels as TF creates and frees them. Callers serialize Set (their lock).
class CacheAccount {
 public:
  explicit CacheAccount(runtime::CacheKind kind) : kind_(kind) {}
  CacheAccount(const CacheAccount&) = delete;
  CacheAccount& operator=(const CacheAccount&) = delete;
  ~CacheAccount() { Set(0, 0); }
  void Set(int64_t entries, int64_t bytes) {
    runtime::RecordCacheChange(kind_, entries - entries_, bytes - bytes_);
    entries_ = entries;
    bytes_ = bytes;
  }

 private:
  const runtime::CacheKind kind_;
  int64_t entries_ = 0, bytes_ = 0;
};

// A bounded, thread-safe cache of primitives keyed by shape. Kernels key it by
// the dims of their inputs; it never holds data, only compiled primitives.
template <class Entry>
class PrimitiveCache {
 public:
  template <class Make>
  std::shared_ptr<const Entry> Get(const std::vector<int64_t>& key, Make make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
    // Shapes rarely vary; when they do without end, start over rather than grow.
    if (entries_.size() >= kCapacity) entries_.clear();
    auto entry = std::make_shared<const Entry>(make());
    entries_.emplace(key, entry);
    account_.Set(static_cast<int64_t>(entries_.size()), 0);
    return entry;
  }

 private:
  static constexpr size_t kCapacity = 16;
  std::mutex mutex_;
  CacheAccount account_{runtime::CacheKind::kPrimitives};
  std::map<std::vector<int64_t>, std::shared_ptr<const Entry>> entries_;
};

}  // namespace int8flow::kernels
