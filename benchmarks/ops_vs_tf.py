"""Single TF ops on QCPU against the same op on TF's CPU: where a graph slows down when QCPU runs it.

    python benchmarks/ops_vs_tf.py [--ops transpose_heads,concat_last] [--elements 1048576] [--rounds 5]

Each op is traced in a tf.function that first multiplies its input by 1.5,
so the op is fed by a QCPU node as inside a model (the pass then keeps even a
loop-only kernel on QCPU), once under tf.device QCPU and once under CPU, in
one process with int8flow loaded. The input is a [N / 4096, 64, 64] float32
tensor already on that device. Rounds alternate the two sides; each side's
figure is the median over rounds of a round's best of 20-call means, minus
the same for the multiply alone. An op that has no QCPU kernel runs on TF's
CPU either way, and its QCPU figure then holds the copies across. Prints the
ratio QCPU / CPU (above 1: QCPU is slower) and where each op ran.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable


def ops() -> dict[str, Callable]:
    import tensorflow as tf

    def heads(t):  # [B, T, H*D] -> [B, H, T, D], attention's head split
        b, s, f = t.shape
        return tf.transpose(tf.reshape(t, [b, s, 8, f // 8]), [0, 2, 1, 3])

    return {
        "add_bias": lambda t: t + tf.ones([t.shape[-1]]),
        "mul_rows": lambda t: t * tf.ones([t.shape[0], 1, t.shape[2]]),
        "maximum": lambda t: tf.maximum(t, 0.5),
        "greater": lambda t: t > 0,
        "greater_mask": lambda t: tf.cast(t > 0, tf.float32),
        "where": lambda t: tf.where(t > 0, t, 0.0),
        "floor": tf.floor,
        "sign": tf.sign,
        "reciprocal": tf.math.reciprocal,
        "rsqrt": lambda t: tf.math.rsqrt(tf.abs(t) + 1.0),
        "exp": tf.exp,
        "tanh": tf.tanh,
        "sum_last": lambda t: tf.reduce_sum(t, -1),
        "mean_mid": lambda t: tf.reduce_mean(t, 1),
        "max_last": lambda t: tf.reduce_max(t, -1),
        "max_mid": lambda t: tf.reduce_max(t, 1),
        "softmax": tf.nn.softmax,
        "transpose_last2": lambda t: tf.transpose(t, [0, 2, 1]),
        "transpose_heads": heads,
        "concat_last": lambda t: tf.concat([t, t], -1),
        "reverse_mid": lambda t: tf.reverse(t, [1]),
        "strided_slice": lambda t: t[:, ::2, 1::2],
        "pad": lambda t: tf.pad(t, [[0, 0], [1, 1], [2, 2]]),
        "gather_rows": lambda t: tf.gather(t, tf.range(0, t.shape[0], 2)),
        "resize_bilinear": lambda t: tf.image.resize(t[..., None], [2 * t.shape[1], 2 * t.shape[2]]),
        "resize_nearest": lambda t: tf.image.resize(t[..., None], [2 * t.shape[1], 2 * t.shape[2]], "nearest"),
        "tile": lambda t: tf.tile(t[:, :8], [1, 2, 2]),
        "cast_int": lambda t: tf.cast(t, tf.int32),
        "one_hot": lambda t: tf.one_hot(tf.cast(tf.abs(t[:, :, 0]) * 3, tf.int32), 64),
        "argmax_last": lambda t: tf.argmax(t, -1),
        "argmax_mid": lambda t: tf.argmax(t, 1),
        "cumsum_last": lambda t: tf.cumsum(t, -1),
        "top_k": lambda t: tf.math.top_k(t, 5).values,
    }


def best_mean_us(fn, x, calls: int = 20, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn(x)
        best = min(best, (time.perf_counter() - start) / calls)
    return 1e6 * best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", default="", help="comma-separated (default: all)")
    p.add_argument("--elements", type=int, default=1 << 20, help="input size, a multiple of 4096")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    import numpy as np
    import tensorflow as tf

    import int8flow

    if not int8flow.is_loaded():
        print(f"int8flow is not active: {int8flow.load_state()}", file=sys.stderr)
        return 1
    table = ops()
    names = a.ops.split(",") if a.ops else list(table)
    unknown = sorted(set(names) - set(table))
    if unknown or a.elements % 4096 or a.elements <= 0:
        p.error(f"unknown ops {unknown}" if unknown else "--elements must be a positive multiple of 4096")
    values = np.random.default_rng(0).standard_normal((a.elements // 4096, 64, 64)).astype(np.float32)
    sides = {"qcpu": "/device:QCPU:0", "cpu": "/device:CPU:0"}
    runs = {}
    for side, device in sides.items():
        with tf.device(device):
            x = tf.identity(tf.constant(values))
            fns = {"base": tf.function(lambda t: t * 1.5)}
            fns.update({name: tf.function(lambda t, op=table[name]: op(t * 1.5)) for name in names})
            for fn in fns.values():
                fn(x)
        runs[side] = (x, fns)
    where = {}
    for name in names:
        int8flow.reset_stats()
        int8flow.record_op_stats(True)
        with tf.device(sides["qcpu"]):
            runs["qcpu"][1][name](runs["qcpu"][0])
        copies = int8flow.stats()["copies"]
        int8flow.record_op_stats(False)
        crossed = copies["htod"]["count"] + copies["dtoh"]["count"]
        where[name] = f"copies {crossed}" if crossed else "QCPU"
    times: dict[str, dict[str, list[float]]] = {side: {n: [] for n in ["base", *names]} for side in sides}
    for _ in range(a.rounds):
        for side, device in sides.items():
            x, fns = runs[side]
            with tf.device(device):  # a function called outside its trace's scope runs on the default device
                for name in ["base", *names]:
                    times[side][name].append(best_mean_us(fns[name], x))
    median = {side: {n: statistics.median(v) for n, v in t.items()} for side, t in times.items()}
    print(f"{a.elements} float32 elements, {a.rounds} rounds; us per call, the multiply's "
          f"{median['qcpu']['base']:.0f} (QCPU) / {median['cpu']['base']:.0f} (CPU) taken off\n")
    print("| op | QCPU us | TF CPU us | QCPU / CPU | QCPU side |\n|---|---:|---:|---:|---|")
    for name in names:
        q, c = (max(median[side][name] - median[side]["base"], 1.0) for side in sides)
        print(f"| {name} | {q:.0f} | {c:.0f} | {q / c:.2f} | {where[name]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
