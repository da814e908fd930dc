"""`int8flow bench --layers`: INT8 against FP32, layer by layer, in one process.

Real conv/matmul shapes of ResNet50, MobileNetV2 and a BERT-base encoder
(seq 128). For each layer and batch six columns are timed interleaved, round
after round, so drift hits them alike; each reads its input on its own device:
- `int8`: int8flow on QCPU: per-call dynamic u8 quantization of the float input,
  then the quantized op on pre-packed per-channel s8 weights, float output;
- `int8_u8`: the quantized op alone, u8 in and requantized u8 out: a layer
  inside a chain of int8 layers, here with zero points of 128;
- `int8_relu`: the same with zero points of 0, as inside a CNN: the input
  comes after a ReLU, and a fused ReLU makes the output >= 0. oneDNN 3.2 runs
  that case on faster AMX kernels (kernels/quantization.h);
- `f32`: int8flow's oneDNN FP32 kernel on QCPU;
- `tf_f32`: stock TF's CPU op (its own oneDNN where it is on, else Eigen);
- `tf_int8`: stock TF's quantized op on CPU (QuantizedMatMulWithBiasAndDequantize,
  QuantizedConv2D, QuantizedDepthwiseConv2D), input quantization included. These
  have kernels only where TF runs its oneDNN (by default on CPUs with AVX-512
  VNNI, BF16 or AMX; `TF_ENABLE_ONEDNN_OPTS=1` elsewhere): n/a otherwise.
Each call runs the layer REPEATS times, so a tf.function call's fixed cost
(about 0.3 ms here) does not hide small layers. Times are medians of `rounds`
rounds, per layer run; GOPS = 2·MACs / time.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

COLUMNS = ["int8", "int8_u8", "int8_relu", "f32", "tf_f32", "tf_int8"]
# Each timed call runs the layer this many times: a tf.function call costs
# about 0.3 ms here, as much as a small layer at batch 1.
REPEATS = 8


@dataclass
class Layer:
    model: str
    name: str
    kind: str  # "matmul", "conv" or "depthwise"
    shape: tuple  # matmul: (rows per batch item, K, N); conv: (H, W, C, kernel, out/multiplier, stride)

    def macs(self, batch: int) -> int:
        if self.kind == "matmul":
            rows, k, n = self.shape
            return batch * rows * k * n
        h, w, c, kernel, out, stride = self.shape  # depthwise: `out` is the multiplier
        return batch * -(-h // stride) * -(-w // stride) * c * out * kernel * kernel


LAYERS = [
    Layer("resnet50", "conv1 7x7/2 3->64", "conv", (224, 224, 3, 7, 64, 2)),
    Layer("resnet50", "res2 1x1 64->256", "conv", (56, 56, 64, 1, 256, 1)),
    Layer("resnet50", "res2 3x3 64->64", "conv", (56, 56, 64, 3, 64, 1)),
    Layer("resnet50", "res3 3x3 128->128", "conv", (28, 28, 128, 3, 128, 1)),
    Layer("resnet50", "res4 1x1 1024->256", "conv", (14, 14, 1024, 1, 256, 1)),
    Layer("resnet50", "res4 3x3 256->256", "conv", (14, 14, 256, 3, 256, 1)),
    Layer("resnet50", "res5 3x3 512->512", "conv", (7, 7, 512, 3, 512, 1)),
    Layer("resnet50", "fc 2048->1000", "matmul", (1, 2048, 1000)),
    Layer("mobilenetv2", "expand 1x1 32->192", "conv", (28, 28, 32, 1, 192, 1)),
    Layer("mobilenetv2", "depthwise 3x3 192", "depthwise", (28, 28, 192, 3, 1, 1)),
    Layer("mobilenetv2", "project 1x1 192->32", "conv", (28, 28, 192, 1, 32, 1)),
    Layer("mobilenetv2", "last 1x1 320->1280", "conv", (7, 7, 320, 1, 1280, 1)),
    Layer("bert-base", "QKV/out 768->768", "matmul", (128, 768, 768)),
    Layer("bert-base", "FFN up 768->3072", "matmul", (128, 768, 3072)),
    Layer("bert-base", "FFN down 3072->768", "matmul", (128, 3072, 768)),
]


def native_shapes(batches: list[int]) -> str:
    """LAYERS at each batch, one per line, as benchmarks/native/onednn_layers reads them:
    `kind model name batch shape...`, with `_` for the spaces in names and `shape` as Layer.shape."""
    return "\n".join(f"{layer.kind} {layer.model} {layer.name.replace(' ', '_')} {batch} " +
                     " ".join(map(str, layer.shape)) for layer in LAYERS for batch in batches)


def build(layer: Layer, batch: int) -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """Per column: a tf.function and its input, on the column's device."""
    import tensorflow as tf

    from int8flow import ops

    rng = np.random.default_rng(0)
    if layer.kind == "matmul":
        rows, k, n = layer.shape
        x = rng.standard_normal((batch * rows, k)).astype(np.float32)
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    else:
        h, wd, c, kernel, out, stride = layer.shape
        x = rng.standard_normal((batch, h, wd, c)).astype(np.float32)
        w = (rng.standard_normal((kernel, kernel, c, out)) / np.sqrt(kernel * kernel * c)).astype(np.float32)
    channels_last = w.reshape(*w.shape[:-2], -1) if layer.kind == "depthwise" else w
    wq, ws = ops.quantize_weights(channels_last)
    wq = wq.reshape(w.shape)
    w_range = float(np.abs(w).max())
    tf_wq = np.clip(np.round(w / w_range * 127), -127, 127).astype(np.int8)
    stride = 1 if layer.kind == "matmul" else layer.shape[5]
    strides = [1, stride, stride, 1]

    def float_op(t: Any) -> Any:
        if layer.kind == "matmul":
            return tf.matmul(t, w)
        if layer.kind == "depthwise":
            return tf.nn.depthwise_conv2d(t, w, strides, "SAME")
        return tf.nn.conv2d(t, w, strides, "SAME")

    def quantized(q: Any, s: Any, z: Any, **out: Any) -> Any:
        if layer.kind == "matmul":
            return ops.quantized_matmul(q, wq, s, z, ws, **out)
        return ops.quantized_conv2d(q, wq, s, z, ws, strides=stride, depthwise=layer.kind == "depthwise",
                                    **out)

    def int8flow_int8(t: Any) -> Any:
        return quantized(*ops.quantize(t))

    x_scale = float(np.abs(x).max()) / 127
    x_u8 = np.clip(np.round(x / x_scale) + 128, 0, 255).astype(np.uint8)

    def int8flow_u8(t: Any) -> Any:
        return quantized(t, x_scale, 128, out_dtype="uint8", out_scale=0.05, out_zero_point=128)

    relu_u8 = np.clip(np.round(np.maximum(x, 0) / x_scale), 0, 255).astype(np.uint8)

    def int8flow_relu(t: Any) -> Any:
        return quantized(t, x_scale, 0, activation="relu", out_dtype="uint8", out_scale=0.05,
                         out_zero_point=0)

    def tf_int8(t: Any) -> Any:
        q = tf.quantization.quantize(t, -4.0, 4.0, tf.quint8, mode="MIN_FIRST" if layer.kind == "matmul"
                                     else "SCALED")
        filt = tf.constant(tf_wq, tf.qint8)
        common = dict(min_input=q.output_min, max_input=q.output_max, min_filter=-w_range,
                      max_filter=w_range, strides=strides, padding="SAME")
        if layer.kind == "matmul":
            return tf.raw_ops.QuantizedMatMulWithBiasAndDequantize(
                a=q.output, b=filt, bias=tf.zeros(w.shape[1]), min_a=q.output_min, max_a=q.output_max,
                min_b=-w_range, max_b=w_range, min_freezed_output=-1.0, max_freezed_output=1.0,
                Toutput=tf.float32, input_quant_mode="MIN_FIRST")
        if layer.kind == "depthwise":
            return tf.raw_ops.QuantizedDepthwiseConv2D(input=q.output, filter=filt, **common)[0]
        return tf.raw_ops.QuantizedConv2D(input=q.output, filter=filt, **common)[0]

    def on(device: str, fn: Callable[[Any], Any], data: np.ndarray) -> tuple[Callable[[Any], Any], Any]:
        @tf.function
        def run(inputs: list[Any]) -> Any:
            # Distinct inputs, so Grappler cannot merge the runs into one, and
            # every result returned, so none is pruned.
            with tf.device(device):
                return [fn(t) for t in inputs]
        with tf.device(device):  # no host-to-device copy per call
            return run, [tf.identity(tf.constant(data)) for _ in range(REPEATS)]

    qcpu, cpu = "/device:QCPU:0", "/device:CPU:0"
    return {"int8": on(qcpu, int8flow_int8, x), "int8_u8": on(qcpu, int8flow_u8, x_u8),
            "int8_relu": on(qcpu, int8flow_relu, relu_u8), "f32": on(qcpu, float_op, x),
            "tf_f32": on(cpu, float_op, x), "tf_int8": on(cpu, tf_int8, x)}


