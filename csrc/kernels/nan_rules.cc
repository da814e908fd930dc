#include "kernels/nan_rules.h"

#include <cmath>
#include <limits>

#include "kernels/shape_util.h"
#include "kernels/vector_loops.h"

namespace int8flow::kernels {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

INT8FLOW_VECTOR_CLONES bool AnyNaNIn(const float* x, int64_t n) {
  int found = 0;
#pragma omp simd reduction(| : found)
  for (int64_t i = 0; i < n; ++i) found |= x[i] != x[i];
  return found != 0;
}

// The comparisons are false for NaN, so NaN falls through both: no NaN test.
INT8FLOW_VECTOR_CLONES void ClampRange(const float* x, float* y, int64_t n, float lo, float hi) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] < lo ? lo : x[i];
    y[i] = v > hi ? hi : v;
  }
}

}  // namespace

bool AnyNaN(const float* x, int64_t n) {
  int found = 0;
  ForChunks(n, [&](int64_t begin, int64_t end, int) {
    if (AnyNaNIn(x + begin, end - begin)) {
#pragma omp atomic write
      found = 1;
    }
  });
  return found != 0;
}

void ClampKeepingNaN(const float* x, float* y, int64_t n, float lo, float hi) {
  ForChunks(n, [&](int64_t begin, int64_t end, int) {
    ClampRange(x + begin, y + begin, end - begin, lo, hi);
  });
}

void PropagateNaN(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (x[i] != x[i]) y[i] = x[i];
}

void PropagateReducedNaN(const float* x, const std::vector<int64_t>& in, float* out,
                         const std::vector<int64_t>& kept) {
  ForEachIndex(in, {BroadcastStrides(in, in), BroadcastStrides(kept, in)},
               [&](const std::vector<int64_t>& at) {
                 if (std::isnan(x[at[0]])) out[at[1]] = kNaN;
               });
}

}  // namespace int8flow::kernels
