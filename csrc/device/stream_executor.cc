// SP_StreamExecutor for QCPU.
//
// Streams complete their work at submission. Our kernels run synchronously on
// TF's executor threads and read their inputs straight from memory, so any
// copy a stream had still queued would race with them: finishing each
// operation before returning is what makes "the stream is done" true when the
// next kernel starts. Each stream takes its operations one at a time under
// its own lock, so work runs in submission order even when several threads
// submit to one stream, and events and timers record real completion times.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "common/tf_status.h"
#include "device/host_device.h"
#include "runtime/runtime.h"

struct SP_Stream_st {
  // One operation at a time, in submission order. Recursive because a host
  // callback may submit more work to its own stream, as on a GPU.
  std::recursive_mutex order;
  TF_Code code = TF_OK;  // sticky: the first failure poisons the stream
  std::string message;
};

struct SP_Event_st {
  std::mutex mu;
  bool recorded = false;
  uint64_t recorded_ns = 0;
};

struct SP_Timer_st {
  uint64_t start_ns = 0;
  uint64_t stop_ns = 0;
};

namespace int8flow::device {
namespace {

using runtime::CopyKind;

uint64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Runs `work` on `stream` in submission order. `work` returns an empty string
// on success or the reason it failed, which then sticks to the stream.
template <typename Work>
void OnStream(const SP_Device* device, SP_Stream stream, TF_Status* status, Work&& work) {
  if (stream == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Stream");
  ActivityScope active(Of(device));
  std::lock_guard<std::recursive_mutex> in_order(stream->order);
  if (stream->code != TF_OK) return SetError(status, stream->code, stream->message);
  const std::string error = work();
  if (error.empty()) return SetOk(status);
  stream->code = TF_INTERNAL;
  stream->message = error;
  SetError(status, TF_INTERNAL, error);
}

// Checks a copy's arguments; empty when it may proceed.
std::string CheckCopy(const void* dst, const void* src, uint64_t size, uint64_t dst_capacity,
                      uint64_t src_capacity) {
  if (size == 0) return "";
  if (dst == nullptr || src == nullptr)
    return "copy of " + std::to_string(size) + " bytes with a null pointer";
  if (size > dst_capacity || size > src_capacity)
    return "copy of " + std::to_string(size) + " bytes overruns a " +
           std::to_string(std::min(dst_capacity, src_capacity)) + "-byte allocation";
  return "";
}

constexpr uint64_t kUnknownCapacity = UINT64_MAX;  // host pointers carry no size

std::string Copy(CopyKind kind, void* dst, const void* src, uint64_t size, uint64_t dst_capacity,
                 uint64_t src_capacity) {
  std::string error = CheckCopy(dst, src, size, dst_capacity, src_capacity);
  if (!error.empty()) return error;
  const bool recording = runtime::RecordingMode() != 0;
  const int64_t start_ns = recording ? runtime::NowNanos() : 0;
  if (size > 0 && dst != src) std::memmove(dst, src, size);
  runtime::RecordCopy(kind, size);
  if (recording) {
    static const char* const kDirections[runtime::kNumCopyKinds] = {"MemcpyHtoD", "MemcpyDtoH",
                                                                    "MemcpyDtoD"};
    runtime::TraceEvent event;
    event.kind = runtime::TraceEvent::kCopy;
    event.name = kDirections[static_cast<int>(kind)];
    event.op = "Memcpy";
    event.bytes = size;
    event.start_ns = start_ns;
    event.end_ns = runtime::NowNanos();
    runtime::RecordEvent(std::move(event));
  }
  return "";
}

std::string Fill(SP_DeviceMemoryBase* location, uint64_t size, uint32_t pattern, int width) {
  if (size == 0) return "";
  if (location == nullptr || location->opaque == nullptr) return "memset on a null allocation";
  if (size > location->size)
    return "memset of " + std::to_string(size) + " bytes overruns a " +
           std::to_string(location->size) + "-byte allocation";
  if (width == 1) {
    std::memset(location->opaque, static_cast<int>(pattern & 0xff), size);
    return "";
  }
  if (size % 4 != 0) return "memset32 size " + std::to_string(size) + " is not a multiple of 4";
  auto* words = static_cast<uint32_t*>(location->opaque);
  for (uint64_t i = 0; i < size / 4; ++i) words[i] = pattern;
  return "";
}

// ---- allocation ----------------------------------------------------------
void Allocate(const SP_Device* device, uint64_t size, int64_t /*memory_space*/,
              SP_DeviceMemoryBase* mem) {
  mem->struct_size = SP_DEVICE_MEMORY_BASE_STRUCT_SIZE;
  mem->opaque = nullptr;
  mem->size = 0;
  mem->payload = 0;
  if (size == 0) return;
  const uint64_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  // TF reads a null opaque pointer as out-of-memory and reports it properly.
  if (static_cast<int64_t>(rounded) > Of(device).memory_limit - runtime::Stats().bytes_in_use)
    return;
  void* ptr = std::aligned_alloc(kAlignment, rounded);
  if (ptr == nullptr) return;
  mem->opaque = ptr;
  mem->size = size;
  mem->payload = rounded;  // what RecordFree must give back
  runtime::RecordAlloc(static_cast<int64_t>(rounded));
}

void Deallocate(const SP_Device*, SP_DeviceMemoryBase* mem) {
  if (mem == nullptr || mem->opaque == nullptr) return;
  std::free(mem->opaque);
  runtime::RecordFree(static_cast<int64_t>(mem->payload));
  mem->opaque = nullptr;
}

void* HostAllocate(const SP_Device*, uint64_t size) {
  return std::aligned_alloc(kAlignment, (size + kAlignment - 1) / kAlignment * kAlignment);
}

void HostDeallocate(const SP_Device*, void* mem) { std::free(mem); }

TF_Bool GetAllocatorStats(const SP_Device* device, SP_AllocatorStats* stats) {
  const runtime::StatsSnapshot s = runtime::Stats();
  stats->struct_size = SP_ALLOCATORSTATS_STRUCT_SIZE;
  stats->num_allocs = s.num_allocs;
  stats->bytes_in_use = s.bytes_in_use;
  stats->peak_bytes_in_use = s.peak_bytes_in_use;
  stats->largest_alloc_size = s.largest_alloc_size;
  stats->has_bytes_limit = 1;
  stats->bytes_limit = Of(device).memory_limit;
  stats->bytes_reserved = 0;
  stats->peak_bytes_reserved = 0;
  stats->has_bytes_reservable_limit = 0;
  stats->bytes_reservable_limit = 0;
  stats->largest_free_block_bytes = 0;
  return true;
}

TF_Bool DeviceMemoryUsage(const SP_Device* device, int64_t* free, int64_t* total) {
  const HostDevice& d = Of(device);
  *total = d.memory_limit;
  *free = std::max<int64_t>(
      0, std::min(d.memory_limit - runtime::Stats().bytes_in_use, runtime::AvailableMemoryBytes()));
  return true;
}

// ---- streams -------------------------------------------------------------
void CreateStream(const SP_Device*, SP_Stream* stream, TF_Status* status) {
  *stream = new SP_Stream_st;
  SetOk(status);
}

void DestroyStream(const SP_Device*, SP_Stream stream) { delete stream; }

// `dependent` must not run ahead of work already submitted to `other`; that
// work has finished once `other`'s lock is free. Locks are taken one after
// the other, never nested, so two streams depending on each other cannot
// deadlock.
void CreateStreamDependency(const SP_Device* device, SP_Stream dependent, SP_Stream other,
                            TF_Status* status) {
  if (other == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Stream");
  {
    std::lock_guard<std::recursive_mutex> drain(other->order);
  }
  OnStream(device, dependent, status, [] { return std::string(); });
}

void GetStreamStatus(const SP_Device*, SP_Stream stream, TF_Status* status) {
  if (stream == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Stream");
  std::lock_guard<std::recursive_mutex> in_order(stream->order);
  if (stream->code == TF_OK) return SetOk(status);
  SetError(status, stream->code, stream->message);
}

// ---- events --------------------------------------------------------------
void CreateEvent(const SP_Device*, SP_Event* event, TF_Status* status) {
  *event = new SP_Event_st;
  SetOk(status);
}

void DestroyEvent(const SP_Device*, SP_Event event) { delete event; }

SE_EventStatus GetEventStatus(const SP_Device*, SP_Event event) {
  if (event == nullptr) return SE_EVENT_ERROR;
  std::lock_guard<std::mutex> lock(event->mu);
  return event->recorded ? SE_EVENT_COMPLETE : SE_EVENT_PENDING;
}

void RecordEvent(const SP_Device* device, SP_Stream stream, SP_Event event, TF_Status* status) {
  if (event == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Event");
  OnStream(device, stream, status, [&] {
    std::lock_guard<std::mutex> lock(event->mu);
    event->recorded = true;  // everything submitted before it has completed
    event->recorded_ns = NowNanos();
    return std::string();
  });
}

// Work recorded before `event` completed when it was recorded; an event never
// recorded has nothing to wait for (CUDA's rule too).
void WaitForEvent(const SP_Device* device, SP_Stream stream, SP_Event event, TF_Status* status) {
  if (event == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Event");
  OnStream(device, stream, status, [] { return std::string(); });
}

void BlockHostForEvent(const SP_Device*, SP_Event event, TF_Status* status) {
  if (event == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Event");
  SetOk(status);
}

// ---- timers --------------------------------------------------------------
void CreateTimer(const SP_Device*, SP_Timer* timer, TF_Status* status) {
  *timer = new SP_Timer_st;
  SetOk(status);
}

void DestroyTimer(const SP_Device*, SP_Timer timer) { delete timer; }

void StartTimer(const SP_Device* device, SP_Stream stream, SP_Timer timer, TF_Status* status) {
  if (timer == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Timer");
  OnStream(device, stream, status, [&] {
    timer->start_ns = NowNanos();
    timer->stop_ns = 0;
    return std::string();
  });
}

void StopTimer(const SP_Device* device, SP_Stream stream, SP_Timer timer, TF_Status* status) {
  if (timer == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Timer");
  OnStream(device, stream, status, [&] {
    timer->stop_ns = NowNanos();
    return std::string();
  });
}

uint64_t TimerNanoseconds(SP_Timer timer) {
  if (timer == nullptr || timer->stop_ns < timer->start_ns) return 0;
  return timer->stop_ns - timer->start_ns;
}

// ---- copies and fills ----------------------------------------------------
void MemcpyDtoH(const SP_Device* device, SP_Stream stream, void* host_dst,
                const SP_DeviceMemoryBase* device_src, uint64_t size, TF_Status* status) {
  OnStream(device, stream, status, [&] {
    return Copy(CopyKind::kDeviceToHost, host_dst, device_src->opaque, size, kUnknownCapacity,
                device_src->size);
  });
}

void MemcpyHtoD(const SP_Device* device, SP_Stream stream, SP_DeviceMemoryBase* device_dst,
                const void* host_src, uint64_t size, TF_Status* status) {
  OnStream(device, stream, status, [&] {
    return Copy(CopyKind::kHostToDevice, device_dst->opaque, host_src, size, device_dst->size,
                kUnknownCapacity);
  });
}

void MemcpyDtoD(const SP_Device* device, SP_Stream stream, SP_DeviceMemoryBase* device_dst,
                const SP_DeviceMemoryBase* device_src, uint64_t size, TF_Status* status) {
  OnStream(device, stream, status, [&] {
    return Copy(CopyKind::kDeviceToDevice, device_dst->opaque, device_src->opaque, size,
                device_dst->size, device_src->size);
  });
}

// The synchronous copies use no stream; they still report bad arguments.
void Report(TF_Status* status, const std::string& error) {
  if (error.empty()) return SetOk(status);
  SetError(status, TF_INVALID_ARGUMENT, error);
}

void SyncMemcpyDtoH(const SP_Device*, void* host_dst, const SP_DeviceMemoryBase* device_src,
                    uint64_t size, TF_Status* status) {
  Report(status, Copy(CopyKind::kDeviceToHost, host_dst, device_src->opaque, size, kUnknownCapacity,
                      device_src->size));
}

void SyncMemcpyHtoD(const SP_Device*, SP_DeviceMemoryBase* device_dst, const void* host_src,
                    uint64_t size, TF_Status* status) {
  Report(status, Copy(CopyKind::kHostToDevice, device_dst->opaque, host_src, size, device_dst->size,
                      kUnknownCapacity));
}

void SyncMemcpyDtoD(const SP_Device*, SP_DeviceMemoryBase* device_dst,
                    const SP_DeviceMemoryBase* device_src, uint64_t size, TF_Status* status) {
  Report(status, Copy(CopyKind::kDeviceToDevice, device_dst->opaque, device_src->opaque, size,
                      device_dst->size, device_src->size));
}

void MemZero(const SP_Device* device, SP_Stream stream, SP_DeviceMemoryBase* location,
             uint64_t size, TF_Status* status) {
  OnStream(device, stream, status, [&] { return Fill(location, size, 0, 1); });
}

void Memset(const SP_Device* device, SP_Stream stream, SP_DeviceMemoryBase* location,
            uint8_t pattern, uint64_t size, TF_Status* status) {
  OnStream(device, stream, status, [&] { return Fill(location, size, pattern, 1); });
}

void Memset32(const SP_Device* device, SP_Stream stream, SP_DeviceMemoryBase* location,
              uint32_t pattern, uint64_t size, TF_Status* status) {
  OnStream(device, stream, status, [&] { return Fill(location, size, pattern, 4); });
}

// ---- synchronisation -----------------------------------------------------
void BlockHostUntilDone(const SP_Device* device, SP_Stream stream, TF_Status* status) {
  if (stream == nullptr) return SetError(status, TF_INVALID_ARGUMENT, "null SP_Stream");
  GetStreamStatus(device, stream, status);  // takes the stream lock: in-flight work ends first
}

void SynchronizeAllActivity(const SP_Device* device, TF_Status* status) {
  ActivityScope::WaitForOthers(Of(device));
  SetOk(status);
}

// The callback runs after everything submitted before it, before this call
// returns, and is told the stream's status (it runs on a failed stream too, so
// that whoever waits on it learns of the failure).
TF_Bool HostCallback(const SP_Device* device, SP_Stream stream, SE_StatusCallbackFn callback_fn,
                     void* callback_arg) {
  if (stream == nullptr || callback_fn == nullptr) return false;
  ActivityScope active(Of(device));
  std::lock_guard<std::recursive_mutex> in_order(stream->order);
  OwnedStatus stream_status;
  if (stream->code != TF_OK) SetError(stream_status.get(), stream->code, stream->message);
  callback_fn(callback_arg, stream_status.get());
  return true;
}

// Operations the calling thread has in flight (QCPU has one device).
thread_local int operations_of_this_thread = 0;

}  // namespace

ActivityScope::ActivityScope(HostDevice& device) : device_(device) {
  std::lock_guard<std::mutex> lock(device_.activity_mu);
  ++device_.operations_in_flight;
  ++operations_of_this_thread;
}

ActivityScope::~ActivityScope() {
  std::lock_guard<std::mutex> lock(device_.activity_mu);
  --device_.operations_in_flight;
  --operations_of_this_thread;
  device_.activity_done.notify_all();
}

void ActivityScope::WaitForOthers(HostDevice& device) {
  std::unique_lock<std::mutex> lock(device.activity_mu);
  device.activity_done.wait(
      lock, [&] { return device.operations_in_flight <= operations_of_this_thread; });
}

void FillStreamExecutor(SP_StreamExecutor* se) {
  se->struct_size = SP_STREAMEXECUTOR_STRUCT_SIZE;
  se->allocate = Allocate;
  se->deallocate = Deallocate;
  se->host_memory_allocate = HostAllocate;
  se->host_memory_deallocate = HostDeallocate;
  se->unified_memory_allocate = nullptr;  // SP_Platform says no unified memory
  se->unified_memory_deallocate = nullptr;
  se->get_allocator_stats = GetAllocatorStats;
  se->device_memory_usage = DeviceMemoryUsage;
  se->create_stream = CreateStream;
  se->destroy_stream = DestroyStream;
  se->create_stream_dependency = CreateStreamDependency;
  se->get_stream_status = GetStreamStatus;
  se->create_event = CreateEvent;
  se->destroy_event = DestroyEvent;
  se->get_event_status = GetEventStatus;
  se->record_event = RecordEvent;
  se->wait_for_event = WaitForEvent;
  se->create_timer = CreateTimer;
  se->destroy_timer = DestroyTimer;
  se->start_timer = StartTimer;
  se->stop_timer = StopTimer;
  se->memcpy_dtoh = MemcpyDtoH;
  se->memcpy_htod = MemcpyHtoD;
  se->memcpy_dtod = MemcpyDtoD;
  se->sync_memcpy_dtoh = SyncMemcpyDtoH;
  se->sync_memcpy_htod = SyncMemcpyHtoD;
  se->sync_memcpy_dtod = SyncMemcpyDtoD;
  se->block_host_for_event = BlockHostForEvent;
  se->block_host_until_done = BlockHostUntilDone;
  se->synchronize_all_activity = SynchronizeAllActivity;
  se->mem_zero = MemZero;
  se->memset = Memset;
  se->memset32 = Memset32;
  se->host_callback = HostCallback;
}

void FillTimerFns(SP_TimerFns* fns) {
  fns->struct_size = SP_TIMER_FNS_STRUCT_SIZE;
  fns->nanoseconds = TimerNanoseconds;
}

}  // namespace int8flow::device
