#pragma once

#include <string>

namespace int8flow::kernels {

// Runs one tiny oneDNN matmul and checks its answer, so a oneDNN that loads
// but cannot run here (a broken OpenMP runtime, an unsupported ISA) turns the
// device off at start-up instead of failing inside a model. Empty when fine.
std::string OneDnnSelfTest();

}  // namespace int8flow::kernels
