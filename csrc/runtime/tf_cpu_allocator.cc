// Which allocator TF gives its own CPU tensors, chosen when QCPU activates.
//
// TF's oneDNN build serves every CPU tensor of 4 KiB or more from a BFC pool
// (MklCPUAllocator) that keeps each region it grew, for the life of the
// process. Stock TF reuses those buffers, as its variables and activations
// live there. With QCPU active the large CPU tensors are transient: the
// values a checkpoint restore reads, each copied to its QCPU variable, and a
// call's inputs and fetched outputs. The pool then keeps their peak: loading
// BERT-4 (199 MiB of variables) left 258 MiB pooled on the CPU beside the
// variables on QCPU, RSS 1160 MiB against stock TF's 934.
//
// TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 sends them to malloc, which TF reads once,
// at its first CPU allocation (after SE_InitPlugin). That alone is not
// enough: glibc raises its mmap threshold to the size of each large block
// freed (up to 32 MiB), and later blocks come from, and stay in, its heap
// (50 restores of 4 MiB tensors: +520 MiB free but resident). A fixed
// threshold of 1 MiB keeps larger blocks as mappings, unmapped on free: the
// same restore then adds nothing. The price is page faults on each large
// CPU tensor (a batch's input), under 0.2 ms per MiB. A user's own setting of
// either (TF's variable, or glibc's MALLOC_MMAP_THRESHOLD_ / GLIBC_TUNABLES
// mmap_threshold) is kept.
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/runtime.h"

namespace int8flow::runtime {
namespace {

constexpr int kMmapThreshold = 1 << 20;

bool UserSetMmapThreshold() {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) return true;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr && std::strstr(tunables, "glibc.malloc.mmap_threshold") != nullptr;
}

}  // namespace

std::string UseSystemAllocatorForTfCpuTensors() {
  constexpr const char* kName = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR";
  if (const char* user = std::getenv(kName))
    return std::string("kept: ") + kName + "=" + user + " set by the user";
  setenv(kName, "1", 0);
  std::string said = std::string("malloc, set by int8flow: ") + kName + "=1";
  if (UserSetMmapThreshold()) return said + "; glibc's mmap threshold kept as the user set it";
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1)
    return said + "; glibc refused a fixed mmap threshold";
  return said + ", glibc mmap threshold fixed at 1 MiB";
}

}  // namespace int8flow::runtime
