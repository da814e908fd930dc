// SP_DeviceFns: what TF's cost model is told about the QCPU device.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "device/host_device.h"
#include "runtime/runtime.h"

namespace int8flow::device {
namespace {

// The device spans every core TF may use, so it has no single NUMA node.
int32_t GetNumaNode(const SP_Device*) { return -1; }

// Bytes per second, measured once with a 32 MiB copy (about 5 ms at start-up):
// a measured figure beats a guess for the cost model.
int64_t GetMemoryBandwidth(const SP_Device*) {
  static const int64_t bandwidth = [] {
    constexpr size_t kBytes = size_t{32} << 20;
    char* src = static_cast<char*>(std::aligned_alloc(kAlignment, kBytes));
    char* dst = static_cast<char*>(std::aligned_alloc(kAlignment, kBytes));
    if (src == nullptr || dst == nullptr) {
      std::free(src);
      std::free(dst);
      return int64_t{10} << 30;
    }
    std::memset(src, 1, kBytes);
    std::memset(dst, 0, kBytes);  // fault the pages in before timing
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(dst, src, kBytes);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::free(src);
    std::free(dst);
    return static_cast<int64_t>(2.0 * kBytes / std::max(seconds, 1e-6));  // read + write
  }();
  return bandwidth;
}

double MaxGigahertz() {
  std::ifstream max_khz("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  double khz = 0;
  if (max_khz >> khz && khz > 0) return khz / 1e6;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("cpu MHz", 0) == 0)
      return std::atof(line.substr(line.find(':') + 1).c_str()) / 1e3;
  }
  return 2.0;
}

// Peak FP32: cores x GHz x FLOPs per cycle (two FMA ports of 8 or 16 lanes).
double GetGflops(const SP_Device*) {
  const runtime::CpuFeatures& cpu = runtime::GetCpuFeatures();
  const double flops_per_cycle = cpu.avx512f ? 64.0 : 32.0;
  return cpu.logical_cores * MaxGigahertz() * flops_per_cycle;
}

}  // namespace

void FillDeviceFns(SP_DeviceFns* fns) {
  fns->struct_size = SP_DEVICE_FNS_STRUCT_SIZE;
  fns->get_numa_node = GetNumaNode;
  fns->get_memory_bandwidth = GetMemoryBandwidth;
  fns->get_gflops = GetGflops;
}

}  // namespace int8flow::device
