#include "device/platform.h"

#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <string>

#include "common/tf_status.h"
#include "device/host_device.h"
#include "runtime/runtime.h"

namespace int8flow::device {
namespace {

void Publish(runtime::LoadState state) {
  state.initialized = true;
  state.plugin_path = PluginPath();
  state.active = state.reason.empty();
  runtime::SetLoadState(state);
  if (!state.active && !runtime::GetSettings().disabled) {
    runtime::WarnOnce("the QCPU device is off: " + state.reason +
                      ". TensorFlow carries on with its own CPU device.");
  }
}

std::atomic<int> device_count{0};

// TF wants device types to match [A-Z][A-Z_]*: 2 -> "B", 27 -> "AA".
std::string Letters(int n) {
  std::string out;
  for (; n > 0; n = (n - 1) / 26) out.insert(out.begin(), static_cast<char>('A' + (n - 1) % 26));
  return out;
}

// Types of the duplicate registrations; a deque never moves its strings.
std::deque<std::string>& duplicate_types() {
  static std::deque<std::string> types;
  return types;
}
std::atomic<const char*> registered_type{kDeviceType};

void GetDeviceCount(const SP_Platform* platform, int* count, TF_Status* status) {
  *count = std::strcmp(platform->type, kDeviceType) == 0 ? device_count.load() : 0;
  SetOk(status);
}

void CreateDevice(const SP_Platform*, SE_CreateDeviceParams* params, TF_Status* status) {
  const runtime::Settings& settings = runtime::GetSettings();
  const runtime::CpuFeatures& cpu = runtime::GetCpuFeatures();
  auto* device = new HostDevice;
  device->ordinal = params->ordinal;
  device->hardware_name = cpu.model;
  device->vendor = "int8flow (oneDNN " + cpu.onednn_version + ", " + cpu.onednn_isa + ")";
  device->explicit_limit = settings.memory_limit_bytes > 0;
  device->memory_limit =
      device->explicit_limit ? settings.memory_limit_bytes : runtime::PhysicalMemoryBytes();

  SP_Device* out = params->device;
  out->struct_size = SP_DEVICE_STRUCT_SIZE;
  out->ordinal = params->ordinal;
  out->device_handle = device;
  out->hardware_name = device->hardware_name.c_str();
  out->device_vendor = device->vendor.c_str();
  out->pci_bus_id = nullptr;  // not a PCI device
  SetOk(status);
}

void DestroyDevice(const SP_Platform*, SP_Device* device) {
  delete static_cast<HostDevice*>(device->device_handle);
  device->device_handle = nullptr;
}

void CreateDeviceFns(const SP_Platform*, SE_CreateDeviceFnsParams* params, TF_Status* status) {
  FillDeviceFns(params->device_fns);
  SetOk(status);
}

void CreateStreamExecutor(const SP_Platform*, SE_CreateStreamExecutorParams* params,
                          TF_Status* status) {
  FillStreamExecutor(params->stream_executor);
  SetOk(status);
}

void CreateTimerFns(const SP_Platform*, SP_TimerFns* timer_fns, TF_Status* status) {
  FillTimerFns(timer_fns);
  SetOk(status);
}

// The tables above hold only function pointers and static strings: there is
// nothing to free when TF tears them down.
void DestroyDeviceFns(const SP_Platform*, SP_DeviceFns*) {}
void DestroyStreamExecutor(const SP_Platform*, SP_StreamExecutor*) {}
void DestroyTimerFns(const SP_Platform*, SP_TimerFns*) {}
void DestroyPlatform(SP_Platform*) {}
void DestroyPlatformFns(SP_PlatformFns*) {}

}  // namespace

void RegisterPlatform(SE_PlatformRegistrationParams* params) {
  params->struct_size = SE_PLATFORM_REGISTRATION_PARAMS_STRUCT_SIZE;
  params->major_version = SE_MAJOR;
  params->minor_version = SE_MINOR;
  params->patch_version = SE_PATCH;
  params->destroy_platform = DestroyPlatform;
  params->destroy_platform_fns = DestroyPlatformFns;

  SP_Platform* platform = params->platform;
  platform->struct_size = SP_PLATFORM_STRUCT_SIZE;
  const int load = runtime::CountPluginLoad();
  if (load > 1) {
    duplicate_types().push_back(std::string(kDeviceType) + "_DUPLICATE_" + Letters(load));
    registered_type = duplicate_types().back().c_str();
    const runtime::LoadState first = runtime::GetLoadState();
    runtime::WarnOnce(
        "TensorFlow loaded int8flow's plugin a second time in this process (one site-packages "
        "reachable through two sys.path entries, TF issue #55497, or a second install, here " +
        PluginPath() + "). The second load stays inert; " +
        (first.active ? first.plugin_path + " provides QCPU."
                      : "the first, " + first.plugin_path + ", is inert too: " + first.reason));
  }
  platform->name = registered_type;
  platform->type = registered_type;
  platform->supports_unified_memory = false;
  platform->use_bfc_allocator = true;
  // Grow on demand: a CPU device must not reserve the machine's RAM up front.
  platform->force_memory_growth = true;

  SP_PlatformFns* fns = params->platform_fns;
  fns->struct_size = SP_PLATFORM_FNS_STRUCT_SIZE;
  fns->get_device_count = GetDeviceCount;
  fns->create_device = CreateDevice;
  fns->destroy_device = DestroyDevice;
  fns->create_device_fns = CreateDeviceFns;
  fns->destroy_device_fns = DestroyDeviceFns;
  fns->create_stream_executor = CreateStreamExecutor;
  fns->destroy_stream_executor = DestroyStreamExecutor;
  fns->create_timer_fns = CreateTimerFns;
  fns->destroy_timer_fns = DestroyTimerFns;
}

void SetActivation(const std::string& inert_reason) {
  runtime::LoadState state;
  state.reason = inert_reason;
  Publish(state);
  device_count = state.reason.empty() ? 1 : 0;
}

const char* RegisteredDeviceType() { return registered_type; }

bool IsDuplicateLoad() { return std::strcmp(registered_type, kDeviceType) != 0; }

std::string PluginPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&PluginPath), &info) == 0 || info.dli_fname == nullptr)
    return "";
  return info.dli_fname;
}

void Deactivate(const std::string& reason) {
  device_count = 0;
  runtime::LoadState state;
  state.reason = reason;
  Publish(state);
}

}  // namespace int8flow::device
