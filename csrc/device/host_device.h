// The QCPU device: host memory seen through TF's StreamExecutor C API.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "tensorflow/c/experimental/stream_executor/stream_executor.h"

namespace int8flow::device {

// What SP_Device::device_handle points to.
struct HostDevice {
  int ordinal = 0;
  std::string hardware_name;
  std::string vendor;
  int64_t memory_limit = 0;     // the most bytes this device may hold
  bool explicit_limit = false;  // set by INT8FLOW_MEMORY_LIMIT_MB
  // Stream operations in progress, for synchronize_all_activity.
  std::mutex activity_mu;
  std::condition_variable activity_done;
  int operations_in_flight = 0;
};

// Counts one stream operation as in flight on `device` while it lives.
class ActivityScope {
 public:
  explicit ActivityScope(HostDevice& device);
  ~ActivityScope();
  ActivityScope(const ActivityScope&) = delete;
  ActivityScope& operator=(const ActivityScope&) = delete;

  // Waits until every operation in flight has ended, except those of the
  // calling thread (a host callback may synchronize without deadlocking).
  static void WaitForOthers(HostDevice& device);

 private:
  HostDevice& device_;
};

inline HostDevice& Of(const SP_Device* device) {
  return *static_cast<HostDevice*>(device->device_handle);
}

// Every device allocation and stream is aligned to this (oneDNN's preference,
// and a full cache line so kernels never share lines across tensors).
inline constexpr uint64_t kAlignment = 64;

void FillDeviceFns(SP_DeviceFns* fns);
void FillStreamExecutor(SP_StreamExecutor* se);
void FillTimerFns(SP_TimerFns* fns);

}  // namespace int8flow::device
