// Finds, checks and opens libint8flow_core.so once per process, and decides
// with it whether this load of the plugin activates QCPU. The device room
// (device/platform.h) registers and reports; the decision is made here.
#pragma once

#include <string>

#include "core_api.h"

namespace int8flow {

// The core, or nullptr with *why set. Cached: later calls return the same.
const Int8flowCoreApi* LoadCore(std::string* why);

// SE_InitPlugin's decision, right after device::RegisterPlatform: the first
// load of the plugin goes inert, in this order, when INT8FLOW_DISABLE is set,
// the CPU lacks AVX2/FMA, oneDNN cannot be opened, or the core cannot be
// opened (TF version, dlopen, ABI) or fails its oneDNN self-test; otherwise
// QCPU is active. Any exception is caught and becomes the reason. The result
// goes to device::SetActivation. A duplicate load decides nothing and opens
// nothing.
void ActivateQcpu();

// True when this load of the plugin serves QCPU: active, and not a duplicate
// load.
bool ServesQcpu();

// The core when this load serves QCPU (ServesQcpu); nullptr otherwise, or
// when the core cannot be opened (SE_InitPlugin has then gone inert and said
// why).
const Int8flowCoreApi* CoreForQcpu();

}  // namespace int8flow
