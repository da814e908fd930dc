// Finds, checks and opens libint8flow_core.so once per process.
#pragma once

#include <string>

#include "core_api.h"

namespace int8flow {

// The core, or nullptr with *why set. Cached: later calls return the same.
const Int8flowCoreApi* LoadCore(std::string* why);

// The core when this load of the plugin serves QCPU (active, and not a
// duplicate load); nullptr otherwise, or when the core cannot be opened
// (SE_InitPlugin has then gone inert and said why).
const Int8flowCoreApi* CoreForQcpu();

// Directory holding the plugin .so that contains this code.
std::string PluginPath();

}  // namespace int8flow
