"""How close to the machine each row runs: the model's multiply-accumulates, and
this machine's peak GEMM rate per precision, measured on the bench's own threads.

    python -m int8flow.bench.roofline THREADS   # prints MARKER + {"f32": GFLOP/s, "int8": ...}

A row's GFLOP/s is 2 x MACs / median latency; its percentage is of the peak of
the precision its matmuls and convolutions ran in. The peak is a large, tight
GEMM through oneDNN on QCPU (what this CPU sustains in practice, below the
data sheet's fused-multiply-add count), run in its own process like a variant.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from int8flow.bench.worker import MARKER

if TYPE_CHECKING:
    import keras  # annotations only: importing keras imports TensorFlow

PEAK_SHAPE = (1024, 2048, 2048)  # M, K, N: ~8.6 GFLOP a call, packed weights, no tail effects
PEAK_RUNS = 10


def _static_shape(tensor: Any) -> list[int]:
    if not tensor.shape.is_fully_defined():
        raise ValueError(f"{tensor.name} has no static shape: {tensor.shape}")
    return [int(d) for d in tensor.shape]


def _einsum_macs(op: Any) -> int:
    """Output elements times the sizes of the letters summed over (those not in the output)."""
    inputs, output = op.get_attr("equation").decode().replace(" ", "").split("->")
    sizes: dict[str, int] = {}
    for letters, tensor in zip(inputs.split(","), op.inputs):
        shape = _static_shape(tensor)
        explicit = letters.replace("...", "")
        for letter, size in zip(explicit, shape[len(shape) - len(explicit):] if letters.startswith("...")
                                else shape):
            sizes[letter] = size
    summed = [size for letter, size in sizes.items() if letter not in output]
    return math.prod(_static_shape(op.outputs[0])) * math.prod(summed)


def _op_macs(op: Any) -> int:
    out = _static_shape(op.outputs[0]) if op.outputs else []
    if op.type == "MatMul":
        a = _static_shape(op.inputs[0])
        return math.prod(out) * a[0 if op.get_attr("transpose_a") else 1]
    if op.type in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        x = _static_shape(op.inputs[0])
        return math.prod(out) * x[-2 if op.get_attr("adj_x") else -1]
    if op.type == "Conv2D":
        kh, kw, cin, _ = _static_shape(op.inputs[1])
        return math.prod(out) * kh * kw * cin
    if op.type == "DepthwiseConv2dNative":
        kh, kw, _, _ = _static_shape(op.inputs[1])
        return math.prod(out) * kh * kw
    if op.type == "Einsum":
        return _einsum_macs(op)
    return 0


def count_macs(model: keras.Model, example: np.ndarray) -> int | None:
    """The multiply-accumulates of one inference call of `model` on `example`'s
    shape: its matmuls, batch matmuls, einsums and convolutions (the ops that
    hold all but a few percent of the work in the bench models), from the
    traced graph's static shapes; None when one of those ops has none (no
    figure rather than a wrong one). Ops inside loop bodies are not counted."""
    import tensorflow as tf

    spec = tf.TensorSpec(example.shape, tf.as_dtype(example.dtype))
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    try:
        return sum(_op_macs(op) for op in graph.get_operations())
    except ValueError:
        return None


def rates(macs: int, median_ms: float, precision: str, peaks: dict[str, float]) -> dict[str, float]:
    """A row's achieved GFLOP/s and, where this machine's peak for its precision
    was measured, the percentage of it."""
    gflops = 2 * macs / (median_ms * 1e-3) / 1e9
    figures = {"gflops": gflops}
    if peaks.get(precision):
        figures["percent_of_peak"] = 100 * gflops / peaks[precision]
    return figures


def _best_gflops(call: Any, flops: float) -> float:
    call()  # the first call packs the weights
    best = math.inf
    for _ in range(PEAK_RUNS):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def measure_here(threads: int) -> dict[str, float]:
    """Peak GFLOP/s per precision in this process (QCPU must be active)."""
    import tensorflow as tf

    import int8flow
    from int8flow import ops

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    if not int8flow.is_loaded():
        return {}
    m, k, n = PEAK_SHAPE
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (m, k)).astype("float32"))
    w = rng.uniform(-1, 1, (k, n)).astype("float32")
    q, q_scale, q_zero_point = ops.quantize(x, "uint8")
    w8, w_scales = ops.quantize_weights(w)
    # The activations are arguments (constants would be folded away); the weights
    # constants, packed once, as in a model.
    f32 = tf.function(lambda a: tf.reduce_sum(tf.matmul(a, w)[:1]))
    int8 = tf.function(lambda a: tf.reduce_sum(ops.quantized_matmul(a, w8, q_scale, q_zero_point, w_scales)[:1]))
    flops = 2.0 * m * k * n
    peaks = {"f32": _best_gflops(lambda: f32(x).numpy(), flops), "int8": _best_gflops(lambda: int8(q).numpy(), flops)}
    if int8flow.cpu_features()["bf16"]:  # the same f32 GEMM under enable_bf16, its input cast included
        int8flow.enable_bf16()
        peaks["bf16"] = _best_gflops(lambda: f32(x).numpy(), flops)
        int8flow.enable_bf16(False)
    return peaks


def measure_peaks(threads: int, timeout_s: float = 300) -> dict[str, float]:
    """`measure_here` in a fresh process with the bench's thread settings; {} if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("INT8FLOW_DISABLE", None)
    try:
        result = subprocess.run([sys.executable, "-m", "int8flow.bench.roofline", str(threads)], env=env,
                                capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {}
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    return json.loads(lines[-1][len(MARKER):]) if lines else {}


if __name__ == "__main__":
    print(MARKER + json.dumps(measure_here(int(sys.argv[1]))), flush=True)