def time_call(fn: Callable[[Any], Any], x: Any, min_seconds: float) -> float:
    """Seconds per call, averaged over enough calls to last `min_seconds`."""
    calls, start = 0, time.perf_counter()
    while True:
        fn(x)  # returns once the function has run: eager execution is synchronous
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def run(batches: list[int], rounds: int, min_seconds: float, models: list[str]) -> list[dict[str, Any]]:
    rows = []
    for layer in [layer for layer in LAYERS if layer.model in models]:
        for batch in batches:
            usable = {}
            for column, (fn, x) in build(layer, batch).items():
                try:
                    for _ in range(2):
                        fn(x)
                    usable[column] = (fn, x)
                except Exception as e:  # a peer op this TF build lacks: shown as n/a
                    print(f"  {layer.model} {layer.name} b{batch} {column}: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120]}")
            times: dict[str, list[float]] = {c: [] for c in usable}
            for _ in range(rounds):
                for column, (fn, x) in usable.items():
                    times[column].append(time_call(fn, x, min_seconds))
            ms = {c: float(np.median(t)) * 1e3 / REPEATS for c, t in times.items()}
            gops = {c: 2 * layer.macs(batch) / (v * 1e-3) / 1e9 for c, v in ms.items()}
            rows.append({"model": layer.model, "layer": layer.name, "batch": batch, "ms": ms, "gops": gops})
            print(format_row(rows[-1]), flush=True)
    return rows


