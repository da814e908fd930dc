// OpenMP wait policy for oneDNN's GNU OpenMP build, chosen before it loads.
//
// libgomp lets an idle worker spin only ~100 times (a few µs) before it
// sleeps on a futex whenever the process holds more OpenMP threads than
// cores. TF makes that the normal case: every thread that runs a oneDNN
// kernel (inter-op pool, eager caller) brings its own team. Waking a worker
// then costs 10-20 µs per primitive, more than a small layer's work:
// MobileNetV2 at batch 1 lost 0.7 ms of its 3.1 ms that way on 2 cores.
// OMP_WAIT_POLICY=ACTIVE lifts that spin to 1000 (~30 µs, enough to span the
// gap between two kernels); GOMP_SPINCOUNT bounds the spin of a process that
// is not oversubscribed (~0.5 ms, where ACTIVE alone spins for ever).
// libgomp reads both once, when it loads, so this runs before the first
// dlopen of oneDNN. A user's own setting of either is kept.
//
// The team size: libgomp takes OMP_NUM_THREADS, else the affinity mask's
// cores. A worker of Ray or Spark gets OMP_NUM_THREADS only, a pinned one
// (`int8flow launch`, taskset) a mask, and TF's own TF_NUM_INTRAOP_THREADS
// limits TF's pool but not OpenMP's: the smallest of the three wins, so a
// worker never runs more threads than it was given (docs/serving.md). TF's
// tf.config.threading setting never reaches a plugin through the C API.
#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "runtime/runtime.h"

namespace int8flow::runtime {
namespace {

// A count from the variable's first comma-separated value, or 0 if unset or
// not a positive number.
int CountIn(const char* name) {
  const char* raw = std::getenv(name);
  if (raw == nullptr) return 0;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(raw, &end, 10);
  const bool valid = end != raw && (*end == '\0' || *end == ',') && errno == 0;
  return valid && value > 0 && value < (1 << 20) ? static_cast<int>(value) : 0;
}

// The team size libgomp picks by itself: OMP_NUM_THREADS, else the mask.
int LibgompDefault() {
  const int user_count = CountIn("OMP_NUM_THREADS");
  return user_count > 0 ? user_count : UsableCores();
}

std::string WaitPolicy() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
    return "kept: OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user";
  setenv("OMP_WAIT_POLICY", "ACTIVE", 0);
  setenv("GOMP_SPINCOUNT", "30000", 0);
  return "set by int8flow: OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=30000";
}

void SetTeamSize(OpenMpSetup& setup) {
  const int cores = UsableCores();
  setup.threads = cores;
  setup.threads_rule =
      "CPU affinity mask: " + std::to_string(cores) + (cores == 1 ? " core" : " cores");
  for (const char* name : {"OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"}) {
    const int count = CountIn(name);
    if (count > 0 && count < setup.threads) {
      setup.threads = count;
      setup.threads_rule = std::string(name) + "=" + std::to_string(count);
    }
  }
  if (setup.threads == LibgompDefault()) return;
  if (const int user_count = CountIn("OMP_NUM_THREADS"); user_count > 0)
    setup.threads_rule += " (OMP_NUM_THREADS=" + std::to_string(user_count) + " lowered)";
  setenv("OMP_NUM_THREADS", std::to_string(setup.threads).c_str(), 1);
}

OpenMpSetup Decide() {
  OpenMpSetup setup;
  if (void* gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD)) {
    dlclose(gomp);  // drops only the reference RTLD_NOLOAD added
    setup.wait_policy =
        "unchanged: libgomp was loaded before int8flow, with its default wait policy";
    setup.threads = LibgompDefault();
    setup.threads_rule = "unchanged: libgomp was loaded before int8flow";
    return setup;
  }
  setup.wait_policy = WaitPolicy();
  SetTeamSize(setup);
  return setup;
}

}  // namespace

const OpenMpSetup& PrepareOpenMp() {
  static const OpenMpSetup setup = Decide();
  return setup;
}

}  // namespace int8flow::runtime
