#include "profiler/xspace.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "profiler/proto_writer.h"

namespace int8flow::profiler {

// xprof's trace viewer draws host planes and /device:{GPU,TPU,CUSTOM}:
// planes only; "/device:QCPU:0" would be dropped (docs/profiling.md).
const char kQcpuPlaneName[] = "/device:CUSTOM:QCPU:0";

namespace {

// Field numbers from xplane.proto.
namespace xspace {
constexpr int kPlanes = 1;
}
namespace xplane {
constexpr int kId = 1, kName = 2, kLines = 3, kEventMetadata = 4, kStatMetadata = 5, kStats = 6;
}
namespace xline {
constexpr int kId = 1, kName = 2, kTimestampNs = 3, kEvents = 4, kDisplayName = 11;
}
namespace xevent {
constexpr int kMetadataId = 1, kOffsetPs = 2, kDurationPs = 3, kStats = 4;
}
namespace xstat {
constexpr int kMetadataId = 1, kUint64 = 3, kString = 5;
}
namespace xmetadata {
constexpr int kId = 1, kName = 2, kDisplayName = 4;
}
namespace map_entry {
constexpr int kKey = 1, kValue = 2;
}

enum StatId : int64_t {
  kTfOp = 1,
  kShapes,
  kPrecision,
  kOneDnnImpl,
  kBytes,
  kDroppedEvents,
  kMaxEvents,
  kNumStats
};
const char* const kStatNames[kNumStats] = {
    "", "tf_op", "shapes", "precision", "onednn_impl", "bytes", "dropped_events", "max_events"};

std::string StringStat(StatId id, const std::string& value) {
  ProtoWriter stat;
  stat.Int(xstat::kMetadataId, id);
  stat.Bytes(xstat::kString, value);
  return stat.data();
}

std::string UintStat(StatId id, uint64_t value) {
  ProtoWriter stat;
  stat.Int(xstat::kMetadataId, id);
  stat.Uint(xstat::kUint64, value);
  return stat.data();
}

// A map<int64, Message> entry of the plane.
std::string MapEntry(int64_t key, const std::string& value) {
  ProtoWriter entry;
  entry.Int(map_entry::kKey, key);
  entry.Bytes(map_entry::kValue, value);
  return entry.data();
}

std::string Metadata(int64_t id, const std::string& name, const std::string& display_name) {
  ProtoWriter metadata;
  metadata.Int(xmetadata::kId, id);
  metadata.Bytes(xmetadata::kName, name);
  if (!display_name.empty()) metadata.Bytes(xmetadata::kDisplayName, display_name);
  return metadata.data();
}

std::string Event(const runtime::TraceEvent& e, int64_t metadata_id, int64_t line_start_ns) {
  ProtoWriter event;
  event.Int(xevent::kMetadataId, metadata_id);
  event.Int(xevent::kOffsetPs, (e.start_ns - line_start_ns) * 1000);
  event.Int(xevent::kDurationPs, std::max<int64_t>(e.end_ns - e.start_ns, 0) * 1000);
  if (e.kind == runtime::TraceEvent::kCopy) {
    event.Bytes(xevent::kStats, UintStat(kBytes, e.bytes));
  } else {
    event.Bytes(xevent::kStats, StringStat(kTfOp, e.name + ":" + e.op));
    event.Bytes(xevent::kStats, StringStat(kShapes, e.shapes));
    event.Bytes(xevent::kStats, StringStat(kPrecision, e.precision));
    if (!e.onednn_impl.empty()) event.Bytes(xevent::kStats, StringStat(kOneDnnImpl, e.onednn_impl));
  }
  return event.data();
}

}  // namespace

std::string SerializeXSpace(const runtime::Trace& trace) {
  // Lines by (thread, kind); within each, events by start time.
  using LineKey = std::pair<uint64_t, int>;
  std::map<LineKey, std::vector<const runtime::TraceEvent*>> lines;
  for (const runtime::TraceEvent& e : trace.events) lines[{e.thread_id, e.kind}].push_back(&e);

  ProtoWriter plane;
  plane.Int(xplane::kId, 0);
  plane.Bytes(xplane::kName, kQcpuPlaneName);
  std::map<std::string, int64_t> metadata_ids;  // by event name
  int64_t line_id = 0;
  for (auto& [key, events] : lines) {
    std::stable_sort(events.begin(), events.end(),
                     [](const auto* a, const auto* b) { return a->start_ns < b->start_ns; });
    const int64_t line_start_ns = events.front()->start_ns;
    const std::string name =
        std::string(key.second == runtime::TraceEvent::kCopy ? "Copies" : "Kernels") + " (thread " +
        std::to_string(key.first) + ")";
    ProtoWriter line;
    line.Int(xline::kId, line_id++);
    line.Bytes(xline::kName, name);
    line.Bytes(xline::kDisplayName, name);
    line.Int(xline::kTimestampNs, line_start_ns);
    for (const runtime::TraceEvent* e : events) {
      const auto [it, added] = metadata_ids.emplace(e->name, metadata_ids.size() + 1);
      if (added)
        plane.Bytes(xplane::kEventMetadata,
                    MapEntry(it->second, Metadata(it->second, e->name, e->op)));
      line.Bytes(xline::kEvents, Event(*e, it->second, line_start_ns));
    }
    plane.Bytes(xplane::kLines, line.data());
  }
  for (int64_t id = 1; id < kNumStats; ++id)
    plane.Bytes(xplane::kStatMetadata, MapEntry(id, Metadata(id, kStatNames[id], "")));
  plane.Bytes(xplane::kStats, UintStat(kDroppedEvents, trace.dropped));
  plane.Bytes(
      xplane::kStats,
      UintStat(kMaxEvents, static_cast<uint64_t>(runtime::GetSettings().profile_max_events)));

  ProtoWriter space;
  space.Bytes(xspace::kPlanes, plane.data());
  return space.data();
}

}  // namespace int8flow::profiler
