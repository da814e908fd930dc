// Memory-bound element-wise loops outside oneDNN: how they are split over
// threads and compiled for every x86 vector width.
#pragma once

#include <omp.h>

#include <algorithm>
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

// Runs body(first, last, part) over rows [0, rows) of `row_elements` each,
// split as ForChunks splits their elements: a part takes the rows that start
// in its chunk, so a row is never split.
template <class Body>
void ForRows(int64_t rows, int64_t row_elements, Body body) {
  const int64_t width = std::max<int64_t>(row_elements, 1);
  ForChunks(rows * width, [&](int64_t begin, int64_t end, int part) {
    body((begin + width - 1) / width, (end + width - 1) / width, part);
  });
}

// Each loop is compiled for AVX-512, AVX2 and baseline x86-64, picked at
// load time: memory-bound, it still runs at full vector width.
#define INT8FLOW_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

}  // namespace int8flow::kernels
