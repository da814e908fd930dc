// The boundary between the plugin shim and libint8flow_core.so.
//
// libint8flow_plugin.so (in tensorflow-plugins/) holds the device and links
// only libc, TF's C API and our runtime, so dlopen of it cannot fail in a way
// that breaks `import tensorflow`. Everything that links oneDNN or TF's C++
// protobuf (tied to one TF minor version) lives in libint8flow_core.so, which
// the plugin opens with dlopen and reports, rather than aborts, when it fails.
#pragma once

#include "tensorflow/c/experimental/grappler/grappler.h"
#include "tensorflow/c/tf_status.h"

extern "C" {

// Bumped whenever Int8flowCoreApi changes, so a stale core is refused.
#define INT8FLOW_CORE_ABI 2

struct Int8flowCoreApi {
  int abi;
  const char* tf_version;  // "major.minor" of the TF the core was built against
  // Empty string when the core can run on this machine, else why not.
  const char* (*self_test)();
  void (*init_graph)(TP_OptimizerRegistrationParams* params, TF_Status* status);
  void (*init_kernels)(const char* device_type, TF_Status* status);
};

#define INT8FLOW_CORE_ENTRY "int8flow_core_api"
typedef const Int8flowCoreApi* (*Int8flowCoreEntryFn)();

}  // extern "C"
