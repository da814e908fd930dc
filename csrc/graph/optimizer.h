#pragma once

#include "tensorflow/c/experimental/grappler/grappler.h"

namespace int8flow::graph {

// Registers the QCPU Grappler pass (core side of TF_InitGraph).
void InitGraph(TP_OptimizerRegistrationParams* params, TF_Status* status);

}  // namespace int8flow::graph
