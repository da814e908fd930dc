// int8flow._native: the Python side's view of the runtime library. It links
// libint8flow_runtime.so only, so it imports before (or without) TensorFlow.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "ops/quantizable_ops.h"
#include "runtime/runtime.h"

namespace py = pybind11;
namespace rt = int8flow::runtime;

namespace {

py::dict Stats() {
  const rt::StatsSnapshot s = rt::Stats();
  const char* kinds[rt::kNumCopyKinds] = {"htod", "dtoh", "dtod"};
  py::dict copies;
  for (int i = 0; i < rt::kNumCopyKinds; ++i)
    copies[kinds[i]] = py::dict(py::arg("count") = s.copies[i], py::arg("bytes") = s.copy_bytes[i]);
  py::dict memory(py::arg("num_allocs") = s.num_allocs, py::arg("bytes_in_use") = s.bytes_in_use,
                  py::arg("peak_bytes_in_use") = s.peak_bytes_in_use,
                  py::arg("largest_alloc_size") = s.largest_alloc_size);
  py::dict ops;
  for (const auto& [op, t] : rt::OpTotalsByOp())
    ops[py::str(op)] =
        py::dict(py::arg("count") = t.count, py::arg("total_ms") = t.total_ns * 1e-6,
                 py::arg("int8_ms") = t.int8_ns * 1e-6, py::arg("bf16_ms") = t.bf16_ns * 1e-6,
                 py::arg("fp32_ms") = t.fp32_ns * 1e-6);
  const char* cache_kinds[rt::kNumCacheKinds] = {"packed_weights", "quantized_weights",
                                                 "primitives"};
  py::dict caches;
  for (int i = 0; i < rt::kNumCacheKinds; ++i) {
    const rt::CacheUsage u = rt::CacheUsageOf(static_cast<rt::CacheKind>(i));
    caches[cache_kinds[i]] = py::dict(py::arg("entries") = u.entries, py::arg("bytes") = u.bytes);
  }
  return py::dict(py::arg("copies") = copies, py::arg("memory") = memory,
                  py::arg("caches") = caches, py::arg("fusions") = rt::FusionCounts(),
                  py::arg("cpu_ops") = rt::CpuOpCounts(),
                  py::arg("pass_errors") = rt::PassErrorCounts(), py::arg("ops") = ops,
                  py::arg("recording_ops") = (rt::RecordingMode() & rt::kOpStats) != 0);
}

py::dict LoadState() {
  const rt::LoadState s = rt::GetLoadState();
  return py::dict(py::arg("initialized") = s.initialized, py::arg("active") = s.active,
                  py::arg("reason") = s.reason, py::arg("plugin_path") = s.plugin_path);
}

py::dict CpuFeatures() {
  const rt::CpuFeatures& c = rt::GetCpuFeatures();
  py::dict isa(py::arg("avx2") = c.avx2, py::arg("fma") = c.fma, py::arg("avx512f") = c.avx512f,
               py::arg("avx512_vnni") = c.avx512_vnni, py::arg("avx512_bf16") = c.avx512_bf16,
               py::arg("avx_vnni") = c.avx_vnni, py::arg("amx_int8") = c.amx_int8,
               py::arg("amx_bf16") = c.amx_bf16);
  return py::dict(py::arg("model") = c.model, py::arg("cores") = c.logical_cores,
                  py::arg("flags") = isa, py::arg("onednn_version") = c.onednn_version,
                  py::arg("onednn_isa") = c.onednn_isa, py::arg("onednn_error") = c.onednn_error,
                  py::arg("int8_path") = c.int8_path, py::arg("bf16") = c.bf16,
                  py::arg("openmp") = c.openmp, py::arg("threads") = c.threads,
                  py::arg("threads_rule") = c.threads_rule,
                  py::arg("memory_bytes") = rt::PhysicalMemoryBytes());
}

py::dict Settings() {
  const rt::Settings& s = rt::GetSettings();
  return py::dict(py::arg("disabled") = s.disabled,
                  py::arg("memory_limit_bytes") = s.memory_limit_bytes,
                  py::arg("fusion") = s.fusion);
}

// ops/quantizable_ops.h's rows, by their unfused op: what a frozen graph
// holds. pybind11 casts a null const char* to None.
py::list QuantizableOps() {
  py::list rows;
  for (const int8flow::ops::QuantizableOp& row : int8flow::ops::kQuantizableOps) {
    py::list refused;
    if (row.refused_attr) refused.append(row.refused_attr);
    rows.append(py::dict(py::arg("op") = row.op, py::arg("weight_rank") = row.weight_rank,
                         py::arg("depthwise") = row.depthwise,
                         py::arg("transpose_weights_attr") = row.transpose_weights_attr,
                         py::arg("refused_attrs") = refused,
                         py::arg("data_format") = row.data_format));
  }
  return rows;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "int8flow's native helpers (shared state with the TensorFlow plugin)";
  m.def("stats", &Stats, "Copy and device-memory counters since the last reset.");
  m.def("reset_stats", &rt::ResetStats, "Zero the copy and allocation counters.");
  m.def("record_op_stats", &rt::SetOpStats, "Turn per-op counters on or off.");
  m.def("set_quantize_dynamic", &rt::SetQuantizeDynamic,
        "Turn the dynamic INT8 rewrite on or off.");
  m.def("quantize_dynamic", &rt::QuantizeDynamic, "Whether the dynamic INT8 rewrite is on.");
  m.def("set_bf16_enabled", &rt::SetBf16Enabled,
        "Run float matmuls and convolutions in bf16 (where the CPU runs it natively) or not.");
  m.def("bf16_enabled", &rt::Bf16Enabled, "Whether float matmuls and convolutions run in bf16.");
  m.def("load_state", &LoadState, "Whether the plugin initialised in this process, and why not.");
  m.def("cpu_features", &CpuFeatures, "CPU flags, core count and the oneDNN ISA.");
  m.def("fusion_table", &rt::FusionTable,
        "The graph pass's fusion table as JSON (empty until TensorFlow loaded the plugin).");
  m.def("settings", &Settings, "Settings read from INT8FLOW_* environment variables.");
  m.def("quantizable_ops", &QuantizableOps,
        "The float ops INT8 quantizes, and the rules a node must meet (the graph pass's table).");
}
