#include "kernels/onednn_util.h"

#include <omp.h>

#include <algorithm>

#include "kernels/kernel_trace.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::dims OneDnnDims(const std::vector<int64_t>& shape) {
  if (shape.empty()) return {1};
  return dnnl::memory::dims(shape.begin(), shape.end());
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

bool SlideWindow(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                 const std::string& padding, int64_t explicit_before, int64_t explicit_after,
                 WindowSpan& span) {
  const int64_t extent = (k - 1) * dilation + 1;
  if (padding == "SAME") {
    span.out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((span.out - 1) * stride + extent - in, 0);
    span.before = total / 2;
    span.after = total - span.before;
    return true;
  }
  span.before = padding == "EXPLICIT" ? explicit_before : 0;
  span.after = padding == "EXPLICIT" ? explicit_after : 0;
  const int64_t padded = in + span.before + span.after;
  if (padded < extent) return false;
  span.out = (padded - extent) / stride + 1;
  return true;
}

size_t ChannelsLastSpatialRank(TF_OpKernelConstruction* ctx, const char* op_kind) {
  const std::string format = GetStringAttr(ctx, "data_format");
  Require(format == "NHWC" || format == "NDHWC", [&] {
    return std::string("QCPU ") + op_kind + " take the NHWC and NDHWC data formats only, not " +
           format;
  });
  return format.size() - 2;
}

void RequireSpatialList(const std::vector<int64_t>& values, size_t spatial_rank, const char* name) {
  bool ok = values.size() == spatial_rank + 2 && values.front() == 1 && values.back() == 1;
  for (size_t i = 1; ok && i <= spatial_rank; ++i) ok = values[i] > 0;
  Require(ok, [&] {
    return std::string(name) + " must be " +
           (spatial_rank == 3 ? "[1, d, h, w, 1]" : "[1, h, w, 1]") +
           " with positive spatial values";
  });
}

dnnl::memory::desc ChannelsLastDesc(int64_t n, int64_t c, const std::vector<int64_t>& spatial,
                                    dnnl::memory::data_type type) {
  dnnl::memory::dims dims = {n, c};
  dims.insert(dims.end(), spatial.begin(), spatial.end());
  const dnnl::memory::format_tag tag = spatial.size() == 3   ? dnnl::memory::format_tag::ndhwc
                                       : spatial.size() == 2 ? dnnl::memory::format_tag::nhwc
                                                             : dnnl::memory::format_tag::nwc;
  return dnnl::memory::desc(dims, type, tag);
}

dnnl::memory::dims DenseStrides(const dnnl::memory::dims& dims) {
  dnnl::memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * dims[i + 1];
  return strides;
}

dnnl::memory::desc PlainF32(const dnnl::memory::dims& dims) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, DenseStrides(dims));
}

dnnl::memory ArgMemory(const dnnl::memory::desc& desc, void* data) {
  struct Slot {
    dnnl::memory::desc desc;  // held, so its address stays this desc's
    dnnl::memory memory;
    uint64_t call;  // the kernel call it last served
  };
  // Enough for every argument of a large model's kernels; past it, start over.
  constexpr size_t kMaxSlots = 4096;
  thread_local std::unordered_multimap<const void*, Slot> slots;
  const uint64_t call = KernelCallsOnThisThread();
  const auto [first, last] = slots.equal_range(desc.get());
  for (auto it = first; it != last; ++it) {
    if (it->second.call == call) continue;  // an argument of this call already
    it->second.call = call;
    it->second.memory.set_data_handle(data);
    return it->second.memory;
  }
  if (slots.size() >= kMaxSlots) slots.clear();  // handed-out memories stay valid: they are shared
  return slots.emplace(desc.get(), Slot{desc, dnnl::memory(desc, Engine(), data), call})
      ->second.memory;
}

dnnl::primitive_attr UserScratchpadAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