def format_row(r: dict[str, Any]) -> str:
    ms, gops = r["ms"], r["gops"]
    cells = [f"{gops[c]:7.1f}" if c in gops else "    n/a" for c in COLUMNS]
    ratio = lambda a, b: f"{ms[b] / ms[a]:5.2f}x" if a in ms and b in ms else "  n/a"  # noqa: E731
    return (f"{r['model']:<12} {r['layer']:<22} {r['batch']:>3} " + " ".join(cells) +
            f"   {ratio('int8', 'f32')} {ratio('int8', 'tf_int8')} {ratio('int8_u8', 'f32')}"
            f" {ratio('int8_relu', 'f32')}")


HEADER = (f"{'model':<12} {'layer':<22} {'b':>3} " + " ".join(f"{c:>7}" for c in COLUMNS) +
          "   (GOPS); int8/f32, int8/tf_int8, int8_u8/f32, int8_relu/f32")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="int8flow bench --layers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batches", default="1,16")
    p.add_argument("--models", default="resnet50,mobilenetv2,bert-base")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=0.05, help="timing per sample")
    p.add_argument("--out", type=Path, default=Path("bench_layers.json"))
    args = p.parse_args(argv)
    import tensorflow  # noqa: F401  (loads the plugin)

    import int8flow
    from tensorflow.python.util import _pywrap_util_port

    cpu = int8flow.cpu_features()
    # TF's quantized ops (tf_int8) have CPU kernels only where TF runs its oneDNN.
    tf_onednn = _pywrap_util_port.IsMklEnabled()
    print(f"{cpu['model']}, {cpu['cores']} cores, oneDNN {cpu['onednn_version']} {cpu['onednn_isa']}, "
          f"int8 path {cpu['int8_path']}, TF's oneDNN {'on' if tf_onednn else 'off (tf_int8 n/a)'}"
          f"\n{HEADER}", flush=True)
    rows = run([int(b) for b in args.batches.split(",")], args.rounds, args.min_seconds,
               args.models.split(","))
    args.out.write_text(json.dumps({"cpu": cpu, "tf_onednn": tf_onednn, "rows": rows}, indent=1))
    print(f"\nresults: {args.out}")
    return 0
