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
#include <dlfcn.h>

#include <cstdlib>

#include "runtime/runtime.h"

namespace int8flow::runtime {
namespace {

std::string Decide() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
    return "kept: OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user";
  if (void* gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD)) {
    dlclose(gomp);  // drops only the reference RTLD_NOLOAD added
    return "unchanged: libgomp was loaded before int8flow, with its default wait policy";
  }
  setenv("OMP_WAIT_POLICY", "ACTIVE", 0);
  setenv("GOMP_SPINCOUNT", "30000", 0);
  return "set by int8flow: OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=30000";
}

}  // namespace

const std::string& PrepareOpenMp() {
  static const std::string outcome = Decide();
  return outcome;
}

}  // namespace int8flow::runtime
