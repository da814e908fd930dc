// libint8flow_runtime.so: the state that the TF plugin and the Python module
// share. Both link this one library (same file, same soname), so counters the
// device bumps are the ones `int8flow.stats()` reads. It depends on libc only,
// which is why the Python side can use it before TensorFlow is imported.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#define INT8FLOW_EXPORT __attribute__((visibility("default")))

namespace int8flow::runtime {

// ---- copy and allocation counters -----------------------------------------
enum class CopyKind { kHostToDevice = 0, kDeviceToHost = 1, kDeviceToDevice = 2 };
inline constexpr int kNumCopyKinds = 3;

struct StatsSnapshot {
  uint64_t copies[kNumCopyKinds];
  uint64_t copy_bytes[kNumCopyKinds];
  int64_t num_allocs;          // device allocations made since the last reset
  int64_t bytes_in_use;        // device bytes held now (not reset)
  int64_t peak_bytes_in_use;   // since the last reset
  int64_t largest_alloc_size;  // since the last reset
};

INT8FLOW_EXPORT void RecordCopy(CopyKind kind, uint64_t bytes);
INT8FLOW_EXPORT void RecordAlloc(int64_t bytes);
INT8FLOW_EXPORT void RecordFree(int64_t bytes);
INT8FLOW_EXPORT StatsSnapshot Stats();
INT8FLOW_EXPORT void ResetStats();

// What the kernels' caches hold now, by kind (never reset: it is memory held,
// not a count of events). Each cache reports its own change as it changes.
enum class CacheKind { kPackedWeights = 0, kQuantizedWeights = 1, kPrimitives = 2 };
inline constexpr int kNumCacheKinds = 3;
struct CacheUsage {
  int64_t entries = 0;
  int64_t bytes = 0;  // 0 for primitives: oneDNN does not say how big its JIT code is
};
INT8FLOW_EXPORT void RecordCacheChange(CacheKind kind, int64_t entries, int64_t bytes);
INT8FLOW_EXPORT CacheUsage CacheUsageOf(CacheKind kind);

// Rewrites the graph pass made, by fusion pattern, since the process started
// (graphs are optimized once, so ResetStats leaves these alone).
INT8FLOW_EXPORT void RecordFusions(const std::string& pattern, int64_t count);
INT8FLOW_EXPORT std::map<std::string, int64_t> FusionCounts();
// The pass's fusion table as JSON (graph/fusion_table_json.h), set when the
// pass registers: "" before `import tensorflow` or when the plugin is inert.
INT8FLOW_EXPORT void SetFusionTable(std::string json);
INT8FLOW_EXPORT std::string FusionTable();
// Nodes the pass saw placed on TF's CPU device, by op: each is a fallback that
// costs copies. ResetStats clears these, so a test can count one model's.
INT8FLOW_EXPORT void RecordCpuOp(const std::string& op);
INT8FLOW_EXPORT std::map<std::string, int64_t> CpuOpCounts();
// Graphs the pass gave back to TF unchanged because it failed on them, by
// reason, since the process started.
INT8FLOW_EXPORT void RecordPassError(const std::string& reason);
INT8FLOW_EXPORT std::map<std::string, int64_t> PassErrorCounts();

// ---- what kernels and copies did: profiler sessions and op stats ------------
// Each kernel run and copy reads RecordingMode() once; zero, the usual case,
// is all it costs. Non-zero bits say what to record.
enum RecordingBits : int {
  kTraceSession = 1,  // a TF profiler session is on: keep every event, bounded
  kOpStats = 2,       // int8flow.record_op_stats(True): per-op totals
};
INT8FLOW_EXPORT extern std::atomic<int> recording_mode;
inline int RecordingMode() { return recording_mode.load(std::memory_order_relaxed); }

// The clock TF's profiler stamps its own events with (CLOCK_REALTIME), in ns.
INT8FLOW_EXPORT int64_t NowNanos();

struct TraceEvent {
  enum Kind { kKernel, kCopy } kind = kKernel;
  std::string name;         // the node's name; for a copy, its direction
  std::string op;           // the node's op; "Memcpy" for a copy
  std::string shapes;       // the inputs' shapes, "[1,224,224,3] [3,3,3,32]"
  std::string precision;    // "int8", "bf16" or "fp32"
  std::string onednn_impl;  // the oneDNN implementations that ran, "+"-joined
  uint64_t bytes = 0;       // a copy's size
  int64_t start_ns = 0, end_ns = 0;
  uint64_t thread_id = 0;  // the OS thread that ran it
};
// Records one finished kernel or copy under the current RecordingMode().
INT8FLOW_EXPORT void RecordEvent(TraceEvent&& event);
// A profiler session: StartTrace turns kTraceSession on with an empty buffer
// of at most GetSettings().profile_max_events; past that, events are counted
// as dropped. StopTrace turns it off and hands the events over.
struct Trace {
  std::vector<TraceEvent> events;
  uint64_t dropped = 0;
};
INT8FLOW_EXPORT void StartTrace();
INT8FLOW_EXPORT Trace StopTrace();

// Per-op totals while kOpStats is on, by op ("Memcpy" for copies);
// ResetStats clears them.
struct OpTotals {
  int64_t count = 0;
  int64_t total_ns = 0;
  int64_t int8_ns = 0;
  int64_t bf16_ns = 0;
  int64_t fp32_ns = 0;
};
INT8FLOW_EXPORT void SetOpStats(bool enabled);
INT8FLOW_EXPORT std::map<std::string, OpTotals> OpTotalsByOp();
void ClearOpTotals();  // by ResetStats

// ---- whether the plugin is active in this process ---------------------------
struct LoadState {
  bool initialized = false;  // SE_InitPlugin ran in this process
  bool active = false;       // QCPU devices were registered
  std::string reason;        // why inert, when !active
  std::string plugin_path;   // the .so TensorFlow loaded
};
INT8FLOW_EXPORT void SetLoadState(const LoadState& state);
// Counts SE_InitPlugin calls in this process: 1 for the first. A second one
// means TF loaded the plugin again (another path to the same site-packages,
// TF issue #55497, or a second install); all installs share this counter
// because the runtime is loaded once per process, by soname.
INT8FLOW_EXPORT int CountPluginLoad();
INT8FLOW_EXPORT LoadState GetLoadState();

// ---- settings from the environment, parsed once -----------------------------
// A malformed value never aborts: it gives one warning and the default.
struct Settings {
  bool disabled = false;           // INT8FLOW_DISABLE
  int64_t memory_limit_bytes = 0;  // INT8FLOW_MEMORY_LIMIT_MB, 0 = none
  bool fusion = true;              // INT8FLOW_FUSION: the graph pass fuses ops
  bool op_stats = false;           // INT8FLOW_OP_STATS: per-op counters from the start
  // INT8FLOW_QUANTIZE=dynamic: the graph pass runs QCPU's MatMuls and
  // convolutions in INT8, with activation ranges found per call. Off by
  // default, so nobody's numerics change silently.
  bool quantize_dynamic = false;
  // INT8FLOW_PRECISION=bf16: QCPU's float MatMuls, BatchMatMuls, Einsums and
  // convolutions round their inputs and weights to bf16 and sum in f32. Off
  // by default; honoured only where oneDNN runs bf16 natively (CpuFeatures::bf16).
  bool precision_bf16 = false;
  int64_t profile_max_events = 200000;  // INT8FLOW_PROFILE_MAX_EVENTS: a trace's bound
  std::string dump_graphs;              // INT8FLOW_DUMP_GRAPHS: a folder for each pass's GraphDefs
  std::string test_fault;               // INT8FLOW_TEST_FAULT (tests only)
};
INT8FLOW_EXPORT const Settings& GetSettings();
// Whether the graph pass quantizes dynamically: INT8FLOW_QUANTIZE at first,
// then int8flow.enable_int8(). Graphs optimized later follow the new value.
INT8FLOW_EXPORT bool QuantizeDynamic();
INT8FLOW_EXPORT void SetQuantizeDynamic(bool enabled);
// Whether float kernels run bf16 now: INT8FLOW_PRECISION at first (with a
// warning, and off, on a CPU without native bf16), then int8flow.enable_bf16().
// Kernels read it per call, so a change applies to the next call of any
// graph. Setting it true on a CPU without native bf16 leaves it false.
INT8FLOW_EXPORT bool Bf16Enabled();
INT8FLOW_EXPORT void SetBf16Enabled(bool enabled);
// True when the tests asked to inject `fault` (see docs/architecture.md).
INT8FLOW_EXPORT bool FaultInjected(const char* fault);

// One line on stderr, prefixed "int8flow: "; repeated messages print once.
INT8FLOW_EXPORT void WarnOnce(const std::string& message);

// ---- the CPU, and the oneDNN that will run on it -----------------------------
struct CpuFeatures {
  std::string model;
  int logical_cores = 0;
  bool avx2 = false, fma = false, avx512f = false, avx512_vnni = false, avx512_bf16 = false,
       avx_vnni = false, amx_int8 = false, amx_bf16 = false;
  // oneDNN's view, from libdnnl.so.3 loaded lazily: empty when it cannot load.
  std::string onednn_version;
  std::string onednn_isa;    // e.g. "avx2", "avx512_core_vnni", "avx512_core_amx"
  std::string onednn_error;  // why oneDNN could not be loaded
  // How u8·s8 products are summed: "amx", "vnni" (one instruction into
  // int32), or "avx2" (vpmaddubsw's int16 pairs, which can saturate: weights
  // wider than 7 bits are packed halved, quantization.h); empty without oneDNN.
  std::string int8_path;
  // Whether oneDNN runs bf16 matmuls and convolutions natively here
  // (AVX512-BF16 or AMX in its effective ISA): what INT8FLOW_PRECISION=bf16 needs.
  bool bf16 = false;
  std::string openmp;        // what PrepareOpenMp did to the wait policy
  int threads = 0;           // oneDNN's OpenMP team size
  std::string threads_rule;  // which limit chose it (openmp.cc)
};
INT8FLOW_EXPORT const CpuFeatures& GetCpuFeatures();

// What PrepareOpenMp did: the wait policy, and the team size with its rule.
struct OpenMpSetup {
  std::string wait_policy;
  int threads = 0;
  std::string threads_rule;
};
// Sets oneDNN's OpenMP wait policy unless the user did, and its team size to
// the smallest of the CPU affinity mask, OMP_NUM_THREADS and
// TF_NUM_INTRAOP_THREADS, unless libgomp is already loaded (openmp.cc says
// why); call before anything loads oneDNN.
INT8FLOW_EXPORT const OpenMpSetup& PrepareOpenMp();

// The cores this process may run on: its affinity mask.
INT8FLOW_EXPORT int UsableCores();

// Physical memory visible to this process: RAM, capped by a cgroup limit.
INT8FLOW_EXPORT int64_t PhysicalMemoryBytes();
// Memory the OS could still give this process (MemAvailable).
INT8FLOW_EXPORT int64_t AvailableMemoryBytes();

}  // namespace int8flow::runtime
