#pragma once

#include <string>

#include "tensorflow/c/experimental/stream_executor/stream_executor.h"

namespace int8flow::device {

inline constexpr char kDeviceType[] = "QCPU";

// Fills TF's platform registration. Never fails: on any problem it logs one
// warning and registers the platform with zero devices, so TF carries on
// with its own CPU device. A second load in one process registers a distinct
// inert type, since TF aborts on a platform or device type registered twice.
void RegisterPlatform(SE_PlatformRegistrationParams* params);

// The device type the latest RegisterPlatform registered: kDeviceType, or a
// distinct inert type when this is a second load of the plugin (see
// RegisterPlatform), which TF needs for its optimizer registration too.
const char* RegisteredDeviceType();
bool IsDuplicateLoad();

// Turns the device off after registration (TF lists devices only once every
// entry point has run), for a failure found in a later entry point.
void Deactivate(const std::string& reason);

}  // namespace int8flow::device
