#pragma once

#include <string>

#include "tensorflow/c/experimental/stream_executor/stream_executor.h"

namespace int8flow::device {

inline constexpr char kDeviceType[] = "QCPU";

// Fills TF's platform registration. Never fails: on any problem it logs one
// warning and registers the platform with zero devices, so TF carries on
// with its own CPU device.
void RegisterPlatform(SE_PlatformRegistrationParams* params);

// Turns the device off after registration (TF lists devices only once every
// entry point has run), for a failure found in a later entry point.
void Deactivate(const std::string& reason);

}  // namespace int8flow::device
