#pragma once

#include "tensorflow/c/experimental/grappler/grappler.h"

namespace int8flow::graph {

// Registered when the core is not loaded: hands the graph back unchanged, so
// TF_InitGraph always succeeds (an error there would abort TF's import).
void RegisterPassThrough(TP_OptimizerRegistrationParams* params, const char* device_type);

}  // namespace int8flow::graph
