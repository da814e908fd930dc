#include "core_loader.h"

#include <dlfcn.h>

#include <cstring>
#include <mutex>

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
  std::string plugin = PluginPath();
  std::string dir = plugin.substr(0, plugin.rfind('/'));
  if (runtime::FaultInjected("core_missing")) return dir + "/../int8flow/libint8flow_core_missing.so";
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
           ".x but this is TensorFlow " + running +
           "; install the int8flow release built for it";
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

}  // namespace

std::string PluginPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&PluginPath), &info) == 0 || info.dli_fname == nullptr)
    return "";
  return info.dli_fname;
}

const Int8flowCoreApi* LoadCore(std::string* why) {
  static std::once_flag once;
  static const Int8flowCoreApi* api = nullptr;
  static std::string error;
  std::call_once(once, [] { api = Open(&error); });
  *why = error;
  return api;
}

const Int8flowCoreApi* CoreForQcpu() {
  if (device::IsDuplicateLoad() || !runtime::GetLoadState().active) return nullptr;
  std::string why;
  return LoadCore(&why);
}

}  // namespace int8flow
