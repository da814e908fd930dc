// Drives the installed plugin's SP_StreamExecutor the way TF does, without TF
// in between, and checks what each call promises. Built and run by
// tests/test_stream_executor.py; prints "N passed, M failed" and exits 1 on a
// failure.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "tensorflow/c/experimental/stream_executor/stream_executor.h"

namespace {

int passed = 0, failed = 0;

void Check(bool ok, const std::string& what) {
  (ok ? passed : failed)++;
  if (!ok) std::printf("FAILED: %s\n", what.c_str());
}

struct Status {
  TF_Status* s = TF_NewStatus();
  ~Status() { TF_DeleteStatus(s); }
  bool ok() const { return TF_GetCode(s) == TF_OK; }
  std::string message() const { return TF_Message(s); }
};

struct Plugin {
  SP_Platform platform{SP_PLATFORM_STRUCT_SIZE};
  SP_PlatformFns fns{SP_PLATFORM_FNS_STRUCT_SIZE};
  SP_Device device{SP_DEVICE_STRUCT_SIZE};
  SP_StreamExecutor se{SP_STREAMEXECUTOR_STRUCT_SIZE};
  SP_TimerFns timer_fns{SP_TIMER_FNS_STRUCT_SIZE};
  int device_count = -1;
};

bool Load(const char* path, Plugin& p) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::printf("dlopen %s: %s\n", path, dlerror());
    return false;
  }
  auto init = reinterpret_cast<void (*)(SE_PlatformRegistrationParams*, TF_Status*)>(
      dlsym(lib, "SE_InitPlugin"));
  SE_PlatformRegistrationParams params{SE_PLATFORM_REGISTRATION_PARAMS_STRUCT_SIZE};
  params.platform = &p.platform;
  params.platform_fns = &p.fns;
  Status status;
  init(&params, status.s);
  Check(status.ok(), "SE_InitPlugin returns OK");
  Check(std::string(p.platform.type) == "QCPU" && std::string(p.platform.name) == "QCPU",
        "platform is QCPU");
  Check(p.platform.use_bfc_allocator && p.platform.force_memory_growth, "BFC with memory growth");
  p.fns.get_device_count(&p.platform, &p.device_count, status.s);
  Check(status.ok() && p.device_count == 1, "one QCPU device");
  SE_CreateDeviceParams device_params{SE_CREATE_DEVICE_PARAMS_STRUCT_SIZE};
  device_params.device = &p.device;
  p.fns.create_device(&p.platform, &device_params, status.s);
  Check(status.ok() && p.device.hardware_name != nullptr, "create_device");
  SE_CreateStreamExecutorParams se_params{SE_CREATE_STREAM_EXECUTOR_PARAMS_STRUCT_SIZE};
  se_params.stream_executor = &p.se;
  p.fns.create_stream_executor(&p.platform, &se_params, status.s);
  Check(status.ok(), "create_stream_executor");
  p.fns.create_timer_fns(&p.platform, &p.timer_fns, status.s);
  Check(status.ok() && p.timer_fns.nanoseconds != nullptr, "create_timer_fns");
  // Every SP_StreamExecutor member TF validates must be set.
  const void* const* member = reinterpret_cast<const void* const*>(&p.se.allocate);
  const void* const* end = reinterpret_cast<const void* const*>(&p.se.host_callback) + 1;
  int missing = 0;
  for (; member != end; ++member)
    if (*member == nullptr) ++missing;
  Check(missing == 2, "all SP_StreamExecutor functions set except unified memory (" +
                          std::to_string(missing) + " null)");
  return true;
}

SP_DeviceMemoryBase Allocate(Plugin& p, uint64_t size) {
  SP_DeviceMemoryBase mem{SP_DEVICE_MEMORY_BASE_STRUCT_SIZE};
  p.se.allocate(&p.device, size, 0, &mem);
  return mem;
}

void TestAllocation(Plugin& p) {
  const auto before = int8flow::runtime::Stats();
  std::vector<SP_DeviceMemoryBase> blocks;
  for (uint64_t size : {1u, 3u, 64u, 100u, 4097u, 1u << 20}) blocks.push_back(Allocate(p, size));
  bool aligned = true;
  for (auto& m : blocks) aligned &= m.opaque && reinterpret_cast<uintptr_t>(m.opaque) % 64 == 0;
  Check(aligned, "allocations are 64-byte aligned");
  SP_AllocatorStats stats{SP_ALLOCATORSTATS_STRUCT_SIZE};
  Check(p.se.get_allocator_stats(&p.device, &stats), "get_allocator_stats");
  Check(stats.num_allocs - before.num_allocs == 6, "num_allocs counts allocations");
  Check(stats.bytes_in_use - before.bytes_in_use >= (1 << 20) + 4097 + 100 + 64 + 3 + 1,
        "bytes_in_use covers every allocation");
  Check(stats.largest_alloc_size >= (1 << 20), "largest_alloc_size");
  Check(stats.has_bytes_limit && stats.bytes_limit > 0, "bytes_limit reported");
  int64_t free = 0, total = 0;
  Check(p.se.device_memory_usage(&p.device, &free, &total), "device_memory_usage");
  Check(total > 0 && free > 0 && free <= total, "free <= total, both positive");
  for (auto& m : blocks) p.se.deallocate(&p.device, &m);
  p.se.get_allocator_stats(&p.device, &stats);
  Check(stats.bytes_in_use == before.bytes_in_use, "deallocate returns every byte");
  SP_DeviceMemoryBase empty = Allocate(p, 0);
  Check(empty.opaque == nullptr && empty.size == 0, "zero-byte allocation is null");
  p.se.deallocate(&p.device, &empty);
  SP_DeviceMemoryBase huge = Allocate(p, uint64_t{1} << 62);
  Check(huge.opaque == nullptr, "allocation beyond the memory limit fails (null, not a crash)");
  void* host = p.se.host_memory_allocate(&p.device, 1000);
  Check(host && reinterpret_cast<uintptr_t>(host) % 64 == 0, "host memory is 64-byte aligned");
  p.se.host_memory_deallocate(&p.device, host);
}

