"""int8flow: a TensorFlow PluggableDevice for CPUs.

`pip install int8flow` puts a plugin in site-packages/tensorflow-plugins/; from
then on `import tensorflow` registers the QCPU device. This module reports on
that plugin and works before (or without) TensorFlow being imported.
"""
from __future__ import annotations

import importlib.metadata
from typing import Any

from int8flow import _native
from int8flow.quantization import LayerReport, QuantizedModel, quantize

__version__: str = importlib.metadata.version("int8flow")
DEVICE_TYPE = "QCPU"
__all__ = ["DEVICE_TYPE", "LayerReport", "QuantizedModel", "bf16_enabled", "cpu_features", "devices", "enable_bf16",
           "enable_int8", "is_loaded", "load_state", "quantize", "record_op_stats", "reset_stats", "stats",
           "stats_table"]


def is_loaded() -> bool:
    """True once TensorFlow has loaded the plugin in this process with QCPU active.

    TensorFlow loads plugins during `import tensorflow`; before that, or when
    the plugin went inert (see `load_state()["reason"]`), this is False.
    """
    return bool(_native.load_state()["active"])


def load_state() -> dict[str, Any]:
    """The plugin's state here: `initialized`, `active`, `reason` (why inert), `plugin_path`."""
    return _native.load_state()


def devices() -> list[str]:
    """Names of the QCPU physical devices TensorFlow sees (imports TensorFlow)."""
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices(DEVICE_TYPE)]


def stats() -> dict[str, Any]:
    """Host<->device copies (`htod`, `dtoh`, `dtod`: count and bytes), QCPU memory in use,
    `fusions`: rewrites by the graph pass, by pattern, since the process started,
    `cpu_ops`: nodes the pass saw placed on CPU (fallbacks), by op, since the last reset,
    `pass_errors`: graphs the pass handed back to TF unchanged as it failed on them, by reason,
    `caches`: `entries` and `bytes` the kernels' caches hold now (`packed_weights`,
    `quantized_weights`, `primitives`), and
    `ops`: per QCPU op (`Memcpy` for copies) `count`, `total_ms`, `int8_ms`, `bf16_ms`, `fp32_ms`, kept
    while `record_op_stats(True)` (or `INT8FLOW_OP_STATS=1`) is on."""
    return _native.stats()


def record_op_stats(enabled: bool = True) -> None:
    """Turn the per-op counters of `stats()["ops"]` on or off. Off, a kernel pays one
    atomic load for them; on, two clock reads and a map update."""
    _native.record_op_stats(enabled)


def enable_int8(mode: str = "dynamic") -> None:
    """Run QCPU's MatMuls and convolutions in INT8 (`"dynamic"`: activation ranges found
    per call) or not (`"off"`), as `INT8FLOW_QUANTIZE` does. Applies to functions
    TensorFlow optimizes from now on; traced ones keep what they were built with."""
    if mode not in ("dynamic", "off"):
        raise ValueError(f"mode must be 'dynamic' or 'off', got {mode!r}")
    _native.set_quantize_dynamic(mode == "dynamic")


def enable_bf16(enabled: bool = True) -> None:
    """Run QCPU's float MatMuls, BatchMatMuls, Einsums and convolutions in bf16 (inputs and
    weights rounded to bf16, products summed in f32, outputs f32), as `INT8FLOW_PRECISION=bf16`
    does, or back in f32. Takes effect at the next call of every graph, traced ones included.
    INT8 layers are unaffected. Each op's output differs from f32 by about 0.2-0.3% of its
    scale (docs/kernels.md, "Opt-in bf16").

    Raises `RuntimeError` when enabling on a CPU whose oneDNN has no native bf16
    (`cpu_features()["bf16"]`: AVX512-BF16 or AMX), where it would be slower than f32.
    """
    cpu = _native.cpu_features()
    if enabled and not cpu["bf16"]:
        raise RuntimeError(f"bf16 needs a CPU with AVX512-BF16 or AMX; oneDNN runs {cpu['onednn_isa'] or 'nothing'} "
                           f"on this {cpu['model']}")
    _native.set_bf16_enabled(enabled)


def bf16_enabled() -> bool:
    """Whether QCPU's float matmuls and convolutions run in bf16 now (`enable_bf16`)."""
    return _native.bf16_enabled()


def stats_table() -> str:
    """`stats()` as a readable table: ops by time, int8 vs fp32, CPU fallbacks, copies."""
    from int8flow._stats_table import format_stats

    return format_stats(_native.stats())


def reset_stats() -> None:
    """Zero the copy counters, `cpu_ops`, `ops` and allocation peaks (memory still held
    stays counted)."""
    _native.reset_stats()


def cpu_features() -> dict[str, Any]:
    """CPU model, usable cores, ISA flags, the oneDNN version and ISA it will use,
    `int8_path`: "amx", "vnni", or "avx2" (no VNNI: weights wider than 7 bits run halved),
    `bf16`: whether oneDNN runs bf16 natively (what `enable_bf16` needs),
    `threads`: oneDNN's OpenMP team size, the smallest of the CPU affinity mask,
    `OMP_NUM_THREADS` and `TF_NUM_INTRAOP_THREADS`, and `threads_rule`: which one set it."""
    return _native.cpu_features()
