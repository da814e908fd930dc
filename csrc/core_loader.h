// Finds, checks and opens libint8flow_core.so once per process.
#pragma once

#include <string>

#include "core_api.h"

namespace int8flow {

// The core, or nullptr with *why set. Cached: later calls return the same.
const Int8flowCoreApi* LoadCore(std::string* why);

// Directory holding the plugin .so that contains this code.
std::string PluginPath();

}  // namespace int8flow
