"""Attention's products in INT8 against FP32 on QCPU (docs/int8.md, "Attention").

    OMP_NUM_THREADS=2 python benchmarks/attention_int8.py
    ONEDNN_MAX_CPU_ISA=AVX2 TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/attention_int8.py

BERT-base shapes (12 heads, seq 128, head dim 64) at batch 1 and 16: Q·Kᵀ,
P·V and the block Q·Kᵀ, scale, softmax, P·V, each as f32 BatchMatMulV2 and
as what a dynamic rewrite would run: u8 Q (or P) and s8 K (or V) quantized
per tensor per call, then _QcpuQuantizedBatchMatMul with float output. As in
`int8flow bench --layers`, each call runs REPEATS times and the columns are
timed interleaved, round after round; times are medians. Prints ms, the
f32/int8 ratio and the int8 result's relative RMSE against f32; --out writes
them as JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np

REPEATS = 8
QCPU = "/device:QCPU:0"
HEADS, SEQUENCE, HEAD_DIM = 12, 128, 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--min-seconds", type=float, default=0.25, help="timing per sample")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import tensorflow as tf

    import int8flow
    from int8flow import ops

    def qk_f32(q: Any, k: Any) -> Any:
        return tf.linalg.matmul(q, k, adjoint_b=True)

    def qk_int8(q: Any, k: Any) -> Any:
        qq, q_scale, q_zero_point = ops.quantize(q)
        kq, k_scale, _ = ops.quantize(k, "int8")
        return ops.quantized_batch_matmul(qq, kq, q_scale, q_zero_point, tf.reshape(k_scale, [1]), adj_y=True)

    def pv_f32(p: Any, v: Any) -> Any:
        return tf.linalg.matmul(p, v)

    def pv_int8(p: Any, v: Any) -> Any:
        pq, p_scale, p_zero_point = ops.quantize(p)
        vq, v_scale, _ = ops.quantize(v, "int8")
        return ops.quantized_batch_matmul(pq, vq, p_scale, p_zero_point, tf.reshape(v_scale, [1]))

    def block(first: Callable[..., Any], second: Callable[..., Any]) -> Callable[..., Any]:
        def run(q: Any, k: Any, v: Any) -> Any:
            return second(tf.nn.softmax(first(q, k) * (1.0 / np.sqrt(HEAD_DIM)), axis=-1), v)
        return run

    def timed(fn: Callable[..., Any], arrays: list[np.ndarray]) -> tuple[Any, Any]:
        @tf.function
        def run(inputs: list[list[Any]]) -> Any:
            with tf.device(QCPU):
                return [fn(*t) for t in inputs]
        with tf.device(QCPU):  # distinct inputs, each on QCPU already
            return run, [[tf.identity(tf.constant(a)) for a in arrays] for _ in range(REPEATS)]

    def seconds_per_call(fn: Any, x: Any) -> float:
        calls, start = 0, time.perf_counter()
        while True:
            fn(x)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= args.min_seconds:
                return elapsed / calls

    cpu = int8flow.cpu_features()
    print(f"{cpu['model']}, {cpu['cores']} cores, oneDNN {cpu['onednn_isa']}, int8 path {cpu['int8_path']}")
    rng = np.random.default_rng(0)
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        q, k, v = (rng.standard_normal((batch, HEADS, SEQUENCE, HEAD_DIM)).astype(np.float32) for _ in range(3))
        logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HEAD_DIM)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p = (p / p.sum(-1, keepdims=True)).astype(np.float32)
        parts = {"Q.K^T": (qk_f32, qk_int8, [q, k]), "P.V": (pv_f32, pv_int8, [p, v]),
                 "block": (block(qk_f32, pv_f32), block(qk_int8, pv_int8), [q, k, v])}
        error = {}
        columns = {}
        for part, (f32, int8, arrays) in parts.items():
            with tf.device(QCPU):
                ref, got = tf.function(f32)(*arrays).numpy(), tf.function(int8)(*arrays).numpy()
            error[part] = float(np.sqrt(np.mean((got - ref) ** 2) / np.mean(ref ** 2)))
            columns[f"{part} f32"], columns[f"{part} int8"] = timed(f32, arrays), timed(int8, arrays)
        for fn, x in columns.values():
            fn(x)  # traces and warms up
        times: dict[str, list[float]] = {c: [] for c in columns}
        for _ in range(args.rounds):
            for column, (fn, x) in columns.items():
                times[column].append(seconds_per_call(fn, x))
        ms = {c: float(np.median(t)) * 1e3 / REPEATS for c, t in times.items()}
        rows.append({"batch": batch, "ms": ms, "relative_rmse": error})
        for part in parts:
            f32_ms, int8_ms = ms[f"{part} f32"], ms[f"{part} int8"]
            print(f"batch {batch:>2} {part:<6} f32 {f32_ms:7.3f} ms  int8 {int8_ms:7.3f} ms  "
                  f"f32/int8 {f32_ms / int8_ms:.2f}x  relative RMSE {error[part]:.4f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"cpu": cpu, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