namespace {

// Waking OpenMP's second thread costs more than a small op's work, so
// primitives touching under this many bytes run on the calling thread. A
// memory-bound one (element-wise, reorder, normalization: no convolution or
// product) keeps to one thread up to where our own loops do (vector_loops.h):
// at a GRU(128) step's 48 KB, with the step's other ops running beside it, a
// team made an add 12 us instead of 3.
constexpr size_t kSingleThreadBytes = 32 * 1024;
constexpr size_t kSingleThreadMemoryBoundBytes = 2 * kParallelElements * sizeof(float);

bool ComputeBound(const dnnl::primitive& primitive) {
  using kind = dnnl::primitive::kind;
  switch (primitive.get_kind()) {
    case kind::convolution:
    case kind::deconvolution:
    case kind::inner_product:
    case kind::matmul:
    case kind::rnn: return true;
    default: return false;
  }
}

size_t BytesTouched(const std::unordered_map<int, dnnl::memory>& args) {
  size_t bytes = 0;
  // Through the C API: memory::get_desc() clones the desc, a malloc each.
  for (const auto& [arg, memory] : args) {
    const_dnnl_memory_desc_t desc = nullptr;
    if (dnnl_memory_get_memory_desc(memory.get(), &desc) == dnnl_success)
      bytes += dnnl_memory_desc_get_size(desc);
  }
  return bytes;
}

// Tells a profile which implementation oneDNN picked, and on what data.
void NoteForTrace(const dnnl::primitive& primitive) {
  const const_dnnl_primitive_desc_t pd = primitive.get_primitive_desc();
  const std::string impl = ImplementationOf(primitive);
  dnnl_data_type_t src_type = dnnl_data_type_undef;
  if (const const_dnnl_memory_desc_t src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0))
    dnnl_memory_desc_query(src, dnnl_query_data_type, &src_type);
  KernelTrace::NotePrimitive(impl.empty() ? nullptr : impl.c_str(),
                             src_type == dnnl_s8 || src_type == dnnl_u8 ? "int8"
                             : src_type == dnnl_bf16                    ? "bf16"
                                                                        : nullptr);
}

// SmallProduct's bounds, measured: above 2 MFLOP, or 1 MiB of f32
// weights (a GEMV is bound by memory, which two cores read faster), the team
// wins.
constexpr int64_t kSingleThreadFlops = int64_t{1} << 21;
constexpr int64_t kSingleThreadWeights = int64_t{1} << 18;

}  // namespace

std::string ImplementationOf(const dnnl::primitive& primitive) {
  const char* impl = nullptr;
  dnnl_primitive_desc_query(primitive.get_primitive_desc(), dnnl_query_impl_info_str, 0, &impl);
  return impl == nullptr ? "" : impl;
}

OmpThreadsScope::OmpThreadsScope(bool single) : saved_(omp_get_max_threads()), active_(single) {
  if (active_) omp_set_num_threads(1);
}

OmpThreadsScope::~OmpThreadsScope() {
  if (active_) omp_set_num_threads(saved_);
}

bool SmallProduct(int64_t m, int64_t k, int64_t n) {
  return 2 * m * k * n <= kSingleThreadFlops && k * n <= kSingleThreadWeights;
}

void Execute(KernelContext& ctx, const dnnl::primitive& primitive,
             const dnnl::memory::desc& scratchpad, std::unordered_map<int, dnnl::memory> args,
             bool single_thread) {
  // oneDNN streams are not meant to be shared between threads; TF runs
  // kernels on many, so each thread keeps its own.
  thread_local dnnl::stream stream(Engine());
  const size_t bytes = BytesTouched(args);
  const OmpThreadsScope threads(
      single_thread || bytes < kSingleThreadBytes ||
      (bytes < kSingleThreadMemoryBoundBytes && !ComputeBound(primitive)));
  OwnedTensor scratch;
  if (scratchpad.get_size() > 0) {
    scratch = ctx.allocate_temp(scratchpad.get_size());
    args.emplace(DNNL_ARG_SCRATCHPAD, ArgMemory(scratchpad, TF_TensorData(scratch.get())));
  }
  primitive.execute(stream, args);
  stream.wait();
  if (KernelTrace::active()) NoteForTrace(primitive);
}

ReorderStep::ReorderStep(const dnnl::memory::desc& from, const dnnl::memory::desc& to)
    : from_(from), to_(to) {
  const dnnl::reorder::primitive_desc pd(Engine(), from, Engine(), to, UserScratchpadAttr());
  primitive_ = dnnl::reorder(pd);
  scratchpad_ = pd.scratchpad_desc();
}

void ReorderStep::Run(KernelContext& ctx, void* from, void* to) const {
  Execute(ctx, primitive_, scratchpad_,
          {{DNNL_ARG_FROM, ArgMemory(from_, from)}, {DNNL_ARG_TO, ArgMemory(to_, to)}});
}

std::optional<ReorderStep> MakeReorder(const dnnl::memory::desc& from,
                                       const dnnl::memory::desc& to) {
  if (from == to) return std::nullopt;
  return ReorderStep(from, to);
}

dnnl::memory InputMemory(KernelContext& ctx, const dnnl::memory::desc& desc,
                         const std::optional<ReorderStep>& reorder, void* data, OwnedTensor& keep) {
  if (!reorder) return ArgMemory(desc, data);
  keep = ctx.allocate_temp(reorder->to().get_size());
  reorder->Run(ctx, data, TF_TensorData(keep.get()));
  return ArgMemory(reorder->to(), TF_TensorData(keep.get()));
}

}  // namespace int8flow::kernels
