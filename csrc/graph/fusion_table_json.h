// The fusion table as JSON, for tests and tools outside the pass
// (int8flow._native.fusion_table(); tests/golden_graphs.py builds one graph
// per row from it).
#pragma once

#include <string>

namespace int8flow::graph {

// FusionPatterns(), in order, as a JSON array of rows whose keys are
// FusionPattern's fields; shape checks' kinds by name ("vector_of_last_dim").
std::string FusionTableJson();

}  // namespace int8flow::graph
