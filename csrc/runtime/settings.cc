// Environment settings and the load state. Parsing never throws and never
// aborts: a plugin lives inside someone else's process.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <set>
#include <string>

#include "runtime/runtime.h"

namespace int8flow::runtime {
namespace {

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool ParseFlag(const char* name, bool fallback) {
  const char* raw = std::getenv(name);
  if (raw == nullptr || *raw == '\0') return fallback;
  const std::string value = Lower(raw);
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  WarnOnce(std::string(name) + "='" + raw + "' is not a boolean (use 1 or 0); using " +
           (fallback ? "1" : "0"));
  return fallback;
}

// A positive whole number from the environment, at most `max`; 0 when unset
// or malformed (with a warning that says `what` 0 means).
int64_t ParsePositive(const char* name, long long max, const char* unit, const char* zero_means) {
  const char* raw = std::getenv(name);
  if (raw == nullptr || *raw == '\0') return 0;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(raw, &end, 10);
  if (errno != 0 || end == raw || *end != '\0' || value <= 0 || value > max) {
    WarnOnce(std::string(name) + "='" + raw + "' is not a positive whole number of " + unit +
             "; ignoring it (" + zero_means + ")");
    return 0;
  }
  return static_cast<int64_t>(value);
}

// Whether `name` is set to `on` (any case). Unset, `off` or one of
// `also_off` means false; anything else also, with a warning.
bool ParseSwitch(const char* name, const char* on, const char* off,
                 std::initializer_list<const char*> also_off) {
  const char* raw = std::getenv(name);
  if (raw == nullptr || *raw == '\0') return false;
  const std::string value = Lower(raw);
  if (value == on) return true;
  bool known = value == off;
  for (const char* other : also_off) known = known || value == other;
  if (!known)
    WarnOnce(std::string(name) + "='" + raw + "' is not '" + on + "' or '" + off + "'; using '" +
             off + "'");
  return false;
}

Settings ReadSettings() {
  Settings s;
  s.disabled = ParseFlag("INT8FLOW_DISABLE", false);
  constexpr long long kMaxMb = 1LL << 40;  // keeps mb << 20 inside int64
  s.memory_limit_bytes = ParsePositive("INT8FLOW_MEMORY_LIMIT_MB", kMaxMb, "MiB", "no limit") << 20;
  s.op_stats = ParseFlag("INT8FLOW_OP_STATS", false);
  if (const int64_t n =
          ParsePositive("INT8FLOW_PROFILE_MAX_EVENTS", 1LL << 30, "events", "the default"))
    s.profile_max_events = n;
  s.fusion = ParseFlag("INT8FLOW_FUSION", true);
  s.quantize_dynamic = ParseSwitch("INT8FLOW_QUANTIZE", "dynamic", "off", {"0"});
  s.precision_bf16 = ParseSwitch("INT8FLOW_PRECISION", "bf16", "fp32", {"f32"});
  if (const char* dump = std::getenv("INT8FLOW_DUMP_GRAPHS")) s.dump_graphs = dump;
  if (const char* fault = std::getenv("INT8FLOW_TEST_FAULT")) s.test_fault = fault;
  return s;
}

std::mutex& state_mutex() {
  static std::mutex mu;
  return mu;
}

LoadState& load_state() {
  static LoadState state;
  return state;
}

}  // namespace

const Settings& GetSettings() {
  static const Settings settings = ReadSettings();
  return settings;
}

bool FaultInjected(const char* fault) { return GetSettings().test_fault == fault; }

namespace {
std::atomic<bool>& quantize_dynamic() {
  static std::atomic<bool> enabled{GetSettings().quantize_dynamic};
  return enabled;
}
}  // namespace

bool QuantizeDynamic() { return quantize_dynamic().load(); }
void SetQuantizeDynamic(bool enabled) { quantize_dynamic().store(enabled); }

namespace {
std::atomic<bool>& bf16_enabled() {
  static std::atomic<bool> enabled{[] {
    if (!GetSettings().precision_bf16) return false;
    if (GetCpuFeatures().bf16) return true;
    WarnOnce(
        "INT8FLOW_PRECISION=bf16 needs a CPU whose oneDNN runs bf16 natively (AVX512-BF16 "
        "or AMX); this one runs " +
        GetCpuFeatures().onednn_isa + ", so QCPU stays fp32");
    return false;
  }()};
  return enabled;
}
}  // namespace

bool Bf16Enabled() { return bf16_enabled().load(std::memory_order_relaxed); }
void SetBf16Enabled(bool enabled) { bf16_enabled().store(enabled && GetCpuFeatures().bf16); }

void WarnOnce(const std::string& message) {
  static std::mutex mu;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mu);
  if (!said.insert(message).second) return;
  std::fprintf(stderr, "int8flow: %s\n", message.c_str());
  std::fflush(stderr);
}

void SetLoadState(const LoadState& state) {
  std::lock_guard<std::mutex> lock(state_mutex());
  load_state() = state;
}

int CountPluginLoad() {
  static std::atomic<int> loads{0};
  return ++loads;
}

LoadState GetLoadState() {
  std::lock_guard<std::mutex> lock(state_mutex());
  return load_state();
}

}  // namespace int8flow::runtime
