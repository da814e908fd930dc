#include "core_loader.h"

#include <dlfcn.h>

#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>

#include "device/platform.h"
#include "runtime/runtime.h"
#include "tensorflow/c/c_api.h"

namespace int8flow {
namespace {

std::string MajorMinor(const std::string& version) {
  const auto first = version.find('.');
  const auto second = version.find('.', first + 1);
  return version.substr(0, second);
}

std::string CorePath() {
  std::string plugin = device::PluginPath();
  std::string dir = plugin.substr(0, plugin.rfind('/'));
  if (runtime::FaultInjected("core_missing"))
    return dir + "/../int8flow/libint8flow_core_missing.so";
  return dir + "/../int8flow/libint8flow_core.so";
}

const Int8flowCoreApi* Open(std::string* why) {
  // The core links TF's C++ protobuf, whose layout changes between TF minor
  // versions: refuse a mismatch before dlopen rather than crash after it.
  const std::string running = runtime::FaultInjected("tf_version_mismatch")
                                  ? std::string("2.99")
                                  : MajorMinor(TF_Version());
  if (running != INT8FLOW_TF_MAJOR_MINOR) {
    *why = std::string("int8flow was built for TensorFlow ") + INT8FLOW_TF_MAJOR_MINOR +
           ".x but this is TensorFlow " + running + "; install the int8flow release built for it";
    return nullptr;
  }
  const std::string path = CorePath();
  runtime::PrepareOpenMp();  // before the core's oneDNN brings libgomp in
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    *why = std::string("cannot load the int8flow core: ") + dlerror();
    return nullptr;
  }
  auto entry = reinterpret_cast<Int8flowCoreEntryFn>(dlsym(lib, INT8FLOW_CORE_ENTRY));
  const Int8flowCoreApi* api = entry ? entry() : nullptr;
  if (api == nullptr || api->abi != INT8FLOW_CORE_ABI ||
      std::strcmp(api->tf_version, INT8FLOW_TF_MAJOR_MINOR) != 0) {
    *why = path + " is from another int8flow build (ABI or TF version differs); reinstall int8flow";
    return nullptr;
  }
  return api;
}

// Empty when QCPU can run here; otherwise why not.
std::string InertReason() {
  if (runtime::GetSettings().disabled) return "disabled by INT8FLOW_DISABLE";
  if (runtime::FaultInjected("device_init"))
    throw std::runtime_error("injected failure (INT8FLOW_TEST_FAULT=device_init)");
  const runtime::CpuFeatures& cpu = runtime::GetCpuFeatures();
  if (!cpu.avx2 || !cpu.fma)
    return "this CPU (" + cpu.model + ") lacks AVX2/FMA, which int8flow needs";
  if (!cpu.onednn_error.empty()) return "oneDNN cannot be used: " + cpu.onednn_error;
  std::string why;
  const Int8flowCoreApi* core = LoadCore(&why);
  if (core == nullptr) return why;
  return core->self_test();
}

}  // namespace

const Int8flowCoreApi* LoadCore(std::string* why) {
  static std::once_flag once;
  static const Int8flowCoreApi* api = nullptr;
  static std::string error;
  std::call_once(once, [] { api = Open(&error); });
  *why = error;
  return api;
}

void ActivateQcpu() {
  if (device::IsDuplicateLoad()) return;  // inert: zero devices, and the first load's state stands
  // Decided now, so the load state and any warning are there at import.
  std::string reason;
  try {
    reason = InertReason();
  } catch (const std::exception& e) {
    reason = std::string("initialisation failed: ") + e.what();
  } catch (...) {
    reason = "initialisation failed with an unknown exception";
  }
  device::SetActivation(reason);
}

bool ServesQcpu() { return !device::IsDuplicateLoad() && runtime::GetLoadState().active; }

const Int8flowCoreApi* CoreForQcpu() {
  if (!ServesQcpu()) return nullptr;
  std::string why;
  return LoadCore(&why);
}

}  // namespace int8flow
