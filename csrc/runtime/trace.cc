// Kernel and copy events: the buffer a profiler session fills, and per-op
// totals. Only reached when RecordingMode() is non-zero.
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <mutex>

#include "runtime/runtime.h"

namespace int8flow::runtime {

// Zero until asked: reading settings here, at load time, would freeze them
// before a program that imports int8flow first sets INT8FLOW_* variables.
std::atomic<int> recording_mode{0};

namespace {

struct TraceBuffer {
  std::mutex mutex;
  std::vector<TraceEvent> events;
  size_t capacity = 0;
  uint64_t dropped = 0;
};

TraceBuffer& trace_buffer() {
  static TraceBuffer instance;
  return instance;
}

struct OpTotalsTable {
  std::mutex mutex;
  std::map<std::string, OpTotals> by_op;
};

OpTotalsTable& op_totals() {
  static OpTotalsTable instance;
  return instance;
}

void SetBit(int bit, bool on) {
  if (on)
    recording_mode.fetch_or(bit);
  else
    recording_mode.fetch_and(~bit);
}

}  // namespace

int64_t NowNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void RecordEvent(TraceEvent&& event) {
  const int mode = RecordingMode();
  if (mode & kOpStats) {
    const int64_t ns = event.end_ns - event.start_ns;
    OpTotalsTable& table = op_totals();
    std::lock_guard<std::mutex> lock(table.mutex);
    OpTotals& totals = table.by_op[event.op];
    totals.count += 1;
    totals.total_ns += ns;
    if (event.kind == TraceEvent::kKernel)
      (event.precision == "int8"   ? totals.int8_ns
       : event.precision == "bf16" ? totals.bf16_ns
                                   : totals.fp32_ns) += ns;
  }
  if (mode & kTraceSession) {
    event.thread_id = static_cast<uint64_t>(syscall(SYS_gettid));
    TraceBuffer& buffer = trace_buffer();
    std::lock_guard<std::mutex> lock(buffer.mutex);
    if (buffer.events.size() < buffer.capacity)
      buffer.events.push_back(std::move(event));
    else
      buffer.dropped += 1;
  }
}

void StartTrace() {
  TraceBuffer& buffer = trace_buffer();
  {
    std::lock_guard<std::mutex> lock(buffer.mutex);
    buffer.events.clear();
    buffer.capacity = static_cast<size_t>(GetSettings().profile_max_events);
    buffer.dropped = 0;
  }
  SetBit(kTraceSession, true);
}

Trace StopTrace() {
  SetBit(kTraceSession, false);
  TraceBuffer& buffer = trace_buffer();
  std::lock_guard<std::mutex> lock(buffer.mutex);
  Trace trace{std::move(buffer.events), buffer.dropped};
  buffer.events = {};
  buffer.dropped = 0;
  if (trace.dropped > 0)
    WarnOnce("the profile kept its first " + std::to_string(trace.events.size()) +
             " QCPU events and dropped " + std::to_string(trace.dropped) +
             " (raise INT8FLOW_PROFILE_MAX_EVENTS to keep more)");
  return trace;
}

void SetOpStats(bool enabled) { SetBit(kOpStats, enabled); }

std::map<std::string, OpTotals> OpTotalsByOp() {
  OpTotalsTable& table = op_totals();
  std::lock_guard<std::mutex> lock(table.mutex);
  return table.by_op;
}

void ClearOpTotals() {
  OpTotalsTable& table = op_totals();
  std::lock_guard<std::mutex> lock(table.mutex);
  table.by_op.clear();
}

}  // namespace int8flow::runtime
