#include "profiler/qcpu_profiler.h"

#include <cstring>
#include <mutex>
#include <string>

#include "common/tf_status.h"
#include "profiler/xspace.h"
#include "runtime/runtime.h"

namespace int8flow::profiler {
namespace {

// TF runs one profiler session at a time; this is its state.
struct Session {
  std::mutex mutex;
  bool serving = false;
  runtime::Trace trace;    // from stop until collected
  std::string serialized;  // from the sizing call of collect until the copying one
};

Session& session() {
  static Session instance;
  return instance;
}

void Start(const TP_Profiler*, TF_Status* status) {
  CatchAtBoundary(status, "profiler start", [&] {
    Session& s = session();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.trace = {};
    s.serialized.clear();
    if (s.serving) runtime::StartTrace();
    SetOk(status);
  });
}

void Stop(const TP_Profiler*, TF_Status* status) {
  CatchAtBoundary(status, "profiler stop", [&] {
    Session& s = session();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.serving) s.trace = runtime::StopTrace();
    SetOk(status);
  });
}

// TF calls this twice: with no buffer for the size, then with the buffer.
void CollectInto(uint8_t* buffer, size_t* size_in_bytes, TF_Status* status) {
  Session& s = session();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (buffer == nullptr) {
    s.serialized = SerializeXSpace(s.trace);
    s.trace = {};
    *size_in_bytes = s.serialized.size();
    return SetOk(status);
  }
  if (*size_in_bytes != s.serialized.size())
    return SetError(status, TF_INVALID_ARGUMENT,
                    "collect_data_xspace: buffer of " + std::to_string(*size_in_bytes) +
                        " bytes for a " + std::to_string(s.serialized.size()) + "-byte XSpace");
  std::memcpy(buffer, s.serialized.data(), s.serialized.size());
  s.serialized.clear();
  SetOk(status);
}

void CollectDataXSpace(const TP_Profiler*, uint8_t* buffer, size_t* size_in_bytes,
                       TF_Status* status) {
  CatchAtBoundary(status, "profiler collect_data_xspace",
                  [&] { CollectInto(buffer, size_in_bytes, status); });
}

}  // namespace

void RegisterProfiler(TF_ProfilerRegistrationParams* params, const char* device_type,
                      bool serving) {
  session().serving = serving;
  params->profiler->struct_size = TP_PROFILER_STRUCT_SIZE;
  params->profiler->device_type = device_type;
  params->profiler_fns->struct_size = TP_PROFILER_FNS_STRUCT_SIZE;
  params->profiler_fns->start = Start;
  params->profiler_fns->stop = Stop;
  params->profiler_fns->collect_data_xspace = CollectDataXSpace;
  params->destroy_profiler = [](TP_Profiler*) {};
  params->destroy_profiler_fns = [](TP_ProfilerFns*) {};
  // INT8FLOW_OP_STATS: per-op totals from the start, as if the program began
  // with int8flow.record_op_stats(True). Read now, not as the runtime loads
  // (runtime/trace.cc says why).
  if (serving && runtime::GetSettings().op_stats) runtime::SetOpStats(true);
}

}  // namespace int8flow::profiler
