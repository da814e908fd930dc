// QCPU's TP_ProfilerFns: a TF profiler session (tf.profiler.experimental
// start/stop or Profile, Keras' TensorBoard(profile_batch=...)) turns
// kernel and copy recording on, and collects them as an XSpace plane. Also
// INT8FLOW_OP_STATS, per-op totals recorded from the start.
#pragma once

#include "tensorflow/c/experimental/pluggable_profiler/pluggable_profiler.h"

namespace int8flow::profiler {

// Fills `params` for `device_type`. `serving`: false for an inert or
// duplicate load of the plugin, whose sessions then record nothing. A serving
// load also turns per-op stats on from the start when INT8FLOW_OP_STATS asks.
void RegisterProfiler(TF_ProfilerRegistrationParams* params, const char* device_type, bool serving);

}  // namespace int8flow::profiler
