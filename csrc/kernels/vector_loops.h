// Memory-bound element-wise loops outside oneDNN: how they are split over
// threads and compiled for every x86 vector width.
#pragma once

#include <omp.h>

#include <cstdint>

namespace int8flow::kernels {

// Below this many elements one thread is faster than waking a team.
constexpr int64_t kParallelElements = 1 << 16;

// Runs body(begin, end, part) over [0, n): on this thread when small, else
// split evenly over the OpenMP team. The loops themselves stay outside OpenMP
// so that their vector clones (below) are the code that runs.
template <class Body>
void ForChunks(int64_t n, Body body) {
  if (n <= kParallelElements) return body(0, n, 0);
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), teams = omp_get_num_threads();
    body(n * t / teams, n * (t + 1) / teams, static_cast<int>(t));
  }
}

// Each loop is compiled for AVX-512, AVX2 and baseline x86-64, picked at
// load time: memory-bound, it still runs at full vector width.
#define INT8FLOW_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

}  // namespace int8flow::kernels
