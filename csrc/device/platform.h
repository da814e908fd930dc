#pragma once

#include <string>

#include "tensorflow/c/experimental/stream_executor/stream_executor.h"

namespace int8flow::device {

inline constexpr char kDeviceType[] = "QCPU";

// Fills TF's platform registration, with zero devices until SetActivation.
// Never fails. A second load in one process registers a distinct inert type,
// since TF aborts on a platform or device type registered twice, and logs one
// warning; it stays inert, and the first load's state stands.
void RegisterPlatform(SE_PlatformRegistrationParams* params);

// The first load's activation, decided by the loader (core_loader.h) right
// after RegisterPlatform, so the load state and any warning are there at
// import: one QCPU device when `inert_reason` is empty; otherwise zero
// devices, so TF carries on with its own CPU device, and one warning saying
// why (none for INT8FLOW_DISABLE).
void SetActivation(const std::string& inert_reason);

// The device type the latest RegisterPlatform registered: kDeviceType, or a
// distinct inert type when this is a second load of the plugin (see
// RegisterPlatform), which TF needs for its optimizer registration too.
const char* RegisteredDeviceType();
bool IsDuplicateLoad();

// Turns the device off after registration (TF lists devices only once every
// entry point has run), for a failure found in a later entry point.
void Deactivate(const std::string& reason);

// The plugin .so that holds this code: the one TF loaded.
std::string PluginPath();

}  // namespace int8flow::device