// With INT8FLOW_MEMORY_LIMIT_MB set, the device reports that limit and keeps
// to it.
void TestMemoryLimit(Plugin& p, int64_t limit_mb) {
  const int64_t limit = limit_mb << 20;
  SP_AllocatorStats stats{SP_ALLOCATORSTATS_STRUCT_SIZE};
  p.se.get_allocator_stats(&p.device, &stats);
  Check(stats.bytes_limit == limit, "bytes_limit is INT8FLOW_MEMORY_LIMIT_MB");
  int64_t free = 0, total = 0;
  p.se.device_memory_usage(&p.device, &free, &total);
  Check(total == limit && free <= limit, "device_memory_usage total is the limit");
  SP_DeviceMemoryBase half = Allocate(p, limit / 2);
  Check(half.opaque != nullptr, "half the limit can be allocated");
  SP_DeviceMemoryBase over = Allocate(p, limit / 2 + (1 << 20));
  Check(over.opaque == nullptr, "going past the limit fails (null, not a crash)");
  p.se.deallocate(&p.device, &half);
}

void TestCopies(Plugin& p) {
  Status status;
  SP_Stream stream = nullptr;
  p.se.create_stream(&p.device, &stream, status.s);
  Check(status.ok() && stream, "create_stream");
  std::vector<uint8_t> src(1000), back(1000, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
  SP_DeviceMemoryBase a = Allocate(p, 1000), b = Allocate(p, 1000);
  int8flow::runtime::ResetStats();
  p.se.memcpy_htod(&p.device, stream, &a, src.data(), 1000, status.s);
  p.se.memcpy_dtod(&p.device, stream, &b, &a, 1000, status.s);
  p.se.memcpy_dtoh(&p.device, stream, back.data(), &b, 1000, status.s);
  Check(status.ok() && back == src, "htod -> dtod -> dtoh round trip");
  p.se.sync_memcpy_htod(&p.device, &a, src.data() + 500, 500, status.s);
  p.se.sync_memcpy_dtod(&p.device, &b, &a, 500, status.s);
  p.se.sync_memcpy_dtoh(&p.device, back.data(), &b, 500, status.s);
  Check(status.ok() && std::memcmp(back.data(), src.data() + 500, 500) == 0, "sync copies");
  const auto s = int8flow::runtime::Stats();
  Check(s.copies[0] == 2 && s.copies[1] == 2 && s.copies[2] == 2, "copies counted per kind");
  Check(s.copy_bytes[0] == 1500 && s.copy_bytes[1] == 1500 && s.copy_bytes[2] == 1500,
        "copy bytes counted per kind");

  p.se.memset(&p.device, stream, &a, 0xAB, 1000, status.s);
  p.se.memcpy_dtoh(&p.device, stream, back.data(), &a, 1000, status.s);
  Check(status.ok() && back[0] == 0xAB && back[999] == 0xAB, "memset");
  p.se.memset32(&p.device, stream, &a, 0xDEADBEEF, 1000, status.s);
  uint32_t word = 0;
  std::memcpy(&word, static_cast<char*>(a.opaque) + 996, 4);
  Check(status.ok() && word == 0xDEADBEEF, "memset32");
  p.se.mem_zero(&p.device, stream, &a, 1000, status.s);
  Check(status.ok() && static_cast<uint8_t*>(a.opaque)[500] == 0, "mem_zero");

  // Bad arguments are errors, never crashes, and poison only their stream.
  p.se.memset32(&p.device, stream, &a, 1, 7, status.s);
  Check(!status.ok(), "memset32 of 7 bytes is an error: " + status.message());
  p.se.get_stream_status(&p.device, stream, status.s);
  Check(!status.ok(), "a failed operation sticks to its stream");
  p.se.memcpy_htod(&p.device, stream, &a, src.data(), 10, status.s);
  Check(!status.ok(), "a failed stream refuses further work");
  SP_Stream fresh = nullptr;
  p.se.create_stream(&p.device, &fresh, status.s);
  p.se.memcpy_htod(&p.device, fresh, &a, src.data(), 2000, status.s);
  Check(!status.ok() && status.message().find("overruns") != std::string::npos,
        "copy past the allocation is refused: " + status.message());
  p.se.sync_memcpy_dtoh(&p.device, nullptr, &a, 10, status.s);
  Check(!status.ok(), "copy to a null pointer is refused");
  p.se.destroy_stream(&p.device, stream);
  p.se.destroy_stream(&p.device, fresh);
  p.se.deallocate(&p.device, &a);
  p.se.deallocate(&p.device, &b);
}

void TestEventsTimersCallbacks(Plugin& p) {
  Status status;
  SP_Stream stream = nullptr, other = nullptr;
  p.se.create_stream(&p.device, &stream, status.s);
  p.se.create_stream(&p.device, &other, status.s);
  SP_Event event = nullptr;
  p.se.create_event(&p.device, &event, status.s);
  Check(status.ok() && p.se.get_event_status(&p.device, event) == SE_EVENT_PENDING,
        "a new event is pending");
  p.se.record_event(&p.device, stream, event, status.s);
  Check(status.ok() && p.se.get_event_status(&p.device, event) == SE_EVENT_COMPLETE,
        "a recorded event is complete");
  p.se.wait_for_event(&p.device, other, event, status.s);
  Check(status.ok(), "wait_for_event");
  p.se.block_host_for_event(&p.device, event, status.s);
  Check(status.ok(), "block_host_for_event");
  p.se.create_stream_dependency(&p.device, other, stream, status.s);
  Check(status.ok(), "create_stream_dependency");
  p.se.destroy_event(&p.device, event);

  SP_Timer timer = nullptr;
  p.se.create_timer(&p.device, &timer, status.s);
  p.se.start_timer(&p.device, stream, timer, status.s);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  p.se.stop_timer(&p.device, stream, timer, status.s);
  const uint64_t ns = p.timer_fns.nanoseconds(timer);
  Check(status.ok() && ns >= 20'000'000 && ns < 2'000'000'000,
        "timer measures a 20 ms sleep (" + std::to_string(ns) + " ns)");
  p.se.destroy_timer(&p.device, timer);

  // Four threads submit numbered callbacks to one stream: each thread's
  // callbacks must run in the order it submitted them, and all must run.
  std::vector<std::vector<int>> seen(4);
  struct Arg {
    std::vector<int>* out;
    int value;
  };
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        auto* arg = new Arg{&seen[t], i};
        bool ok = p.se.host_callback(
            &p.device, stream,
            [](void* raw, TF_Status* s) {
              auto* a = static_cast<Arg*>(raw);
              a->out->push_back(a->value);
              delete a;
            },
            arg);
        if (!ok) refused++;
      }
    });
  }
  for (auto& th : threads) th.join();
  bool ordered = refused == 0;
  for (auto& v : seen) {
    ordered &= v.size() == 250;
    for (size_t i = 0; i < v.size(); ++i) ordered &= v[i] == static_cast<int>(i);
  }
  Check(ordered, "host callbacks run once each, in submission order, across threads");
  // A callback may submit to its own stream and synchronize (TF's done
  // callbacks start the next op): it must not deadlock.
  struct Reentry {
    Plugin* p;
    SP_Stream stream;
    bool ran = false, ok = false;
  } reentry{&p, stream};
  p.se.host_callback(
      &p.device, stream,
      [](void* raw, TF_Status*) {
        auto* r = static_cast<Reentry*>(raw);
        Status inner;
        SP_DeviceMemoryBase mem = Allocate(*r->p, 16);
        const char bytes[16] = "reentrant call";
        r->p->se.memcpy_htod(&r->p->device, r->stream, &mem, bytes, 16, inner.s);
        r->ok = inner.ok() && std::memcmp(mem.opaque, bytes, 16) == 0;
        r->p->se.synchronize_all_activity(&r->p->device, inner.s);
        r->ok &= inner.ok();
        r->p->se.deallocate(&r->p->device, &mem);
        r->ran = true;
      },
      &reentry);
  Check(reentry.ran && reentry.ok, "a host callback can use its own stream and synchronize");
  p.se.block_host_until_done(&p.device, stream, status.s);
  Check(status.ok(), "block_host_until_done");
  p.se.synchronize_all_activity(&p.device, status.s);
  Check(status.ok(), "synchronize_all_activity");
  p.se.destroy_stream(&p.device, stream);
  p.se.destroy_stream(&p.device, other);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::printf("usage: %s path/to/libint8flow_plugin.so [memory-limit-MiB]\n", argv[0]);
    return 2;
  }
  Plugin plugin;
  if (Load(argv[1], plugin) && plugin.device_count == 1) {
    if (argc == 3) {
      TestMemoryLimit(plugin, std::atoll(argv[2]));
    } else {
      TestAllocation(plugin);
      TestCopies(plugin);
    }
    TestEventsTimersCallbacks(plugin);
    plugin.fns.destroy_device(&plugin.platform, &plugin.device);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
