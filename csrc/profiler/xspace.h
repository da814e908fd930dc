// A profiler session's QCPU events as a serialized tensorflow.profiler.XSpace
// (tsl/profiler/protobuf/xplane.proto) holding one plane for the device.
#pragma once

#include <string>

#include "runtime/runtime.h"

namespace int8flow::profiler {

// The plane's name: TF's profiler merges it into the session's XSpace as is.
extern const char kQcpuPlaneName[];

// One line per OS thread and kind (kernels, copies), events in start order;
// one event metadata per node; stats: tf_op ("node:Op", as TF's own planes
// name ops), shapes, precision, onednn_impl, bytes (copies). The plane's own
// stats give the bound and how many events were dropped past it.
std::string SerializeXSpace(const runtime::Trace& trace);

}  // namespace int8flow::profiler
