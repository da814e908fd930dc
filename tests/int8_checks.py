"""INT8 kernel checks, run in a subprocess by test_int8.py: each QCPU int8 op
against a float reference on the same quantized inputs, each with its bound.

Bounds (ε = 2^-24, float32's unit roundoff):
- The int32 accumulation is exact: with unit scales the float output equals
  numpy's int64 sum bit for bit (each of those sums is a float32 value:
  below 2^24, or 255·127·4096, a multiple of 4096).
- A float output y = sa·ws[c]·acc + bias, then post-ops: the scaling and the
  bias cost at most 4 roundings, |y − ref| ≤ 8ε·(sa·ws[c]·Σ|a−zp|·|w| + |bias|),
  plus 1e-5·|ref| after a transcendental post-op (oneDNN's eltwise accuracy)
  and 1e-6 absolute.
- Where oneDNN runs the weights at 7 bits (a CPU without VNNI, weights
  beyond ±63: PackedWeights::GetInt8), each weight moves by at most one unit:
  add sa·ws[c]·Σ|a−zp|.
- A requantized u8/s8 output is within 1 unit of round(ref/out_scale) + zp
  (the float result sits within the bound above of a rounding tie).
- Quantize is exact against numpy's round-half-even of x * (1/scale) in
  float32, and, independently of that formula, each in-range value
  dequantizes to within half a step (plus float32 rounding) of x; dequantize
  is one rounding of an exact product.
- End to end, quantize → op → float against TF's float op on the original
  inputs: |Δ| ≤ Σ_k (|x_k|·ws/2 + |w_k|·sa/2 + sa·ws/4), from each operand's
  rounding error (at most half a step), plus the float bound.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf

import int8flow
from int8flow import ops

EPS = 2.0**-24
QCPU, CPU = "/device:QCPU:0", "/device:CPU:0"
rng = np.random.default_rng(7)
results: list[dict] = []
SEVEN_BIT_CPU = int8flow.cpu_features()["int8_path"] == "avx2"


def record(name: str, got: tf.Tensor | np.ndarray, ref: np.ndarray, bound: np.ndarray | float,
           device: str | None = None) -> None:
    got_np = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    same_shape = got_np.shape == ref.shape
    err = np.abs(got_np - ref) if same_shape else np.full(1, np.inf)
    ok = same_shape and bool(np.all(err <= bound))
    results.append({"name": name, "device": device or getattr(got, "device", "numpy"),
                    "max_err": float(err.max()) if err.size else 0.0,
                    "shape": list(got_np.shape), "ok": ok})


def u8_activations(shape: tuple, full_range: bool = False, zero_point: int | None = None):
    """(q, scale, zero_point) for u8 activations: random, or every value 255; the
    zero point 117 (0 for full range) unless given."""
    q = np.full(shape, 255, np.uint8) if full_range else rng.integers(0, 256, shape, dtype=np.uint8)
    if zero_point is None:
        zero_point = 0 if full_range else 117
    return q, np.float32(0.02), np.int32(zero_point)


def weights(shape: tuple, full_range: bool = False, zero_channel: bool = False):
    w = np.full(shape, 127, np.int8) if full_range else rng.integers(-127, 128, shape, dtype=np.int8)
    scales = rng.uniform(0.001, 0.01, shape[-1]).astype(np.float32)
    if zero_channel:
        w[..., 0] = 0
        scales[0] = 0.0
    return w, scales


ACT_REF = {"relu": lambda y: np.maximum(y, 0), "relu6": lambda y: np.clip(y, 0, 6),
           "sigmoid": lambda y: 1 / (1 + np.exp(-y)), "tanh": np.tanh,
           "swish": lambda y: y / (1 + np.exp(-y)),
           "gelu": lambda y: np.asarray(tf.nn.gelu(y, approximate=False), np.float64),
           "gelu_tanh": lambda y: np.asarray(tf.nn.gelu(y, approximate=True), np.float64)}


def float_bound(magnitude: np.ndarray, bias: np.ndarray | None, ref: np.ndarray, activation: str | None,
                seven_bit_slack: np.ndarray) -> np.ndarray:
    b = 8 * EPS * (magnitude + (np.abs(bias) if bias is not None else 0)) + 1e-6 + seven_bit_slack
    if activation not in (None, "relu", "relu6"):
        b = b + 1e-5 * np.abs(ref) + 1e-5 * b  # eltwise accuracy; an activation's slope ≤ 1.1
    return b


def matmul_case(name: str, m: int, k: int, n: int, *, activation: str | None = None, bias: bool = False,
                addend: bool = False, full_range: bool = False, zero_channel: bool = False,
                out_dtype: str = "float32", signed: bool = False, batch: tuple = (),
                int8_addend: str | None = None, zero_point: int | None = None) -> None:
    a, sa, za = u8_activations((*batch, m, k), full_range, zero_point)
    if signed:
        a, za = (a.astype(np.int16) - 128).astype(np.int8), np.int32(0)
    w, ws = weights((k, n), full_range, zero_channel)
    fused: dict = {}
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    r = rng.standard_normal((*batch, m, n)).astype(np.float32) if addend else None
    if bias:
        fused["bias"] = b
    if addend:
        fused["addend"] = r
    if int8_addend:  # an int8 residual: scale * (q - zero_point)
        lo_q, hi_q = (-128, 127) if int8_addend == "int8" else (0, 255)
        rq = rng.integers(lo_q, hi_q + 1, (*batch, m, n)).astype(int8_addend)
        r_scale, r_zp = 0.03, (0 if int8_addend == "int8" else 100)
        fused["addend"], addend = (rq, r_scale, r_zp), True
        r = r_scale * (rq.astype(np.float64) - r_zp)
    if activation:
        fused["activation"] = activation
    a64 = a.astype(np.float64) - za
    acc = a64 @ w.astype(np.float64)
    y = sa.astype(np.float64) * ws * acc + (b if bias else 0) + (r if addend else 0)
    ref = ACT_REF[activation](y) if activation else y
    magnitude = sa * ws * (np.abs(a64) @ np.abs(w.astype(np.float64))) + (np.abs(r) if addend else 0)
    slack = sa * ws * np.abs(a64).sum(-1, keepdims=True) if SEVEN_BIT_CPU and np.abs(w).max() > 63 else 0
    bound = float_bound(magnitude, b, ref, activation, slack)
    with tf.device(QCPU):
        if out_dtype == "float32":
            got = ops.quantized_matmul(a, w, sa, za, ws, **fused)
            record(name, got, ref, bound)
        else:
            out_scale, out_zp = 0.05, (0 if out_dtype == "int8" else 100)
            got = ops.quantized_matmul(a, w, sa, za, ws, out_dtype=out_dtype, out_scale=out_scale,
                                       out_zero_point=out_zp, **fused)
            lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
            ref_q = np.clip(np.round(ref / out_scale) + out_zp, lo, hi)
            record(name, got, ref_q, 1.0 + slack / out_scale)


def batch_matmul_case(name: str, x_shape: tuple, y_shape: tuple, *, adj_y: bool = False,
                      per_tensor: bool = False, full_range: bool = False, bias: bool = False,
                      addend: bool = False, activation: str | None = None, out_dtype: str = "float32") -> None:
    """Attention-style products: u8 x, s8 y quantized per call (one scale, or per column)."""
    x, sx, zx = u8_activations(x_shape, full_range)
    y = np.full(y_shape, 127, np.int8) if full_range else rng.integers(-127, 128, y_shape, dtype=np.int8)
    n = y_shape[-2] if adj_y else y_shape[-1]
    ys = np.array([0.004], np.float32) if per_tensor else rng.uniform(0.001, 0.01, n).astype(np.float32)
    x64 = x.astype(np.float64) - zx
    y64 = np.swapaxes(y.astype(np.float64), -1, -2) if adj_y else y.astype(np.float64)
    acc = np.matmul(x64, y64)
    y_scale = ys if not per_tensor else ys[0]
    ref = sx * y_scale * acc
    magnitude = sx * y_scale * np.matmul(np.abs(x64), np.abs(y64))
    fused: dict = {}
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    if bias:
        fused["bias"], ref = b, ref + b
    if addend:
        r = rng.standard_normal(ref.shape).astype(np.float32)
        fused["addend"], ref, magnitude = r, ref + r, magnitude + np.abs(r)
    if activation:
        fused["activation"], ref = activation, ACT_REF[activation](ref)
    slack = (sx * y_scale * np.abs(x64).sum(-1, keepdims=True)
             if SEVEN_BIT_CPU and y.size and np.abs(y).max() > 63 else 0)
    with tf.device(QCPU):
        if out_dtype == "float32":
            got = ops.quantized_batch_matmul(x, y, sx, zx, ys, adj_y=adj_y, **fused)
            record(name, got, ref, float_bound(magnitude, b, ref, activation, slack))
        else:
            got = ops.quantized_batch_matmul(x, y, sx, zx, ys, adj_y=adj_y, out_dtype=out_dtype,
                                             out_scale=0.05, out_zero_point=7, **fused)
            lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
            record(name, got, np.clip(np.round(ref / 0.05) + 7, lo, hi), 1.0 + np.max(slack) / 0.05)


def exact_accumulation(name: str, m: int, k: int, n: int, full_range: bool) -> None:
    """Unit scales: the float output is the int32 sum itself."""
    a, _, za = u8_activations((m, k), full_range)
    w = np.full((k, n), 63 if SEVEN_BIT_CPU else 127, np.int8) if full_range else \
        rng.integers(-63 if SEVEN_BIT_CPU else -127, 64 if SEVEN_BIT_CPU else 128, (k, n), dtype=np.int8)
    with tf.device(QCPU):
        got = ops.quantized_matmul(a, w, np.float32(1), za, np.ones(n, np.float32))
    ref = (a.astype(np.int64) - za) @ w.astype(np.int64)
    record(name, got, ref, 0.0)


def conv_case(name: str, shape: tuple, filter_shape: tuple, *, strides=1, padding="SAME", dilations=1,
              depthwise: bool = False, activation: str | None = None, bias: bool = False,
              scale: bool = False, addend: bool = False, zero_channel: bool = False,
              out_dtype: str = "float32", full_range: bool = False, int8_addend: bool = False,
              signed: bool = False, zero_point: int | None = None, out_zero_point: int = 3) -> None:
    x, sx, zx = u8_activations(shape, full_range, zero_point)
    if signed:  # s8 activations, symmetric
        x, zx = (x.astype(np.int16) - 128).astype(np.int8), np.int32(0)
    channels = filter_shape[2] * filter_shape[3] if depthwise else filter_shape[3]
    w = np.full(filter_shape, 127, np.int8) if full_range else rng.integers(-127, 128, filter_shape, dtype=np.int8)
    ws = rng.uniform(0.001, 0.01, channels).astype(np.float32)
    if zero_channel:
        w[..., 0] = 0
        ws[0] = 0.0
    x_f = ((x.astype(np.float64) - zx) * sx)
    w_f = w.astype(np.float64) * (ws.reshape(filter_shape[2], filter_shape[3]) if depthwise else ws)
    conv = (lambda t, f: tf.nn.depthwise_conv2d(t, f, [1, strides, strides, 1], padding,
                                                dilations=[dilations] * 2)) if depthwise else \
           (lambda t, f: tf.nn.conv2d(t, f, strides, padding, dilations=dilations))
    with tf.device(CPU):  # float64 on TF's CPU kernels: exact enough to be the reference
        y = conv(tf.constant(x_f), tf.constant(w_f)).numpy()
        magnitude = conv(tf.constant(np.abs(x_f)), tf.constant(np.abs(w_f))).numpy()
        slack = 0.0
        if SEVEN_BIT_CPU and not depthwise and np.abs(w).max() > 63:  # a depthwise filter runs 8-bit
            slack = conv(tf.constant(np.abs(x_f)), tf.constant(np.ones_like(w_f) * ws)).numpy()
    fused: dict = {}
    b = rng.standard_normal(channels).astype(np.float32) if bias else None
    s = rng.uniform(0.5, 2, channels).astype(np.float32) if scale else None
    if bias:
        fused["bias"], y = b, y + b
    if scale:
        fused["scale"], y, magnitude, slack = s, y * s, magnitude * s, slack * s
    if addend:
        r = rng.standard_normal(y.shape).astype(np.float32)
        fused["addend"], y, magnitude = r, y + r, magnitude + np.abs(r)
    if int8_addend:  # a u8 residual from the previous int8 layer
        rq = rng.integers(0, 256, y.shape).astype(np.uint8)
        r = 0.02 * (rq.astype(np.float64) - 90)
        fused["addend"], y, magnitude = (rq, 0.02, 90), y + r, magnitude + np.abs(r)
    if activation:
        fused["activation"] = activation
    ref = ACT_REF[activation](y) if activation else y
    bound = float_bound(magnitude * (1 + 8 * EPS), b, ref, activation, slack)
    with tf.device(QCPU):
        if out_dtype == "float32":
            got = ops.quantized_conv2d(x, w, sx, zx, ws, strides=strides, padding=padding,
                                       dilations=dilations, depthwise=depthwise, **fused)
            record(name, got, ref, bound)
        else:
            got = ops.quantized_conv2d(x, w, sx, zx, ws, strides=strides, padding=padding,
                                       dilations=dilations, depthwise=depthwise, out_dtype=out_dtype,
                                       out_scale=0.05, out_zero_point=out_zero_point, **fused)
            lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
            record(name, got, np.clip(np.round(ref / 0.05) + out_zero_point, lo, hi),
                   1.0 + np.max(slack) / 0.05)


def quantize_case(name: str, x: np.ndarray, dtype: str, scale: float | None = None, zp: int = 0) -> None:
    with tf.device(QCPU):
        q, s, z = ops.quantize(x, dtype, scale, zp)
    s, z = np.float32(s.numpy()), int(z.numpy())
    finite = x[np.isfinite(x)]
    if scale is None:  # the documented dynamic range
        lo, hi = min(float(finite.min(initial=0)), 0.0), max(float(finite.max(initial=0)), 0.0)
        if dtype == "uint8":
            want_s = np.float32(hi) / np.float32(255) - np.float32(lo) / np.float32(255)
            want_z = int(np.clip(np.round(-np.float32(lo) / want_s), 0, 255)) if want_s > 0 else 0
        else:
            want_s, want_z = np.float32(max(hi, -lo)) / np.float32(127), 0
        if not want_s >= np.finfo(np.float32).tiny:
            want_s = np.float32(1)
        record(name + " scale", np.float32(s), want_s, 0.0, q.device)
        record(name + " zero point", np.float32(z), np.float32(want_z), 0.0, q.device)
    qmin, qmax = (-128, 127) if dtype == "int8" else (0, 255)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.where(np.isnan(x), z, np.round(x * (np.float32(1) / s)) + z)  # float32, as the kernel
    record(name, q, np.clip(r, qmin, qmax), 0.0)
    with tf.device(QCPU):
        d = ops.dequantize(q, s, z)
    record(name + " dequantize", d, (q.numpy().astype(np.float64) - z) * s,
           EPS * np.abs((q.numpy().astype(np.float64) - z) * s))
    with np.errstate(invalid="ignore"):
        in_range = np.isfinite(x) & (x >= (qmin - z) * s) & (x <= (qmax - z) * s)
    x_in = np.where(in_range, x, 0)
    record(name + " within half a step", np.where(in_range, d.numpy(), 0), x_in,
           s / 2 * (1 + 4 * EPS) + 4 * EPS * np.abs(x_in), d.device)


def nonfinite_case(name: str, x: np.ndarray, dtype: str) -> None:
    """A per-call range over NaN or Inf: scale NaN, every value the zero point 0,
    and all-NaN out of Dequantize and of quantized ops, even past a fused ReLU,
    which would turn a NaN into 0."""
    with tf.device(QCPU):
        q, s, z = ops.quantize(x, dtype)
        d = ops.dequantize(q, s, z)
        m = ops.quantized_matmul(tf.reshape(q, (2, 3)), np.ones((3, 4), np.int8), s, z, np.ones(4, np.float32),
                                 bias=np.ones(4, np.float32), activation="relu")
        c = ops.quantized_conv2d(tf.reshape(q, (1, 2, 3, 1)), np.ones((1, 1, 1, 2), np.int8), s, z,
                                 np.ones(2, np.float32), activation="relu")
    record(name + " scale is NaN", np.isnan(s.numpy()), True, 0.0, s.device)
    record(name + " values are the zero point", np.float32(z) + q.numpy().astype(np.float32), np.zeros_like(x), 0.0,
           q.device)
    for what, got in (("dequantize", d), ("matmul+relu", m), ("conv+relu", c)):
        record(f"{name} {what} is all NaN", np.isnan(got.numpy()), np.ones(got.shape, bool), 0.0, got.device)


def end_to_end(name: str, m: int, k: int, n: int) -> None:
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    wq, ws = ops.quantize_weights(w, reduce_range=SEVEN_BIT_CPU)
    with tf.device(QCPU):
        q, sa, za = ops.quantize(x)
        got = ops.quantized_matmul(q, wq, sa, za, ws)
    with tf.device(CPU):
        ref = tf.matmul(x, w).numpy()
    sa = float(sa.numpy())
    bound = (np.abs(x).astype(np.float64) @ (np.ones_like(w) * ws / 2)
             + (sa / 2) * np.abs(w).sum(0) + k * sa * ws / 4 + 1e-5 * (np.abs(x) @ np.abs(w)))
    record(name, got, ref, bound)


# --- the int32 accumulation --------------------------------------------------
exact_accumulation("QuantizedMatMul exact int32, random", 8, 300, 17, False)
exact_accumulation("QuantizedMatMul exact int32, saturation-prone u8 255 x max weight, K=4096", 2, 4096, 16, True)
# --- matmul -------------------------------------------------------------------
matmul_case("QuantizedMatMul batch 1", 1, 64, 32)
matmul_case("QuantizedMatMul K=1", 5, 1, 7)
matmul_case("QuantizedMatMul K=4096", 4, 4096, 24)
matmul_case("QuantizedMatMul saturation-prone full range K=256", 3, 256, 16, full_range=True)
matmul_case("QuantizedMatMul odd N, zero-range channel", 6, 37, 13, zero_channel=True)
matmul_case("QuantizedMatMul s8 activations", 4, 50, 9, signed=True)
matmul_case("QuantizedMatMul 3-D activations", 5, 32, 8, batch=(3,))
matmul_case("QuantizedMatMul empty M", 0, 16, 8)
matmul_case("QuantizedMatMul bias", 4, 40, 12, bias=True)
matmul_case("QuantizedMatMul bias+add+relu", 4, 40, 12, bias=True, addend=True, activation="relu")
for act in ["relu6", "sigmoid", "tanh", "swish", "gelu", "gelu_tanh"]:
    matmul_case(f"QuantizedMatMul bias+{act}", 3, 33, 10, bias=True, activation=act)
matmul_case("QuantizedMatMul bias+u8 addend+relu", 4, 40, 12, bias=True, activation="relu", int8_addend="uint8")
matmul_case("QuantizedMatMul s8 addend, requantized u8", 6, 48, 10, int8_addend="int8", out_dtype="uint8")
matmul_case("QuantizedMatMul requantized u8", 8, 64, 16, bias=True, activation="relu", out_dtype="uint8")
matmul_case("QuantizedMatMul requantized s8", 8, 64, 16, bias=True, out_dtype="int8")
# --- batched matmul -------------------------------------------------------------
batch_matmul_case("QuantizedBatchMatMul attention Q.K^T, one scale", (2, 4, 16, 32), (2, 4, 16, 32),
                  adj_y=True, per_tensor=True)
batch_matmul_case("QuantizedBatchMatMul attention P.V", (2, 4, 16, 16), (2, 4, 16, 32))
batch_matmul_case("QuantizedBatchMatMul broadcast batch, shared weights, bias+relu", (3, 5, 8), (8, 6),
                  bias=True, activation="relu")
batch_matmul_case("QuantizedBatchMatMul broadcast y batch", (1, 7, 9), (4, 9, 5), addend=True)
batch_matmul_case("QuantizedBatchMatMul saturation-prone full range K=512", (2, 3, 512), (2, 512, 8),
                  full_range=True)
batch_matmul_case("QuantizedBatchMatMul requantized u8", (2, 8, 24), (2, 24, 16), out_dtype="uint8")
batch_matmul_case("QuantizedBatchMatMul empty batch", (0, 4, 8), (0, 8, 3))
# --- convolutions -------------------------------------------------------------
conv_case("QuantizedConv2D 3x3 SAME batch 1", (1, 9, 9, 8), (3, 3, 8, 16))
conv_case("QuantizedConv2D 1x1 odd channels", (2, 5, 7, 13), (1, 1, 13, 7))
conv_case("QuantizedConv2D stride 2 VALID", (1, 11, 10, 4), (3, 3, 4, 8), strides=2, padding="VALID")
conv_case("QuantizedConv2D dilation 2", (1, 12, 12, 3), (3, 3, 3, 5), dilations=2)
conv_case("QuantizedConv2D zero-range channel", (1, 6, 6, 4), (3, 3, 4, 6), zero_channel=True)
conv_case("QuantizedConv2D saturation-prone full range", (1, 8, 8, 32), (3, 3, 32, 16), full_range=True)
conv_case("QuantizedConv2D empty batch", (0, 5, 5, 3), (3, 3, 3, 4))
conv_case("QuantizedConv2D bias+scale+add+relu (folded BatchNorm, residual)", (1, 8, 8, 8), (3, 3, 8, 8),
          bias=True, scale=True, addend=True, activation="relu")
conv_case("QuantizedConv2D bias+u8 addend+relu, requantized u8 (an int8 residual block)", (1, 8, 8, 8),
          (3, 3, 8, 8), bias=True, int8_addend=True, activation="relu", out_dtype="uint8")
conv_case("QuantizedConv2D s8 activations, saturation-prone", (1, 8, 8, 32), (3, 3, 32, 8), signed=True,
          full_range=True)
conv_case("QuantizedConv2D bias+swish", (1, 7, 7, 6), (3, 3, 6, 10), bias=True, activation="swish")
conv_case("QuantizedConv2D bias+relu6 requantized u8", (1, 8, 8, 8), (3, 3, 8, 16), bias=True,
          activation="relu6", out_dtype="uint8")
conv_case("QuantizedConv2D requantized s8", (1, 8, 8, 8), (1, 1, 8, 16), bias=True, out_dtype="int8")
conv_case("QuantizedDepthwiseConv2D 3x3", (1, 10, 10, 8), (3, 3, 8, 1), depthwise=True)
conv_case("QuantizedDepthwiseConv2D multiplier 2 stride 2", (2, 9, 9, 5), (3, 3, 5, 2), depthwise=True,
          strides=2)
conv_case("QuantizedDepthwiseConv2D no zero point (after a ReLU), saturation-prone", (1, 9, 9, 32), (3, 3, 32, 1),
          depthwise=True, full_range=True)
conv_case("QuantizedDepthwiseConv2D bias+relu6", (1, 8, 8, 16), (3, 3, 16, 1), depthwise=True, bias=True,
          activation="relu6")
# Zero points of 0 get primitives without zero-point arguments (oneDNN's faster
# AMX convolutions take none): one kernel, the activations' zero point 0, then
# 117, then 0 again, must switch primitive (and weight layout) each call.
for zp in [0, 117, 0]:
    conv_case(f"QuantizedConv2D zero points in {zp} and out 0, requantized u8", (1, 8, 8, 16), (3, 3, 16, 16),
              bias=True, activation="relu", out_dtype="uint8", zero_point=zp, out_zero_point=0)
    conv_case(f"QuantizedConv2D 1x1 zero point {zp}, residual", (1, 6, 6, 32), (1, 1, 32, 64), bias=True,
              addend=True, activation="relu", zero_point=zp)
    matmul_case(f"QuantizedMatMul zero point {zp}", 8, 96, 40, bias=True, zero_point=zp)
# --- quantize / dequantize ----------------------------------------------------
x = rng.standard_normal((3, 50)).astype(np.float32) * 3 + 1
quantize_case("Quantize dynamic u8", x, "uint8")
quantize_case("Quantize dynamic s8", x, "int8")
quantize_case("Quantize dynamic u8 all positive", np.abs(x), "uint8")
quantize_case("Quantize dynamic u8 large (parallel)", rng.standard_normal(300_000).astype(np.float32), "uint8")
quantize_case("Quantize dynamic u8 all zeros", np.zeros((4, 4), np.float32), "uint8")
quantize_case("Quantize dynamic u8 empty", np.zeros((0, 3), np.float32), "uint8")
special = np.array([np.nan, np.inf, -np.inf, 1.5, -0.5, 0.0], np.float32)
quantize_case("Quantize static u8 NaN and Inf", special, "uint8", 0.05, 30)
quantize_case("Quantize static s8 NaN and Inf", special, "int8", 0.05, 0)
nonfinite_case("Quantize dynamic u8 NaN and Inf", special, "uint8")
nonfinite_case("Quantize dynamic s8 NaN and Inf", special, "int8")
nonfinite_case("Quantize dynamic u8 one Inf", np.array([1.0, -2.0, np.inf, 0.5, 3.0, 0.0], np.float32), "uint8")
quantize_case("Quantize dynamic u8 range beyond float32 max", np.array([3e38, -3e38, 1.0], np.float32), "uint8")
quantize_case("Quantize static u8", x, "uint8", 0.05, 30)
quantize_case("Quantize static s8 saturating", x * 100, "int8", 0.05, 0)
# --- end to end ---------------------------------------------------------------
end_to_end("QuantizedMatMul end to end vs TF float MatMul", 16, 256, 64)
end_to_end("QuantizedMatMul end to end vs TF float MatMul, batch 1", 1, 768, 96)

json.dump({"results": results, "seven_bit_cpu": SEVEN_BIT_CPU,
           "isa": int8flow.cpu_features()["onednn_isa"]}, open(sys.argv[1], "w"), indent=1)
