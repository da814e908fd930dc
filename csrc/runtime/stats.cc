// Copy and allocation counters: lock-free, bumped from TF's executor threads.
#include <atomic>
#include <mutex>

#include "runtime/runtime.h"

namespace int8flow::runtime {
namespace {

struct Counters {
  std::atomic<uint64_t> copies[kNumCopyKinds]{};
  std::atomic<uint64_t> copy_bytes[kNumCopyKinds]{};
  std::atomic<int64_t> num_allocs{0};
  std::atomic<int64_t> bytes_in_use{0};
  std::atomic<int64_t> peak_bytes_in_use{0};
  std::atomic<int64_t> largest_alloc_size{0};
  std::atomic<int64_t> cache_entries[kNumCacheKinds]{};
  std::atomic<int64_t> cache_bytes[kNumCacheKinds]{};
};

Counters& counters() {
  static Counters instance;
  return instance;
}

void RaiseTo(std::atomic<int64_t>& target, int64_t value) {
  int64_t seen = target.load(std::memory_order_relaxed);
  while (value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// Counts by name that the graph pass records: fusions, ops left on CPU, its errors.
struct NamedCounts {
  std::mutex mutex;
  std::map<std::string, int64_t> counts;

  void Add(const std::string& name, int64_t count) {
    std::lock_guard<std::mutex> lock(mutex);
    counts[name] += count;
  }
  std::map<std::string, int64_t> Get() {
    std::lock_guard<std::mutex> lock(mutex);
    return counts;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex);
    counts.clear();
  }
};

NamedCounts& fusions() {
  static NamedCounts instance;
  return instance;
}

NamedCounts& cpu_ops() {
  static NamedCounts instance;
  return instance;
}

NamedCounts& pass_errors() {
  static NamedCounts instance;
  return instance;
}

}  // namespace

void RecordFusions(const std::string& pattern, int64_t count) { fusions().Add(pattern, count); }
std::map<std::string, int64_t> FusionCounts() { return fusions().Get(); }

namespace {
std::mutex fusion_table_mutex;
std::string& fusion_table() {
  static std::string instance;
  return instance;
}
}  // namespace

void SetFusionTable(std::string json) {
  std::lock_guard<std::mutex> lock(fusion_table_mutex);
  fusion_table() = std::move(json);
}

std::string FusionTable() {
  std::lock_guard<std::mutex> lock(fusion_table_mutex);
  return fusion_table();
}

void RecordCpuOp(const std::string& op) { cpu_ops().Add(op, 1); }
std::map<std::string, int64_t> CpuOpCounts() { return cpu_ops().Get(); }

void RecordPassError(const std::string& reason) { pass_errors().Add(reason, 1); }
std::map<std::string, int64_t> PassErrorCounts() { return pass_errors().Get(); }

void RecordCopy(CopyKind kind, uint64_t bytes) {
  const int i = static_cast<int>(kind);
  counters().copies[i].fetch_add(1, std::memory_order_relaxed);
  counters().copy_bytes[i].fetch_add(bytes, std::memory_order_relaxed);
}

void RecordAlloc(int64_t bytes) {
  Counters& c = counters();
  c.num_allocs.fetch_add(1, std::memory_order_relaxed);
  RaiseTo(c.peak_bytes_in_use, c.bytes_in_use.fetch_add(bytes) + bytes);
  RaiseTo(c.largest_alloc_size, bytes);
}

void RecordFree(int64_t bytes) { counters().bytes_in_use.fetch_sub(bytes); }

void RecordCacheChange(CacheKind kind, int64_t entries, int64_t bytes) {
  const int i = static_cast<int>(kind);
  counters().cache_entries[i].fetch_add(entries, std::memory_order_relaxed);
  counters().cache_bytes[i].fetch_add(bytes, std::memory_order_relaxed);
}

CacheUsage CacheUsageOf(CacheKind kind) {
  const int i = static_cast<int>(kind);
  return {counters().cache_entries[i].load(), counters().cache_bytes[i].load()};
}

StatsSnapshot Stats() {
  const Counters& c = counters();
  StatsSnapshot s{};
  for (int i = 0; i < kNumCopyKinds; ++i) {
    s.copies[i] = c.copies[i].load();
    s.copy_bytes[i] = c.copy_bytes[i].load();
  }
  s.num_allocs = c.num_allocs.load();
  s.bytes_in_use = c.bytes_in_use.load();
  s.peak_bytes_in_use = c.peak_bytes_in_use.load();
  s.largest_alloc_size = c.largest_alloc_size.load();
  return s;
}

void ResetStats() {
  Counters& c = counters();
  for (int i = 0; i < kNumCopyKinds; ++i) {
    c.copies[i] = 0;
    c.copy_bytes[i] = 0;
  }
  c.num_allocs = 0;
  c.largest_alloc_size = 0;
  c.peak_bytes_in_use = c.bytes_in_use.load();  // memory still held stays counted
  cpu_ops().Clear();
  ClearOpTotals();
}

}  // namespace int8flow::runtime
