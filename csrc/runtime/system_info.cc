// What the machine offers: CPU features, the oneDNN that will run, memory.
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "oneapi/dnnl/dnnl_types.h"
#include "runtime/runtime.h"

namespace int8flow::runtime {
namespace {

std::string CpuModelName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return "unknown CPU";
}

const char* OneDnnIsaName(int isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2_vnni_2: return "avx2_vnni_2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_fp16: return "avx512_core_fp16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_amx_fp16: return "avx512_core_amx_fp16";
    default: return "unknown";
  }
}

// oneDNN is opened lazily, by soname through this library's RUNPATH, so that
// a missing or broken libdnnl is a reason to report, not a failed import.
void QueryOneDnn(CpuFeatures& cpu) {
  if (FaultInjected("onednn_missing")) {
    cpu.onednn_error = "libdnnl.so.3: cannot open (INT8FLOW_TEST_FAULT=onednn_missing)";
    return;
  }
  const OpenMpSetup& openmp = PrepareOpenMp();
  cpu.openmp = openmp.wait_policy;
  cpu.threads = openmp.threads;
  cpu.threads_rule = openmp.threads_rule;
  void* lib = dlopen("libdnnl.so.3", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    cpu.onednn_error = dlerror();
    return;
  }
  using VersionFn = const dnnl_version_t* (*)();
  using IsaFn = dnnl_cpu_isa_t (*)();
  auto version_fn = reinterpret_cast<VersionFn>(dlsym(lib, "dnnl_version"));
  auto isa_fn = reinterpret_cast<IsaFn>(dlsym(lib, "dnnl_get_effective_cpu_isa"));
  if (version_fn == nullptr || isa_fn == nullptr) {
    cpu.onednn_error = "libdnnl.so.3 lacks dnnl_version/dnnl_get_effective_cpu_isa";
    return;  // the handle stays open: dlclose of oneDNN is unsafe with OpenMP
  }
  const dnnl_version_t* v = version_fn();
  cpu.onednn_version =
      std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  if (v->major != 3) {
    cpu.onednn_error = "oneDNN " + cpu.onednn_version + " found, int8flow needs 3.x";
    return;
  }
  const dnnl_cpu_isa_t isa = isa_fn();
  cpu.onednn_isa = OneDnnIsaName(isa);
  // Each ISA value is a set of feature bits: one that holds all of VNNI's
  // (or AMX's) has it, newer ISAs included.
  const auto has = [isa](dnnl_cpu_isa_t feature) { return (isa & feature) == feature; };
  cpu.int8_path = has(dnnl_cpu_isa_avx512_core_amx)                                   ? "amx"
                  : has(dnnl_cpu_isa_avx512_core_vnni) || has(dnnl_cpu_isa_avx2_vnni) ? "vnni"
                                                                                      : "avx2";
  cpu.bf16 = has(dnnl_cpu_isa_avx512_core_bf16);
}

CpuFeatures DetectCpu() {
  CpuFeatures cpu;
  cpu.model = CpuModelName();
  cpu.logical_cores = UsableCores();
  __builtin_cpu_init();
  cpu.avx2 = __builtin_cpu_supports("avx2") && !FaultInjected("no_avx2");
  cpu.fma = __builtin_cpu_supports("fma");
  cpu.avx512f = __builtin_cpu_supports("avx512f");
  cpu.avx512_vnni = __builtin_cpu_supports("avx512vnni");
  cpu.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  cpu.avx_vnni = __builtin_cpu_supports("avxvnni");
  cpu.amx_int8 = __builtin_cpu_supports("amx-int8");
  cpu.amx_bf16 = __builtin_cpu_supports("amx-bf16");
  QueryOneDnn(cpu);
  return cpu;
}

// First number in `path`, or -1 ("max" in cgroup files reads as no limit).
int64_t ReadNumber(const char* path) {
  std::ifstream in(path);
  long long value = -1;
  if (in >> value) return value;
  return -1;
}

int64_t CgroupLimitBytes() {
  int64_t v2 = ReadNumber("/sys/fs/cgroup/memory.max");
  if (v2 > 0) return v2;
  int64_t v1 = ReadNumber("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  return v1 > 0 && v1 < (int64_t{1} << 60) ? v1 : -1;
}

}  // namespace

int UsableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = DetectCpu();
  return features;
}

int64_t PhysicalMemoryBytes() {
  const int64_t ram = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  const int64_t cgroup = CgroupLimitBytes();
  return cgroup > 0 ? std::min(ram, cgroup) : ram;
}

int64_t AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long long kib = 0;
  std::string unit;
  int64_t available = -1;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") {
      available = static_cast<int64_t>(kib) * 1024;
      break;
    }
  }
  if (available < 0)
    available = static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  const int64_t cgroup = CgroupLimitBytes();
  if (cgroup > 0) {
    const int64_t used = std::max<int64_t>(0, ReadNumber("/sys/fs/cgroup/memory.current"));
    available = std::min(available, cgroup - used);
  }
  return std::max<int64_t>(0, available);
}

}  // namespace int8flow::runtime
