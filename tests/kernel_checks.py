"""Runs every QCPU kernel and fusion against TF's own CPU op on the same inputs.

    python kernel_checks.py OUT.json

Each check records where the op ran, the largest error, and the bound it must
stay within; test_kernels.py asserts on the file. The bounds, per op:

- exact (bound 0): Relu, Relu6, LeakyRelu, Neg, Abs, Square, BiasAdd and the
  binary ops but RealDiv; oneDNN and Eigen compute the same single IEEE
  operation.
- RealDiv: 2 ulp (|err| <= 2.4e-7 |ref|): when only the divisor has the
  output's shape, QCPU computes 1 / (b / a), two roundings.
- MatMul and fused MatMul: |err| <= 1e-5 * (|a| @ |b| + |bias| + |addend|),
  elementwise: both sum K float32 products, in different orders.
- transcendental ops (Elu, Sigmoid, Tanh, Sqrt) and Softmax:
  |err| <= 1e-5 |ref| + 1e-6: oneDNN's approximations against Eigen's.
- Log: |err| <= 1e-5 |ref| + 5e-6: oneDNN's AVX2 log is the least precise.
- Rsqrt: 2 ulp (|err| <= 2.4e-7 |ref|): sqrt, then a reciprocal.
- FusedBatchNorm(V2, V3): y within 1e-5 (|y| + max|x| max|scale| + max|offset|)
  + 1e-6; the statistics within 1e-5 (|ref| + max|x|^2) + 1e-6: float32 sums
  of x and x^2 over the batch, in oneDNN's order against Eigen's.
- Conv2D, DepthwiseConv2dNative, Conv3D, their gradients and fused convolutions:
  |err| <= 1e-5 * (|x| conv |w'|) + the fused bound, where w' is the filter
  with a folded BatchNorm's scale: the same float32 sums in other orders.
- BatchMatMulV2, Einsum: as MatMul, |err| <= 1e-5 * (|a| . |b|) over the
  contracted labels.
- GatherV2 (float and int8), SelectV2, StridedSlice: exact (copies).
- AddN of n tensors: n ulps of the terms (|err| <= n 1.2e-7 sum|x|): the same
  float32 sums, in input order.
- A training step's ops: MaxPoolGrad, DivNoNan exact; SparseSoftmaxCrossEntropy
  WithLogits' loss and gradient 1e-6 (|ref| + 1) (exp and log of a row, summed
  in another order); RsqrtGrad, ReciprocalGrad and SqrtGrad with a zero dy
  2 ulp.
- LayerNorm (Keras' graph, fused): |err| <= 1e-5 (|ref| + 1)(1 + |beta|):
  float32 moments of a row, summed in other orders.
- LSTM cell (Keras' step after the gates' product, fused; h and c both):
  |err| <= 3e-5 (|c_prev| + 1) + 1e-6: three transcendental ops' errors
  (oneDNN's against Eigen's), each scaled by at most |c_prev| + 1.
- GRU cell (Keras' reset_after step after its products' parts, fused):
  |err| <= 3e-5 (|h_prev| + |rh| + 1) + 1e-6: likewise, r's error scaled by
  |rh| inside the tanh.
- The ops of recurrent layers' loop bodies (loop_ops.cc): LogicalAnd/Or/Not,
  ZerosLike, Split, SplitV, ConcatV2, StridedSliceGrad exact (logic and
  copies); SigmoidGrad, TanhGrad 2 ulp of dy (|err| <= 2.4e-7 (|ref| + |dy|):
  the same products, rounded in another order); BiasAddGrad
  1e-6 * sum|dy| over the summed dims (the same sums in another order).
- Cast (float, double, int32, int64, bool, uint8, int8): exact (static_cast,
  as TF's CPU kernel converts). ResourceScatterAdd/Sub/Update of a variable:
  1 ulp per update of a row (|err| <= 2.4e-7 |ref|; a repeated index adds twice);
  after a bad index, exactly the table as it was (TF's CPU kernel differs here:
  it updates the rows before the bad one).
- An RNN cell's activations and their gradients (activation_loops.cc): Exp,
  Expm1, Erfc, Softplus, Selu, Cos, Sin, Tan, Atan, Erf, LogSoftmax as the
  transcendental ops; Reciprocal 2 ulp; Floor, Ceil, Round, Softsign,
  ReluGrad, Relu6Grad, EluGrad, SeluGrad, LeakyReluGrad, SoftsignGrad,
  Select, Fill and float comparisons exact (TF's formulas in TF's order);
  SqrtGrad 2 ulp.
- bf16 and float16 nodes on the float32 kernels (half_as_float.h): 1 ulp of
  the type (2^-7 |ref| for bf16, 2^-10 |ref| for float16: both round a float32
  result); copies and Casts into and out of those types exact.
- Optimizers' cond branches (branch_ops.cc): int64 AddV2, Sub, Mul, FloorDiv,
  FloorMod, Maximum, Minimum and comparisons, and Sign, exact; Pow 2 ulp
  (|err| <= 2.4e-7 |ref|: std::pow against Eigen's vectorized pow).
- A masked RNN's mask and its gradients (tensor_list.cc): Tile of bools (and floats) and
  TensorListGetItem/PopBack of bool lists exact (copies); AddN of float lists
  1 ulp per added list (|err| <= 2.4e-7 |ref| per addition: the same sums).
- Pad, Transpose, ReverseV2, ConcatV2, MaxPool, MaxPool3D: exact (copies and comparisons); Cumsum exact (TF's
  order of adds, in the element type); ResizeBilinear
  and ResizeNearestNeighbor exact (TF's weights and float formulas, unfused). AvgPool, AvgPool3D, Mean:
  1e-6 |ref| + 1e-7 * max|x| (a sum of at most a few hundred values).
  Sum: 1e-6 * sum|x|. Max, Min: exact.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port

import int8flow

rng = np.random.default_rng(0)
results: list[dict] = []
QCPU, CPU = "/device:QCPU:0", "/device:CPU:0"
# Whether TF's CPU runs its oneDNN kernels here (TF_ENABLE_ONEDNN_OPTS, or by
# default on CPUs with AVX-512 VNNI, BF16 or AMX), or Eigen's.
TF_USES_ONEDNN = _pywrap_util_port.IsMklEnabled()


def rand(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def record(name: str, ran_on: str, q: tf.Tensor, c: tf.Tensor, bound: np.ndarray | float) -> None:
    """`ran_on`: where the QCPU side ran (or why it does not count as QCPU)."""
    q, c_np = q.numpy(), c.numpy()
    # NaN where TF gives NaN, the same infinity where TF gives one.
    same = (q == c_np) | (np.isnan(q) & np.isnan(c_np))
    err = np.where(same, 0.0, np.abs(q.astype(np.float64) - c_np.astype(np.float64)))
    err = np.where(np.isnan(err), np.inf, err)
    excess = err - np.nan_to_num(bound, nan=0.0, posinf=0.0)
    results.append({
        "name": name, "device": ran_on, "shape_ok": q.shape == c_np.shape,
        "max_err": float(err.max()) if err.size else 0.0,
        "ok": bool(q.shape == c_np.shape and (excess.size == 0 or excess.max() <= 0)),
    })


def eager(name: str, fn, arrays: list[np.ndarray], bound) -> None:
    """`fn` on QCPU and on CPU, eagerly; `bound(ref, *arrays)` is the allowed error."""
    with tf.device(QCPU):
        q = fn(*[tf.constant(a) for a in arrays])
    with tf.device(CPU):
        c = fn(*[tf.constant(a) for a in arrays])
    record(name, q.device, q, c, bound(c.numpy(), *arrays))


def exact(ref, *arrays):
    return 0.0


def transcendental(ref, *arrays):
    return 1e-5 * np.abs(ref) + 1e-6


def log_bound(ref, *arrays):
    # oneDNN's AVX2 log is good to ~4e-6 absolute (2.7e-5 relative near
    # log x = 2), where Eigen's is within 1 ulp.
    return 1e-5 * np.abs(ref) + 5e-6


def matmul_bound(ta=False, tb=False):
    def bound(ref, a, b, *rest):
        a, b = (a.T if ta else a), (b.T if tb else b)
        scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
        for extra in rest:
            scale = scale + np.abs(extra)
        return 1e-5 * scale + 1e-30
    return bound


# ---- MatMul: batch 1, odd sizes, K=1, large K, transposes, empty -------------
for m, k, n in [(1, 7, 5), (3, 1, 4), (33, 1024, 65), (64, 256, 1), (0, 4, 3), (5, 0, 3), (2, 3, 0)]:
    for ta in (False, True):
        for tb in (False, True):
            a = rand(k, m) if ta else rand(m, k)
            b = rand(n, k) if tb else rand(k, n)
            eager(f"MatMul {m}x{k}x{n} ta={ta} tb={tb}",
                  lambda x, y, ta=ta, tb=tb: tf.matmul(x, y, transpose_a=ta, transpose_b=tb),
                  [a, b], matmul_bound(ta, tb))

# Weights new each call, as a gradient loop's products have them: after three
# mostly missed lookups the node reads them in place instead of packing each
# (PackedWeights::Varies), so calls 0-2 and 3-4 take the two paths.
for ta, tb in ((False, False), (True, True)):
    @tf.function
    def on_qcpu(x, y, ta=ta, tb=tb):
        with tf.device(QCPU):
            return tf.matmul(x, y, transpose_a=ta, transpose_b=tb)
    for call in range(5):
        a, b = (rand(24, 9) if ta else rand(9, 24)), (rand(31, 24) if tb else rand(24, 31))
        q = on_qcpu(tf.constant(a), tf.constant(b))
        with tf.device(CPU):
            c = tf.matmul(a, b, transpose_a=ta, transpose_b=tb)
        record(f"MatMul weights new each call, call {call} ta={ta} tb={tb}", q.device, q, c,
               matmul_bound(ta, tb)(c.numpy(), a, b))

# ---- AddN: one input, many (TF sums eight at a time), threaded with NaN, empty ----
for n, shape in [(1, (4, 5)), (2, (3, 1, 4)), (3, (64, 256)), (9, (7,)), (2, (1 << 17,)), (3, (0, 3))]:
    terms = [rand(*shape) for _ in range(n)]
    if shape == (1 << 17,):
        terms[0][rng.integers(0, terms[0].size, 64)] = np.nan
        terms[1][rng.integers(0, terms[1].size, 64)] = np.inf
    eager(f"AddN of {n} {shape}", lambda *t: tf.raw_ops.AddN(inputs=list(t)), terms,
          lambda ref, *a: len(a) * 1.2e-7 * np.nan_to_num(sum(np.abs(t) for t in a), posinf=0.0))

# ---- activations ---------------------------------------------------------------
x = np.concatenate([rand(1000) * 4, np.array([0, -0.0, 6, 6.5, -1e-30, 50, -50], np.float32)])
for name, fn, bound in [
    ("Relu", tf.nn.relu, exact), ("Relu6", tf.nn.relu6, exact),
    ("LeakyRelu", lambda t: tf.nn.leaky_relu(t, alpha=0.3), exact),
    ("Elu", tf.nn.elu, transcendental), ("Sigmoid", tf.math.sigmoid, transcendental),
    ("Tanh", tf.math.tanh, transcendental), ("Neg", tf.negative, exact), ("Abs", tf.abs, exact),
    ("Square", tf.square, exact),
]:
    eager(name, fn, [x], bound)
special = np.array([np.nan, np.inf, -np.inf, -1, 0, -0.0, 1e-38, 3e38, -3e38], np.float32)
for name, fn in [("Relu", tf.nn.relu), ("Relu6", tf.nn.relu6), ("Elu", tf.nn.elu),
                 ("Sigmoid", tf.math.sigmoid), ("Tanh", tf.math.tanh), ("Neg", tf.negative),
                 ("Abs", tf.abs), ("Square", tf.square), ("Sqrt", tf.sqrt),
                 ("Log", tf.math.log)]:
    eager(f"{name} special values", fn, [special], transcendental)
# More elements than one thread takes, with NaN and ±Inf scattered in them.
scattered = rand(1 << 17) * 8
scattered[rng.integers(0, scattered.size, 64)] = np.nan
scattered[rng.integers(0, scattered.size, 64)] = np.inf
scattered[rng.integers(0, scattered.size, 64)] = -np.inf
for name, fn in [("Relu", tf.nn.relu), ("Relu6", tf.nn.relu6)]:
    eager(f"{name} NaN and Inf, threaded", fn, [scattered], exact)
positive = np.concatenate([np.abs(rand(1000)) * 10 + 1e-3, np.array([1, 4, 1e-20, 1e20], np.float32)])
for name, fn, bound in [("Sqrt", tf.sqrt, transcendental), ("Log", tf.math.log, log_bound)]:
    eager(name, fn, [positive], bound)
    eager(f"{name} empty", fn, [np.zeros((0, 3), np.float32)], bound)

# ---- binary ops with broadcasting (either side, both, rank 0) -------------------
# The last four take our loop (broadcast_binary.h), where oneDNN has only its
# reference one: a value per row, either side; a mask over a middle dim; per
# row over the threads.
shapes = [((4, 5), (4, 5)), ((4, 5), (5,)), ((5,), (4, 5)), ((3, 1), (1, 4)),
          ((2, 1, 6), (3, 1)), ((), (2, 3)), ((2, 3), ()), ((0, 3), (3,)),
          ((4, 5, 6), (4, 5, 1)), ((4, 5, 1), (4, 5, 6)), ((2, 3, 4, 5), (2, 1, 1, 5)), ((64, 9, 128), (64, 9, 1))]
for op, fn in [("AddV2", tf.add), ("Sub", tf.subtract), ("Mul", tf.multiply),
               ("RealDiv", tf.divide), ("Maximum", tf.maximum), ("Minimum", tf.minimum),
               ("SquaredDifference", tf.math.squared_difference)]:
    for sa, sb in shapes:
        a, b = rand(*sa), rand(*sb)
        if op == "RealDiv":
            b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
            bound = lambda ref, *_: 2.4e-7 * np.abs(ref)
        elif op == "SquaredDifference":
            bound = lambda ref, *_: 1.2e-7 * np.abs(ref)
        else:
            bound = exact
        eager(f"{op} {sa} {sb}", fn, [a, b], bound)

# NaN on either side, broadcast or not: TF's Maximum and Minimum return NaN, and
# so does clip_by_value (a Minimum of a Maximum).
with_nan = np.array([[np.nan, 1.0, -2.0], [np.inf, -np.inf, 0.5]], np.float32)
for op, fn in [("Maximum", tf.maximum), ("Minimum", tf.minimum),
               ("clip_by_value", lambda t, u: tf.clip_by_value(t, -1.0, 1.0) + 0 * u)]:
    for label, arrays in [("NaN left", [with_nan, rand(2, 3)]), ("NaN right", [rand(2, 3), with_nan]),
                          ("NaN per row", [with_nan, rand(2, 1)]), ("NaN row values", [rand(2, 3), with_nan[:, :1]]),
                          ("NaN scalar", [rand(2, 3), np.float32(np.nan)]),
                          ("NaN broadcast row", [rand(4, 2, 3), with_nan[:1]]),
                          ("threaded", [scattered, np.float32(0.0)])]:
        eager(f"{op} {label}", fn, arrays, exact)

# ---- BiasAdd (NHWC and NCHW), Softmax --------------------------------------------
eager("BiasAdd NHWC", tf.nn.bias_add, [rand(2, 3, 4, 5), rand(5)], exact)
eager("BiasAdd NCHW", lambda v, b: tf.nn.bias_add(v, b, data_format="NCHW"),
      [rand(2, 5, 3, 4), rand(5)], exact)
eager("BiasAdd 2D batch 1", tf.nn.bias_add, [rand(1, 7), rand(7)], exact)
for shape in [(1, 10), (4, 3, 1000), (2, 1), (0, 5)]:
    eager(f"Softmax {shape}", tf.nn.softmax, [rand(*shape) * 5], transcendental)


eager("Rsqrt", tf.math.rsqrt, [positive], lambda ref, *_: 2.4e-7 * np.abs(ref))
eager("Rsqrt special values", tf.math.rsqrt, [special], lambda ref, *_: 2.4e-7 * np.abs(ref))


# ---- convolutions: strides, SAME/VALID/explicit padding, dilation, groups, batch 1, empty --
def conv_bound(conv):
    def bound(ref, x, w):
        with tf.device(CPU):
            scale = conv(tf.constant(np.abs(x)), tf.constant(np.abs(w))).numpy()
        return 1e-5 * scale.astype(np.float64) + 1e-30
    return bound


for label, x_shape, w_shape, stride, padding, dilation in [
    ("3x3 SAME", (1, 9, 9, 3), (3, 3, 3, 8), 1, "SAME", 1),
    ("3x3 VALID stride 2 odd", (2, 10, 11, 5), (3, 3, 5, 7), 2, "VALID", 1),
    ("3x3 SAME stride 2 even", (1, 8, 8, 4), (3, 3, 4, 6), 2, "SAME", 1),
    ("dilation 2", (1, 9, 9, 3), (3, 3, 3, 4), 1, "SAME", 2),
    ("explicit padding", (1, 6, 7, 3), (2, 3, 3, 4), 1, [[0, 0], [1, 2], [0, 1], [0, 0]], 1),
    ("grouped", (1, 5, 5, 6), (3, 3, 2, 9), 1, "SAME", 1),
    ("1x1 wide", (1, 7, 7, 32), (1, 1, 32, 64), 1, "VALID", 1),
    ("7x7 stride 2", (1, 32, 32, 3), (7, 7, 3, 16), 2, "SAME", 1),
]:
    conv = (lambda t, f, s=stride, p=padding, d=dilation:
            tf.nn.conv2d(t, f, s, p, dilations=d))
    eager(f"Conv2D {label}", conv, [rand(*x_shape), rand(*w_shape)], conv_bound(conv))
# Eager mode runs these through one kernel (same attrs): each must still get
# its own filter's output shape and values.
for label, w_shape in [("shared kernel 1x1x64", (1, 1, 16, 64)), ("shared kernel 1x1x8", (1, 1, 16, 8)),
                       ("shared kernel 3x3x8", (3, 3, 16, 8)), ("shared kernel 1x1x64 again", (1, 1, 16, 64))]:
    conv = lambda t, f: tf.nn.conv2d(t, f, 1, "SAME")
    eager(f"Conv2D {label}", conv, [rand(1, 6, 6, 16), rand(*w_shape)], conv_bound(conv))
# TF's own CPU Conv2D returns the input's shape, (0, 5, 5, 3), for an empty
# batch; the right answer is (0, 5, 5, 4).
with tf.device(QCPU):
    empty = tf.nn.conv2d(tf.zeros((0, 5, 5, 3)), rand(3, 3, 3, 4), 1, "SAME")
record("Conv2D empty batch", empty.device, empty, tf.zeros((0, 5, 5, 4)), 0.0)
for label, x_shape, w_shape, stride, padding in [
    ("3x3 SAME", (1, 9, 9, 8), (3, 3, 8, 1), 1, "SAME"),
    ("3x3 VALID stride 2 multiplier 3", (2, 9, 8, 5), (3, 3, 5, 3), 2, "VALID"),
    ("5x5 SAME stride 2", (1, 14, 14, 16), (5, 5, 16, 1), 2, "SAME"),
]:
    conv = (lambda t, f, s=stride, p=padding: tf.nn.depthwise_conv2d(t, f, [1, s, s, 1], p))
    eager(f"DepthwiseConv2dNative {label}", conv, [rand(*x_shape), rand(*w_shape)], conv_bound(conv))

# Conv2D's gradients (conv_backprop.cc): what a ConvLSTM2D's gradient loop runs
# on QCPU, and Conv2DTranspose's forward op; each bound is 1e-5 of the same
# op on absolute values.
def conv_gradients(label: str, x_shape: tuple, w_shape: tuple, stride: int, padding, dilation: int) -> None:
    attrs = dict(strides=[1, stride, stride, 1], dilations=[1, dilation, dilation, 1],
                 padding=padding if isinstance(padding, str) else "EXPLICIT",
                 explicit_paddings=[] if isinstance(padding, str) else sum(padding, []))
    with tf.device(CPU):
        out_shape = tf.nn.conv2d(rand(*x_shape), rand(*w_shape), stride, padding, dilations=dilation).shape
    data = lambda w, g: tf.raw_ops.Conv2DBackpropInput(input_sizes=list(x_shape), filter=w, out_backprop=g, **attrs)
    weights = lambda x, g: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=list(w_shape), out_backprop=g,
                                                           **attrs)
    for name, fn, first in (("Conv2DBackpropInput", data, w_shape), ("Conv2DBackpropFilter", weights, x_shape)):
        eager(f"{name} {label}", fn, [rand(*first), rand(*out_shape)], conv_bound(fn))


for label, x_shape, w_shape, stride, padding, dilation in [
    ("3x3 SAME", (2, 9, 7, 3), (3, 3, 3, 4), 1, "SAME", 1),
    ("3x2 VALID stride 2", (1, 10, 10, 4), (3, 2, 4, 5), 2, "VALID", 1),
    ("5x5 SAME stride 2 odd", (3, 9, 8, 2), (5, 5, 2, 3), 2, "SAME", 1),
    ("dilation 2", (1, 12, 12, 4), (3, 3, 4, 2), 1, "SAME", 2),
    ("1x1 stride 3", (2, 7, 7, 4), (1, 1, 4, 8), 3, "VALID", 1),
    ("explicit padding", (1, 6, 7, 3), (2, 3, 3, 4), 1, [[0, 0], [1, 2], [0, 1], [0, 0]], 1),
    ("batch 1 wide", (1, 8, 8, 64), (3, 3, 64, 32), 2, "SAME", 1),
]:
    conv_gradients(label, x_shape, w_shape, stride, padding, dilation)
with tf.device(QCPU):
    empty = tf.raw_ops.Conv2DBackpropInput(input_sizes=[0, 5, 5, 3], filter=rand(3, 3, 3, 4),
                                           out_backprop=tf.zeros((0, 5, 5, 4)), strides=[1, 1, 1, 1], padding="SAME")
    no_batch = tf.raw_ops.Conv2DBackpropFilter(input=tf.zeros((0, 5, 5, 3)), filter_sizes=[3, 3, 3, 4],
                                               out_backprop=tf.zeros((0, 5, 5, 4)), strides=[1, 1, 1, 1],
                                               padding="SAME")
record("Conv2DBackpropInput empty batch", empty.device, empty, tf.zeros((0, 5, 5, 3)), 0.0)
record("Conv2DBackpropFilter empty batch (zeros)", no_batch.device, no_batch, tf.zeros((3, 3, 3, 4)), 0.0)

# ---- Conv3D (NDHWC) and its gradients: Keras' Conv3D, Conv3DTranspose and their fit ------
def conv3d_attrs(stride: int, padding: str, dilation: int) -> dict:
    return dict(strides=[1, stride, stride, stride, 1], padding=padding, dilations=[1, dilation, dilation, dilation, 1])


for label, x_shape, w_shape, stride, padding, dilation in [
    ("3x3x3 SAME", (2, 6, 7, 8, 3), (3, 3, 3, 3, 8), 1, "SAME", 1),
    ("3x3x3 VALID stride 2 odd", (1, 9, 8, 7, 5), (3, 3, 3, 5, 6), 2, "VALID", 1),
    ("2x3x1 SAME stride 2", (1, 6, 6, 5, 4), (2, 3, 1, 4, 7), 2, "SAME", 1),
    ("1x1x1 wide", (1, 4, 5, 6, 32), (1, 1, 1, 32, 48), 1, "VALID", 1),
    ("batch 3 VALID", (3, 4, 4, 4, 8), (3, 3, 3, 8, 16), 1, "VALID", 1),
]:  # no dilation: TF's Eigen Conv3D refuses it (tf.nn.convolution then runs SpaceToBatchND)
    attrs = conv3d_attrs(stride, padding, dilation)
    conv = lambda t, f, a=attrs: tf.raw_ops.Conv3D(input=t, filter=f, **a)
    eager(f"Conv3D {label}", conv, [rand(*x_shape), rand(*w_shape)], conv_bound(conv))
with tf.device(QCPU):
    empty = tf.raw_ops.Conv3D(input=tf.zeros((0, 3, 4, 5, 2)), filter=rand(3, 3, 3, 2, 4), **conv3d_attrs(1, "SAME", 1))
record("Conv3D empty batch", empty.device, empty, tf.zeros((0, 3, 4, 5, 4)), 0.0)
for label, x_shape, w_shape, stride, padding in [
    ("3x3x3 SAME", (2, 5, 6, 4, 3), (3, 3, 3, 3, 4), 1, "SAME"),
    ("2x2x2 VALID stride 2", (1, 8, 7, 6, 4), (2, 2, 2, 4, 5), 2, "VALID"),
    ("3x3x3 SAME stride 2 odd", (1, 5, 5, 7, 2), (3, 3, 3, 2, 3), 2, "SAME"),
]:
    attrs = conv3d_attrs(stride, padding, 1)
    with tf.device(CPU):
        out_shape = tf.raw_ops.Conv3D(input=rand(*x_shape), filter=rand(*w_shape), **attrs).shape
    data = lambda w, g, a=attrs, s=x_shape: tf.raw_ops.Conv3DBackpropInputV2(input_sizes=list(s), filter=w,
                                                                             out_backprop=g, **a)
    weights = lambda x, g, a=attrs, s=w_shape: tf.raw_ops.Conv3DBackpropFilterV2(input=x, filter_sizes=list(s),
                                                                                 out_backprop=g, **a)
    for name, fn, first in (("Conv3DBackpropInputV2", data, w_shape), ("Conv3DBackpropFilterV2", weights, x_shape)):
        eager(f"{name} {label}", fn, [rand(*first), rand(*out_shape)], conv_bound(fn))
with tf.device(QCPU):  # int64 sizes (Tshape)
    sizes64 = tf.raw_ops.Conv3DBackpropInputV2(input_sizes=tf.constant([1, 4, 4, 4, 2], tf.int64),
                                              filter=tf.ones((3, 3, 3, 2, 3)), out_backprop=tf.ones((1, 4, 4, 4, 3)),
                                              **conv3d_attrs(1, "SAME", 1))
with tf.device(CPU):
    reference = tf.raw_ops.Conv3DBackpropInputV2(input_sizes=[1, 4, 4, 4, 2], filter=tf.ones((3, 3, 3, 2, 3)),
                                                 out_backprop=tf.ones((1, 4, 4, 4, 3)), **conv3d_attrs(1, "SAME", 1))
record("Conv3DBackpropInputV2 int64 input_sizes", sizes64.device, sizes64, reference, 0.0)

# Randomized convolutions: sizes, channels, kernels, strides, dilations and
# padding drawn from a fixed seed. Skipped draws: stride > 1 with dilation > 1
# (TF's CPU ops refuse it). Dilated depthwise convolutions run as
# tf.nn.depthwise_conv2d builds them: SpaceToBatchND, a depthwise conv and
# BatchToSpaceND, all on QCPU.
draw = np.random.default_rng(2026)
for case in range(24):
    n, h, w = int(draw.integers(1, 4)), int(draw.integers(1, 13)), int(draw.integers(1, 13))
    c, k = int(draw.integers(1, 10)), int(draw.integers(1, 6))
    stride, dilation = int(draw.integers(1, 4)), int(draw.integers(1, 3))
    padding = "SAME" if draw.random() < 0.5 else "VALID"
    effective = (k - 1) * dilation + 1
    if (stride > 1 and dilation > 1) or (padding == "VALID" and (effective > h or effective > w)):
        continue
    depthwise = draw.random() < 0.4
    if depthwise:
        multiplier = int(draw.integers(1, 4))
        conv = (lambda t, f, s=stride, p=padding, d=dilation:
                tf.nn.depthwise_conv2d(t, f, [1, s, s, 1], p, dilations=[d, d]))
        filter_shape = (k, k, c, multiplier)
    else:
        conv = (lambda t, f, s=stride, p=padding, d=dilation: tf.nn.conv2d(t, f, s, p, dilations=d))
        filter_shape = (k, k, c, int(draw.integers(1, 10)))
    label = (f"random {case}: x {(n, h, w, c)} f {filter_shape} stride {stride} "
             f"dilation {dilation} {padding}")
    eager(f"{'DepthwiseConv2dNative' if depthwise else 'Conv2D'} {label}", conv,
          [rand(n, h, w, c), rand(*filter_shape)], conv_bound(conv))

# ---- SpaceToBatchND / BatchToSpaceND: element moves, exact ------------------------------
for label, shape, block, pads in [
    ("2-D block, padded", (2, 5, 6, 3), [2, 3], [[1, 0], [0, 3]]),
    ("1-D block, rest dims", (1, 4, 2, 5), [2], [[0, 2]]),
    ("no padding, batch 1", (1, 4, 4, 1), [2, 2], [[0, 0], [0, 0]]),
    ("empty batch", (0, 4, 4, 2), [2, 2], [[0, 0], [0, 0]]),
]:
    eager(f"SpaceToBatchND {label}", lambda t, b=block, p=pads: tf.space_to_batch_nd(t, b, p),
          [rand(*shape)], exact)
    padded = [shape[0] * int(np.prod(block))] + [
        (shape[i + 1] + sum(pads[i])) // block[i] for i in range(len(block))] + list(shape[len(block) + 1:])
    eager(f"BatchToSpaceND {label}", lambda t, b=block, p=pads: tf.batch_to_space(t, b, p),
          [rand(*padded)], exact)

# ---- Pad, pooling, reductions ----------------------------------------------------------
eager("Pad NHWC", lambda t: tf.pad(t, [[0, 0], [1, 2], [0, 1], [0, 0]]), [rand(2, 5, 4, 3)], exact)
eager("Pad rank 1", lambda t: tf.pad(t, [[3, 0]]), [rand(4)], exact)
eager("Pad empty", lambda t: tf.pad(t, [[1, 1], [0, 0]]), [rand(0, 3)], exact)
eager("Pad of an empty last dim", lambda t: tf.pad(t, [[1, 0], [2, 1]]), [rand(3, 0)], exact)
eager("Pad threaded", lambda t: tf.pad(t, [[0, 0], [1, 1], [2, 2]]), [rand(64, 40, 36)], exact)
avg_bound = lambda ref, x: 1e-6 * np.abs(ref) + 1e-7 * np.abs(x).max(initial=0)
for label, shape, ksize, stride, padding in [
    ("3x3 stride 2 SAME", (1, 11, 11, 8), 3, 2, "SAME"), ("2x2 VALID", (2, 8, 9, 3), 2, 2, "VALID"),
    ("3x3 stride 1 SAME", (1, 7, 7, 5), 3, 1, "SAME"),
]:
    eager(f"MaxPool {label}", lambda t, k=ksize, s=stride, p=padding: tf.nn.max_pool2d(t, k, s, p),
          [rand(*shape)], exact)
    eager(f"AvgPool {label}", lambda t, k=ksize, s=stride, p=padding: tf.nn.avg_pool2d(t, k, s, p),
          [rand(*shape)], avg_bound)
# MaxPool3D and AvgPool3D (NDHWC): Keras' MaxPooling3D and AveragePooling3D.
for label, shape, ksize, stride, padding in [
    ("2x2x2 VALID", (2, 6, 8, 7, 3), 2, 2, "VALID"), ("3x3x3 stride 2 SAME", (1, 7, 9, 8, 5), 3, 2, "SAME"),
    ("1x3x3 stride 1 SAME", (1, 4, 6, 6, 16), [1, 3, 3], 1, "SAME"),
]:
    eager(f"MaxPool3D {label}", lambda t, k=ksize, s=stride, p=padding: tf.nn.max_pool3d(t, k, s, p),
          [rand(*shape)], exact)
    eager(f"AvgPool3D {label}", lambda t, k=ksize, s=stride, p=padding: tf.nn.avg_pool3d(t, k, s, p),
          [rand(*shape)], avg_bound)
# Int8 MaxPool (the int8 pass quantizes before a MaxPool), and explicit padding.
for dtype, low in [(np.uint8, 0), (np.int8, -128)]:
    eager(f"MaxPool {np.dtype(dtype).name} 3x3 stride 2 SAME", lambda t: tf.nn.max_pool2d(t, 3, 2, "SAME"),
          [rng.integers(low, 128, (2, 7, 8, 3)).astype(dtype)], exact)
eager("MaxPool explicit padding", lambda t: tf.nn.max_pool2d(t, 3, 2, [[0, 0], [1, 2], [2, 0], [0, 0]]),
      [rand(1, 9, 8, 5)], exact)
# MaxPoolGrad: each output's gradient to its window's max, overlapping windows
# adding up, padding, over the threads (a CNN's pooling, 21632 elements an image).
for shape, k, stride, padding in [((2, 7, 6, 3), 2, 2, "VALID"), ((2, 7, 6, 3), 3, 2, "SAME"),
                                  ((1, 5, 5, 4), 3, 1, "SAME"), ((1, 9, 8, 5), 3, 2, [[0, 0], [1, 2], [2, 0], [0, 0]]),
                                  ((32, 26, 26, 32), 2, 2, "VALID")]:
    x = rand(*shape)
    pooled = tf.nn.max_pool2d(x, k, stride, padding)
    explicit = [p for pair in padding for p in pair] if isinstance(padding, list) else []
    eager(f"MaxPoolGrad {shape} {k}x{k} stride {stride} {'EXPLICIT' if explicit else padding}",
          lambda t, y, dy, k=k, s=stride, p=padding, e=explicit: tf.raw_ops.MaxPoolGrad(
              orig_input=t, orig_output=y, grad=dy, ksize=[1, k, k, 1], strides=[1, s, s, 1],
              padding="EXPLICIT" if e else p, explicit_paddings=e),
          [x, pooled.numpy(), rand(*pooled.shape)], exact)
sum_bound = lambda axis: (lambda ref, x: 1e-6 * np.sum(np.abs(x), axis=axis, keepdims=False) + 1e-30)
for axis, keepdims, shape in [((1, 2), False, (2, 7, 7, 16)), ((1, 2), True, (1, 5, 5, 3)),
                              (-1, True, (4, 128)), ((0,), False, (6, 5)), ((), False, (3, 2)),
                              ((0, 1), False, (0, 4))]:
    for op, fn in [("Mean", tf.reduce_mean), ("Max", tf.reduce_max), ("Min", tf.reduce_min),
                   ("Sum", tf.reduce_sum)]:
        if op in ("Max", "Min") and 0 in shape:
            continue  # TF's float lowest/highest for an empty max/min is checked by shape only
        bound = (avg_bound if op == "Mean" else exact if op in ("Max", "Min")
                 else lambda ref, x, a=axis, k=keepdims: 1e-6 * np.sum(np.abs(x), axis=a, keepdims=k) + 1e-30)
        eager(f"{op} axis={axis} keepdims={keepdims} {shape}",
              lambda t, f=fn, a=axis, k=keepdims: f(t, axis=list(a) if isinstance(a, tuple) else a,
                                                      keepdims=k),
              [rand(*shape)], bound)
# Sizes that take reduction.cc's threaded loops: a middle axis (Keras'
# GlobalAveragePooling1D), long rows, and one long reduction split in parts.
for axis, shape in [(1, (8, 200, 128)), (-1, (3, 70000)), (1, (1, 100000)), (None, (300001,))]:
    x_large = rand(*shape)
    for op, fn in [("Mean", tf.reduce_mean), ("Sum", tf.reduce_sum), ("Max", tf.reduce_max)]:
        bound = (avg_bound if op == "Mean" else exact if op == "Max"
                 else lambda ref, x, a=axis: 1e-6 * np.sum(np.abs(x), axis=a) + 1e-30)
        eager(f"{op} threaded axis={axis} {shape}", lambda t, f=fn, a=axis: f(t, axis=a), [x_large], bound)
x_large = rand(8, 200, 128)
x_large[3, 150, 7] = np.nan
eager("Max NaN threaded axis=1 (8, 200, 128)", lambda t: tf.reduce_max(t, axis=1), [x_large], exact)
# The loops' own NaN checks, on each of their paths (rows by thread, parts of one
# long row, blocks of columns): a NaN in one window, ±Inf (no NaN) in another.
for axis, shape in [(-1, (3, 70000)), (1, (1, 100000)), (1, (8, 200, 128))]:
    x_large = rand(*shape)
    x_large.flat[[5, 30001]] = np.nan
    x_large.flat[[-9, -7]] = [np.inf, -np.inf]
    for op, fn in [("Max", tf.reduce_max), ("Min", tf.reduce_min)]:
        eager(f"{op} NaN and Inf threaded axis={axis} {shape}", lambda t, f=fn, a=axis: f(t, axis=a), [x_large], exact)
# A NaN makes its window's max and min NaN in TF, ±Inf does not; the NHWC global
# max (pooling on QCPU) included.
for axis, shape in [((1, 2), (2, 7, 7, 16)), (-1, (4, 128)), ((0,), (6, 5)), (None, (3, 50))]:
    x_special = rand(*shape)
    x_special.flat[[1, 7, 20]] = [np.nan, np.inf, -np.inf]
    for op, fn in [("Max", tf.reduce_max), ("Min", tf.reduce_min)]:
        eager(f"{op} NaN and Inf axis={axis} {shape}",
              lambda t, f=fn, a=axis: f(t, axis=list(a) if isinstance(a, tuple) else a), [x_special], exact)


# ---- batched matmuls and einsums (Keras' MultiHeadAttention and EinsumDense) -----------
def abs_bound(fn):
    def bound(ref, *arrays):
        with tf.device(CPU):
            scale = fn(*[tf.constant(np.abs(a)) for a in arrays]).numpy()
        return 1e-5 * scale.astype(np.float64) + 1e-30
    return bound


for label, fn, shapes in [
    ("batch", tf.matmul, [(2, 3, 4, 5), (2, 3, 5, 6)]),
    ("broadcast", tf.matmul, [(2, 1, 4, 5), (3, 5, 6)]),
    ("adjoints", lambda a, b: tf.matmul(a, b, adjoint_a=True, adjoint_b=True), [(2, 5, 4), (2, 6, 5)]),
    ("batch 1 K=1", tf.matmul, [(1, 4, 1), (1, 1, 3)]),
    ("empty", tf.matmul, [(0, 4, 5), (0, 5, 6)]),
]:
    eager(f"BatchMatMulV2 {label}", fn, [rand(*s) for s in shapes], abs_bound(fn))
# Randomized batched matmuls: batch dims that broadcast, adjoints, K = 1.
for case in range(12):
    batch = [int(v) for v in draw.integers(1, 4, size=int(draw.integers(0, 3)))]
    m, k, n = (int(v) for v in draw.integers(1, 17, size=3))
    adj_a, adj_b = bool(draw.random() < 0.3), bool(draw.random() < 0.3)
    a_batch = [1 if draw.random() < 0.3 else d for d in batch]
    fn = lambda a, b, x=adj_a, y=adj_b: tf.matmul(a, b, adjoint_a=x, adjoint_b=y)
    eager(f"BatchMatMulV2 random {case}: {a_batch}+{(m, k)} @ {batch}+{(k, n)} adj {adj_a} {adj_b}", fn,
          [rand(*a_batch, *((k, m) if adj_a else (m, k))), rand(*batch, *((n, k) if adj_b else (k, n)))],
          abs_bound(fn))
for equation, shapes in [
    ("abc,cde->abde", [(2, 7, 8), (8, 3, 4)]),     # EinsumDense: the q/k/v projections
    ("aecd,abcd->acbe", [(2, 7, 3, 4), (2, 5, 3, 4)]),  # attention scores
    ("acbe,aecd->abcd", [(2, 3, 5, 7), (2, 7, 3, 4)]),  # attention-weighted values
    ("abcd,cde->abe", [(2, 5, 3, 4), (3, 4, 6)]),   # the output projection
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,k->ik", [(3, 4), (5,)]),                   # j summed out of one operand
    ("ij,ij->", [(3, 4), (3, 4)]),
]:
    fn = lambda a, b, e=equation: tf.einsum(e, a, b)
    eager(f"Einsum {equation}", fn, [rand(*s) for s in shapes], abs_bound(fn))
eager("GatherV2 rows", lambda p: tf.gather(p, [3, 0, 3]), [rand(5, 4)], exact)
eager("GatherV2 int8 rows", lambda p: tf.gather(p, [3, 0, 3]),
      [rng.integers(-128, 128, (5, 4)).astype(np.int8)], exact)
eager("GatherV2 axis 1", lambda p: tf.gather(p, [[1, 0], [2, 2]], axis=1), [rand(2, 3, 4)], exact)
eager("SelectV2 broadcast", lambda a, b: tf.where(a > 0, a, b), [rand(3, 4), rand(4)], exact)
# Dropout's: a mask, the values, a zero; over the threads.
eager("SelectV2 scalar else threaded", lambda a: tf.where(a > 0, a * 2.0, 0.0), [rand(300, 400)], exact)
for label, fn, shape in [
    ("[:, 0]", lambda a: a[:, 0], (2, 5, 3)), ("[..., ::-2]", lambda a: a[..., ::-2], (2, 5, 7)),
    ("[1:-1, None, 2]", lambda a: a[1:-1, None, 2], (4, 5, 3)), ("[3:1]", lambda a: a[3:1], (4, 2)),
    ("[::2, -3:]", lambda a: a[::2, -3:], (5, 6)),
]:
    eager(f"StridedSlice {label}", fn, [rand(*shape)], exact)


# ---- fusions, through tf.function and the graph pass -------------------------------
def exact_gelu(t):
    return tf.nn.gelu(t, approximate=False)


ACTIVATIONS = {
    "relu": (tf.nn.relu, "Relu"), "relu6": (tf.nn.relu6, "Relu6"), "elu": (tf.nn.elu, "Elu"),
    "leaky_relu": (lambda t: tf.nn.leaky_relu(t, alpha=0.1), "LeakyRelu"),
    "sigmoid": (tf.math.sigmoid, "Sigmoid"), "tanh": (tf.math.tanh, "Tanh"),
    "gelu_exact": (exact_gelu, "_QcpuGeluExact"),
    "gelu_tanh": (lambda t: tf.nn.gelu(t, approximate=True), "_QcpuGeluTanh"),
    "swish": (lambda t: t * tf.math.sigmoid(t), "_QcpuSwish"),
    "none": (None, None),
}


def traced_on(device: str, body, x: np.ndarray, spec: tf.TensorSpec | None = None) -> tf.Tensor:
    """`body(x)` through tf.function (and so the graph pass) on `device`,
    traced for `spec` when given (unknown dims), else for x's shape."""
    @tf.function(input_signature=[spec] if spec else None)
    def f(t):
        with tf.device(device):
            return body(t)
    return f(tf.constant(x))


def traced_and_fused(pattern: str, body, x: np.ndarray, spec: tf.TensorSpec | None = None,
                     fires: int = 1) -> tuple[tf.Tensor, tf.Tensor, str]:
    """`body(x)` traced on QCPU and on CPU, and where the QCPU result ran: its
    device when fusion row `pattern` fired `fires` times there, else why not."""
    before = int8flow.stats()["fusions"].get(pattern, 0)
    q, c = traced_on(QCPU, body, x, spec), traced_on(CPU, body, x, spec)
    fired = int8flow.stats()["fusions"].get(pattern, 0) - before
    return q, c, q.device if fired == fires else f"{pattern} fired {fired} times, not {fires}"


def fused(name: str, m: int, k: int, n: int, activation: str, residual: bool) -> None:
    act = ACTIVATIONS[activation][0]
    w, b, r = (tf.Variable(rand(k, n)), tf.Variable(rand(n)), tf.Variable(rand(m, n)))
    x = rand(m, k)

    def body(t):
        y = tf.matmul(t, w) + b
        if residual:
            y = y + r
        return act(y) if act else y

    before = int8flow.stats()["fusions"]
    q, c = traced_on(QCPU, body, x), traced_on(CPU, body, x)
    after = int8flow.stats()["fusions"]
    suffix = "+activation" if act else ""
    # Either order of bias and residual add (Grappler may regroup the sum).
    patterns = ([f"MatMul+BiasAdd+Add{suffix}", f"MatMul+Add+BiasAdd{suffix}"] if residual
                else [f"MatMul+BiasAdd{suffix}"])
    fired = sum(after.get(p, 0) - before.get(p, 0) for p in patterns)
    pattern = " or ".join(patterns)
    ran_on = q.device if fired > 0 else f"not fused ({pattern}: {after})"
    scale = np.abs(x).astype(np.float64) @ np.abs(w.numpy()) + np.abs(b.numpy()) + (
        np.abs(r.numpy()) if residual else 0)
    # The activation's own error on top of the product's (all have slope <= 1.2).
    record(name, ran_on, q, c, 1.2e-5 * scale + 1e-5 * np.abs(c.numpy()) + 1e-6)


def fused_3d(name: str, product: str, activation: str) -> None:
    """Dense on a 3-D input: tf.matmul gives BatchMatMulV2 of a batch by one
    matrix, tf.tensordot a Reshape between the MatMul and the bias."""
    act = ACTIVATIONS[activation][0]
    w, b = tf.Variable(rand(24, 12)), tf.Variable(rand(12))
    x = rand(2, 5, 24)

    def body(t):
        y = tf.matmul(t, w) if product == "batch" else tf.tensordot(t, w, 1)
        return act(y + b) if act else y + b

    pattern = "MatMul+BiasAdd" if product == "batch" else "MatMul+Reshape+BiasAdd"
    pattern += "+activation" if act else ""
    q, c, ran_on = traced_and_fused(pattern, body, x)
    scale = np.abs(x).astype(np.float64) @ np.abs(w.numpy()) + np.abs(b.numpy())
    record(name, ran_on, q, c, 1.2e-5 * scale + 1e-5 * np.abs(c.numpy()) + 1e-6)


for product in ("batch", "tensordot"):
    for activation in ("gelu_exact", "relu", "none"):
        fused_3d(f"fused 3-D {product} {activation}", product, activation)
for activation in ACTIVATIONS:
    fused(f"fused {activation}", 3, 37, 19, activation, residual=False)
fused("fused relu residual batch1", 1, 64, 33, "relu", residual=True)
fused("fused none residual", 4, 16, 8, "none", residual=True)
fused("fused gelu_exact K=1", 2, 1, 5, "gelu_exact", residual=False)



def fused_conv(name: str, depthwise: bool, bias: bool, batch_norm: bool, residual: bool,
               activation: str, shape=(1, 10, 10, 6), stride: int = 1, pad=None) -> None:
    """A Keras-style conv block on QCPU and on CPU, through tf.function. With
    `pad` ((top, bottom), (left, right)): ZeroPadding2D, then a VALID conv."""
    paddings = [[0, 0], *pad, [0, 0]] if pad else None
    padding = "VALID" if pad else "SAME"
    act = ACTIVATIONS[activation][0]
    channels = shape[-1] if depthwise else 8
    w = tf.Variable(rand(3, 3, shape[-1], 1) if depthwise else rand(3, 3, shape[-1], channels))
    b = tf.Variable(rand(channels))
    mean, gamma, beta = (tf.Variable(rand(channels)) for _ in range(3))
    variance = tf.Variable(np.abs(rand(channels)) + 0.5)
    out_h, out_w = ((shape[1] + sum(pad[0]) - 3) // stride + 1, (shape[2] + sum(pad[1]) - 3) // stride + 1
                    ) if pad else (-(-shape[1] // stride), -(-shape[2] // stride))
    r = tf.Variable(rand(shape[0], out_h, out_w, channels))
    x = rand(*shape)

    def conv(t, f):
        t = tf.pad(t, paddings) if pad else t
        if depthwise:
            return tf.nn.depthwise_conv2d(t, f, [1, stride, stride, 1], padding)
        return tf.nn.conv2d(t, f, stride, padding)

    def body(t):
        y = conv(t, w)
        if bias:
            y = tf.nn.bias_add(y, b)
        if batch_norm:
            y = tf.nn.batch_normalization(y, mean, variance, beta, gamma, 1e-3)
        if residual:
            y = y + r
        return act(y) if act else y

    def conv_fusions():
        return sum(v for k, v in int8flow.stats()["fusions"].items() if "Conv+" in k)
    before = conv_fusions()
    q, c = traced_on(QCPU, body, x), traced_on(CPU, body, x)
    fired = conv_fusions() - before
    ran_on = q.device if fired == 1 else f"not fused ({fired} conv fusions)"
    inv = (gamma.numpy() / np.sqrt(variance.numpy() + 1e-3)) if batch_norm else np.ones(channels)
    w_abs = np.abs(w.numpy() * (inv.reshape(shape[-1], 1) if depthwise else inv))
    with tf.device(CPU):
        scale = conv(np.abs(x), w_abs.astype(np.float32))
    scale = scale.numpy().astype(np.float64) + np.abs(b.numpy() * (inv if bias else 0))
    if batch_norm:
        scale = scale + np.abs(beta.numpy()) + np.abs(mean.numpy() * inv)
    if residual:
        scale = scale + np.abs(r.numpy())
    record(name, ran_on, q, c, 1.2e-5 * scale + 1e-5 * np.abs(c.numpy()) + 1e-6)


for activation in ("relu", "relu6", "swish", "elu", "leaky_relu", "sigmoid", "tanh", "gelu_exact",
                   "none"):
    fused_conv(f"fused conv+bn {activation}", False, False, True, False, activation)
fused_conv("fused conv+bias+bn+residual relu", False, True, True, True, "relu")
fused_conv("fused conv+bn+residual", False, False, True, True, "none")
fused_conv("fused conv+bias relu stride 2", False, True, False, False, "relu", (2, 9, 9, 4), 2)
# No bias (use_bias=False, its identity BatchNorm folded away by Grappler).
fused_conv("fused conv relu6", False, False, False, False, "relu6")
fused_conv("fused conv+residual relu", False, False, False, True, "relu")
fused_conv("fused depthwise+residual", True, False, False, True, "none")
fused_conv("fused depthwise+bn relu6", True, False, True, False, "relu6")
fused_conv("fused depthwise+bn swish stride 2", True, False, True, False, "swish", (1, 11, 11, 5), 2)
# ZeroPadding2D folded into the conv: MobileNetV2's ((0, 1), (0, 1)) before a
# strided depthwise, ResNet's 3-pixel stem, and uneven odd paddings.
fused_conv("fused pad+depthwise+bn relu6 stride 2", True, False, True, False, "relu6", (1, 10, 10, 5), 2,
           ((0, 1), (0, 1)))
fused_conv("fused pad+conv+bias+bn relu stride 2", False, True, True, False, "relu", (2, 9, 9, 3), 2,
           ((3, 3), (3, 3)))
fused_conv("fused pad+conv+bn+residual", False, False, True, True, "none", (1, 7, 8, 4), 1, ((2, 0), (1, 3)))


def fused_conv_transpose(name: str, x_shape: tuple, w_shape: tuple, stride: int, padding: str, bias: bool,
                         activation: str, dilation: int = 1, unknown_batch: bool = False) -> None:
    """Keras' Conv2DTranspose: Conv2DBackpropInput (w is [kh, kw, out, in]),
    then a bias and an activation, through tf.function; with `unknown_batch`,
    traced for any batch (input_sizes then comes from the input's shape)."""
    act = ACTIVATIONS[activation][0]
    w, b = tf.Variable(rand(*w_shape)), tf.Variable(rand(w_shape[2]))
    x = rand(*x_shape)
    if padding == "SAME":
        out_hw = [d * stride for d in x_shape[1:3]]
    else:
        out_hw = [(d - 1) * stride + (k - 1) * dilation + 1 for d, k in zip(x_shape[1:3], w_shape[:2])]

    def transpose(t, f):
        sizes = tf.stack([tf.shape(t)[0], *out_hw, w_shape[2]])
        return tf.nn.conv2d_transpose(t, f, sizes, stride, padding, dilations=dilation)

    def body(t):
        y = transpose(t, w)
        y = tf.nn.bias_add(y, b) if bias else y
        return act(y) if act else y

    pattern = "Conv2DBackpropInput" + ("+BiasAdd" if bias else "") + ("+activation" if act else "")
    spec = tf.TensorSpec([None, *x_shape[1:]], tf.float32) if unknown_batch else None
    q, c, ran_on = traced_and_fused(pattern, body, x, spec)
    with tf.device(CPU):
        scale = transpose(np.abs(x), np.abs(w.numpy())).numpy().astype(np.float64)
    scale = scale + (np.abs(b.numpy()) if bias else 0)
    record(name, ran_on, q, c, 1.2e-5 * scale + 1e-5 * np.abs(c.numpy()) + 1e-6)


fused_conv_transpose("fused conv transpose+bias relu stride 2", (2, 6, 5, 8), (3, 3, 4, 8), 2, "SAME", True, "relu")
fused_conv_transpose("fused conv transpose+bias sigmoid VALID", (1, 5, 4, 3), (4, 3, 6, 3), 2, "VALID", True,
                     "sigmoid")
fused_conv_transpose("fused conv transpose+bias", (1, 7, 7, 16), (3, 3, 16, 16), 1, "SAME", True, "none",
                     unknown_batch=True)
fused_conv_transpose("fused conv transpose leaky_relu dilation 2", (2, 5, 5, 4), (3, 3, 5, 4), 1, "VALID", False,
                     "leaky_relu", dilation=2)
fused_conv_transpose("fused conv transpose+bias gelu_exact batch 3", (3, 4, 4, 32), (2, 2, 16, 32), 2, "SAME",
                     True, "gelu_exact", unknown_batch=True)


def fused_conv3d(name: str, x_shape: tuple, w_shape: tuple, stride: int, padding: str, affine: str,
                 activation: str, transposed: bool = False) -> None:
    """Keras' Conv3D (w [kd, kh, kw, in, out]) or Conv3DTranspose (w [.., out,
    in]), then `affine` ("bias", "bias+bn": Keras 3's BatchNormalization as
    scale and shift, "" none) and an activation, through tf.function."""
    act = ACTIVATIONS[activation][0]
    channels = w_shape[3] if transposed else w_shape[4]
    w, b = tf.Variable(rand(*w_shape)), tf.Variable(rand(channels))
    mean, gamma, beta = (tf.Variable(rand(channels)) for _ in range(3))
    variance = tf.Variable(np.abs(rand(channels)) + 0.5)
    x = rand(*x_shape)
    strides = [1, stride, stride, stride, 1]

    def conv(t, f):
        if not transposed:
            return tf.nn.conv3d(t, f, strides, padding)
        sizes = [x_shape[0], *(d * stride for d in x_shape[1:4]), channels]
        return tf.nn.conv3d_transpose(t, f, sizes, strides, padding)

    def body(t):
        y = conv(t, w)
        y = tf.nn.bias_add(y, b) if "bias" in affine else y
        y = tf.nn.batch_normalization(y, mean, variance, beta, gamma, 1e-3) if "bn" in affine else y
        return act(y) if act else y

    parts = {"bias": "+BiasAdd", "bias+bn": "+BiasAdd+BatchNorm", "": ""}[affine]
    pattern = ("Conv3DBackpropInputV2" if transposed else "Conv") + parts + ("+activation" if act else "")
    q, c, ran_on = traced_and_fused(pattern, body, x)
    assert not (transposed and "bn" in affine), "the scale below folds into a forward conv's filter"
    inv = gamma.numpy() / np.sqrt(variance.numpy() + 1e-3) if "bn" in affine else np.ones(channels)
    with tf.device(CPU):
        w_abs = np.abs(w.numpy() if transposed else w.numpy() * inv).astype(np.float32)
        scale = conv(np.abs(x), w_abs).numpy().astype(np.float64)
    scale = scale + np.abs(b.numpy() * inv) * ("bias" in affine)
    if "bn" in affine:
        scale = scale + np.abs(beta.numpy()) + np.abs(mean.numpy() * inv)
    record(name, ran_on, q, c, 1.2e-5 * scale + 1e-5 * np.abs(c.numpy()) + 1e-6)


def fused_conv1d(name: str, x_shape: tuple, w_shape: tuple, stride: int, padding: str, activation: str) -> None:
    """Keras' Conv1D as tf.nn.conv1d writes it (ExpandDims, Conv2D, Squeeze),
    then its bias and activation: fused into the conv, the Squeeze after."""
    act = ACTIVATIONS[activation][0]
    w, b = tf.Variable(rand(*w_shape)), tf.Variable(rand(w_shape[-1]))
    x = rand(*x_shape)

    def body(t):
        y = tf.nn.bias_add(tf.nn.conv1d(t, w, stride, padding), b)
        return act(y) if act else y

    pattern = "Conv+Squeeze+BiasAdd" + ("+activation" if act else "")
    q, c, ran_on = traced_and_fused(pattern, body, x)
    with tf.device(CPU):
        scale = tf.nn.conv1d(np.abs(x), np.abs(w.numpy()), stride, padding).numpy().astype(np.float64)
    record(name, ran_on, q, c, 1.2e-5 * (scale + np.abs(b.numpy())) + 1e-5 * np.abs(c.numpy()) + 1e-6)


fused_conv1d("fused conv1d+bias relu", (2, 40, 6), (5, 6, 8), 1, "SAME", "relu")
fused_conv1d("fused conv1d+bias stride 2 VALID", (3, 31, 4), (3, 4, 16), 2, "VALID", "none")
fused_conv3d("fused conv3d+bias relu", (2, 5, 6, 7, 3), (3, 3, 3, 3, 8), 1, "SAME", "bias", "relu")
fused_conv3d("fused conv3d+bias+bn relu stride 2", (1, 8, 7, 6, 4), (3, 3, 3, 4, 6), 2, "SAME", "bias+bn", "relu")
fused_conv3d("fused conv3d swish VALID", (1, 6, 6, 6, 5), (2, 2, 2, 5, 4), 1, "VALID", "", "swish")
fused_conv3d("fused conv3d transpose+bias relu stride 2", (2, 3, 4, 4, 6), (3, 3, 3, 4, 6), 2, "SAME", "bias",
             "relu", transposed=True)
fused_conv3d("fused conv3d transpose+bias", (1, 4, 4, 4, 8), (2, 2, 2, 8, 8), 1, "SAME", "bias", "none",
             transposed=True)


def dilated_conv(name: str, x_shape: tuple, w_shape: tuple, rate: int, padding: str, depthwise: bool,
                 activation: str) -> None:
    """Keras' Conv2D / DepthwiseConv2D with dilation_rate, as tf.nn.convolution
    writes it on CPUs (SpaceToBatchND, a VALID conv, BatchToSpaceND), then a
    bias and an activation: one dilated conv with them fused."""
    act = ACTIVATIONS[activation][0]
    w = tf.Variable(rand(*w_shape))
    channels = w_shape[2] * w_shape[3] if depthwise else w_shape[3]
    b = tf.Variable(rand(channels))
    x = rand(*x_shape)

    def conv(t, f):
        if depthwise:
            return tf.nn.depthwise_conv2d(t, f, [1, 1, 1, 1], padding, dilations=[rate, rate])
        return tf.nn.convolution(t, f, padding=padding, dilations=rate)

    def body(t):
        y = tf.nn.bias_add(conv(t, w), b)
        return act(y) if act else y

    pattern = "SpaceToBatch+Conv+BatchToSpace (dilated conv)"
    q, c, ran_on = traced_and_fused(pattern, body, x)
    with tf.device(CPU):
        scale = conv(np.abs(x), np.abs(w.numpy())).numpy().astype(np.float64) + np.abs(b.numpy())
    record(name, ran_on, q, c, 1.2e-5 * scale + 1e-5 * np.abs(c.numpy()) + 1e-6)


dilated_conv("fused dilated conv rate 2 SAME relu", (2, 16, 16, 8), (3, 3, 8, 16), 2, "SAME", False, "relu")
dilated_conv("fused dilated conv rate 3 SAME odd sizes", (1, 13, 11, 4), (3, 3, 4, 6), 3, "SAME", False, "none")
dilated_conv("fused dilated conv rate 2 VALID", (1, 15, 14, 3), (3, 2, 3, 5), 2, "VALID", False, "sigmoid")
dilated_conv("fused dilated depthwise rate 2 SAME relu6", (2, 12, 12, 8), (3, 3, 8, 1), 2, "SAME", True, "relu6")


def lstm_cell(name: str, batch: int, units: int, z_scale: float, nan: bool = False) -> None:
    """Keras' LSTM step after the gates' product, as LSTMCell writes it, with h
    and the new c both read after it (c as the fused op's second output)."""
    c_prev = tf.Variable(rand(batch, units) * 2)
    z = rand(batch, 4 * units) * z_scale
    if nan:
        z[0, 0] = np.nan  # an input gate's: NaN in h and c of that cell only

    def body(t):
        i, f, g, o = tf.split(t, 4, axis=1)
        c = tf.sigmoid(f) * c_prev + tf.sigmoid(i) * tf.tanh(g)
        return tf.concat([tf.sigmoid(o) * tf.tanh(c), c], 1)

    q, c, ran_on = traced_and_fused("LSTM cell", body, z)
    bound = 3e-5 * (np.abs(c_prev.numpy()) + 1) + 1e-6
    record(name, ran_on, q, c, np.concatenate([bound, bound], 1))


lstm_cell("fused LSTM cell 8x128", 8, 128, 1.0)
lstm_cell("fused LSTM cell 1x1", 1, 1, 1.0)
lstm_cell("fused LSTM cell 3x17, saturated gates (z of std 40)", 3, 17, 40.0)
lstm_cell("fused LSTM cell with a NaN gate", 2, 5, 1.0, nan=True)


def gru_cell(name: str, batch: int, units: int, scale: float, nan: bool = False) -> None:
    """Keras' GRU step (reset_after) after its products' parts, as GRUCell
    writes it: x's parts from a Split, h's from slices of the other product."""
    h_prev, inner = tf.Variable(rand(batch, units) * 2), tf.Variable(rand(batch, 3 * units) * scale)
    x = rand(batch, 3 * units) * scale
    if nan:
        x[0, 0] = np.nan  # an update gate's: NaN in that cell's h only

    def body(t):
        xz, xr, xh = tf.split(t, 3, axis=-1)
        rz, rr, rh = inner[:, :units], inner[:, units:2 * units], inner[:, 2 * units:]
        z, r = tf.sigmoid(xz + rz), tf.sigmoid(xr + rr)
        return z * h_prev + tf.tanh(r * rh + xh) * (1 - z)

    q, c, ran_on = traced_and_fused("GRU cell", body, x)
    record(name, ran_on, q, c,
           3e-5 * (np.abs(h_prev.numpy()) + np.abs(inner.numpy()[:, 2 * units:]) + 1) + 1e-6)


gru_cell("fused GRU cell 8x128", 8, 128, 1.0)
gru_cell("fused GRU cell 1x1", 1, 1, 1.0)
gru_cell("fused GRU cell 3x17, saturated gates (std 40)", 3, 17, 40.0)
gru_cell("fused GRU cell with a NaN gate", 2, 5, 1.0, nan=True)


def space_to_batch_around_dilated_conv() -> None:
    """The same three ops around a conv with dilations of its own: dilation 2 *
    block 2, which the row must leave alone (it would make it dilation 2)."""
    w = tf.Variable(rand(3, 3, 4, 4))
    x = rand(1, 16, 16, 4)

    def body(t):
        s2b = tf.raw_ops.SpaceToBatchND(input=t, block_shape=[2, 2], paddings=[[4, 4], [4, 4]])
        y = tf.raw_ops.Conv2D(input=s2b, filter=w, strides=[1, 1, 1, 1], padding="VALID", dilations=[1, 2, 2, 1])
        return tf.raw_ops.BatchToSpaceND(input=y, block_shape=[2, 2], crops=[[0, 0], [0, 0]])

    q, c, ran_on = traced_and_fused("SpaceToBatch+Conv+BatchToSpace (dilated conv)", body, x, fires=0)
    # Each output sums 36 products, at most max|x| * (the largest sum of |w| over one filter's taps).
    scale = np.abs(x).max() * np.abs(w.numpy()).sum(axis=(0, 1, 2)).max()
    record("SpaceToBatchND around a dilated conv (not fused)", ran_on, q, c, 1e-5 * scale + 1e-6)


space_to_batch_around_dilated_conv()


def residual_of_shared_conv() -> None:
    """MobileNetV2's residual: Add(conv_a, conv_b) where conv_a also feeds
    conv_b's input. The Add fuses into conv_b, the one read only by it."""
    w_a, w_b = tf.Variable(rand(1, 1, 6, 8)), tf.Variable(rand(3, 3, 8, 8))
    x = rand(1, 9, 9, 6)

    def body(t):
        a = tf.nn.conv2d(t, w_a, 1, "SAME")
        return a + tf.nn.conv2d(tf.nn.relu(a), w_b, 1, "SAME")
    before = int8flow.stats()["fusions"].get("Conv+Add", 0)
    q, c = traced_on(QCPU, body, x), traced_on(CPU, body, x)
    fired = int8flow.stats()["fusions"].get("Conv+Add", 0) - before
    with tf.device(CPU):
        a_abs = tf.nn.conv2d(np.abs(x), np.abs(w_a.numpy()), 1, "SAME")
        scale = a_abs + tf.nn.conv2d(a_abs, np.abs(w_b.numpy()), 1, "SAME")
    # conv_a's error, carried through conv_b, within the same 1e-5 relative per sum.
    record("fused conv+residual of a shared conv", q.device if fired == 1 else f"not fused ({fired})", q, c,
           3e-5 * scale.numpy().astype(np.float64) + 1e-6)


residual_of_shared_conv()


def padded_max_pool(name: str, relu: bool, pad: int, fuses: bool) -> None:
    """ResNet's stem pool, ZeroPadding2D then a VALID MaxPool: the pool pads
    instead only on input >= 0 and paddings smaller than its window."""
    x = rand(1, 9, 9, 4)

    def body(t):
        t = tf.nn.relu(t) if relu else t
        return tf.nn.max_pool2d(tf.pad(t, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), 3, 2, "VALID")
    before = int8flow.stats()["fusions"].get("Pad+MaxPool", 0)
    q, c = traced_on(QCPU, body, x), traced_on(CPU, body, x)
    fired = int8flow.stats()["fusions"].get("Pad+MaxPool", 0) - before
    record(name, q.device if fired == int(fuses) else f"{fired} Pad+MaxPool fusions, expected {int(fuses)}",
           q, c, 0.0)


padded_max_pool("fused pad+maxpool after relu", True, 1, True)
padded_max_pool("fused pad+maxpool, input may be negative: not fused", False, 1, False)
padded_max_pool("fused pad+maxpool, a window all padding: not fused", True, 3, False)


def layer_norm(name: str, shape: tuple, epsilon: float, scale: bool = True, center: bool = True) -> None:
    """Keras' LayerNormalization (its graph, fused by the pass) on QCPU and on CPU."""
    import keras
    layer = keras.layers.LayerNormalization(epsilon=epsilon, scale=scale, center=center)
    layer.build(shape)
    layer.set_weights([rand(shape[-1]) for _ in range(scale + center)])
    x = rand(*shape) * 3 + 1
    def layer_norm_fusions():  # every form: "LayerNorm", "LayerNorm without beta", ...
        return sum(n for row, n in int8flow.stats()["fusions"].items() if row.startswith("LayerNorm"))
    before = layer_norm_fusions()
    q, c = traced_on(QCPU, layer, x), traced_on(CPU, layer, x)
    fired = layer_norm_fusions() - before
    ran_on = q.device if fired == 1 else f"not fused ({fired} LayerNorm fusions)"
    # Normalized values are O(1): float32 moments over the row, both ways.
    beta = np.abs(layer.beta.numpy()) if center else 0.0
    record(name, ran_on, q, c, 1e-5 * (np.abs(c.numpy()) + 1) * (1 + beta))


layer_norm("LayerNorm BERT row", (2, 16, 768), 1e-12)
layer_norm("LayerNorm odd width", (3, 5), 1e-3)
layer_norm("LayerNorm batch 1", (1, 33), 1e-5)
# Without beta, gamma or both (center=False / scale=False, or an identity one
# Grappler simplified): the same fusion, with fewer fused ops.
layer_norm("LayerNorm no beta", (2, 7, 24), 1e-5, center=False)
layer_norm("LayerNorm no gamma", (2, 7, 24), 1e-5, scale=False)
layer_norm("LayerNorm neither", (4, 24), 1e-3, scale=False, center=False)

def residual_of_unknown_shape(name: str) -> None:
    """relu(bn(conv1x1(x)) + x) traced for [None, None, None, C]: Grappler's
    symbolic shapes prove the residual the conv's shape, so it still fuses."""
    x, w = rand(2, 6, 5, 4), tf.Variable(rand(1, 1, 4, 4))
    mean, gamma, beta = (tf.Variable(rand(4)) for _ in range(3))
    variance = tf.Variable(np.abs(rand(4)) + 0.5)

    def body(t):
        y = tf.nn.batch_normalization(tf.nn.conv2d(t, w, 1, "SAME"), mean, variance, beta, gamma, 1e-3)
        return tf.nn.relu(y + t)

    def residual_fusions():
        return sum(v for k, v in int8flow.stats()["fusions"].items() if "Conv+" in k and "+Add" in k)
    before = residual_fusions()
    spec = tf.TensorSpec([None, None, None, 4])
    q, c = traced_on(QCPU, body, x, spec), traced_on(CPU, body, x, spec)
    ran_on = q.device if residual_fusions() - before == 1 else "residual add not fused"
    s = gamma.numpy() / np.sqrt(variance.numpy() + 1e-3)
    bound = np.abs(x) @ np.abs(w.numpy()[0, 0] * s) + np.abs(beta.numpy()) + np.abs(mean.numpy() * s) + np.abs(x)
    record(name, ran_on, q, c, 1.2e-5 * bound + 1e-5 * np.abs(c.numpy()) + 1e-6)


residual_of_unknown_shape("fused conv+bn+residual relu, unknown dims")


# ---- FusedBatchNorm, V2, V3: inference and training, every output ----------
def batch_norm(name: str, op: str, shape: tuple, is_training: bool, data_format: str = "NHWC",
               avg_factor: float = 1.0, running: bool = True) -> None:
    """TF's op on QCPU and on CPU, eagerly; each output checked on its own."""
    channels = shape[-1] if data_format.endswith("C") else shape[1]
    x = rand(*shape) * 2 + 0.5
    scale, offset, mean = rand(channels), rand(channels), rand(channels)
    variance = np.abs(rand(channels)) + 0.5
    if not running:  # training with a factor of 1 may pass empty running statistics
        mean = variance = np.zeros(0, np.float32)
    def run(device):
        with tf.device(device):
            return getattr(tf.raw_ops, op)(
                x=x, scale=scale, offset=offset, mean=mean, variance=variance, epsilon=1e-3,
                exponential_avg_factor=avg_factor, data_format=data_format, is_training=is_training)
    q, c = run(QCPU), run(CPU)
    # y: O(1) normalized values from float32 moments (training) or a folded
    # scale and shift (inference), against Eigen's order of the same sums.
    x_scale = float(np.abs(x).max()) if x.size else 0.0
    y_bound = 1e-5 * (np.abs(c[0].numpy()) + x_scale * np.abs(scale).max() + np.abs(offset).max()) + 1e-6
    record(f"{name} y", q[0].device, q[0], c[0], y_bound)
    # Statistics: sums of x and x^2 over the batch, in float32.
    # TF's Eigen kernel leaves the reserve spaces unset in inference and for
    # an empty batch: it runs for 5-D inputs, and for all where TF's oneDNN
    # is off (by default on CPUs without VNNI, such as AVX2-only AMD EPYCs).
    # Unset memory often reads as zeros, but not under AddressSanitizer.
    outputs = ["batch_mean", "batch_variance"]
    eigen = len(shape) != 4 or not TF_USES_ONEDNN
    if not (eigen and (not is_training or x.size == 0)):
        outputs += ["reserve_space_1", "reserve_space_2"]
    for i, what in enumerate(outputs, 1):
        record(f"{name} {what}", q[i].device, q[i], c[i], 1e-5 * (np.abs(c[i].numpy()) + x_scale**2) + 1e-6)
    if op == "FusedBatchNormV3" and len(shape) == 4:
        record(f"{name} reserve_space_3", q[5].device, q[5], c[5], 0.0)


batch_norm("FusedBatchNormV3 inference NHWC", "FusedBatchNormV3", (2, 5, 5, 3), False)
batch_norm("FusedBatchNormV3 inference NCHW", "FusedBatchNormV3", (2, 3, 4, 5), False, "NCHW")
batch_norm("FusedBatchNormV3 inference NDHWC", "FusedBatchNormV3", (1, 3, 4, 2, 6), False, "NDHWC")
batch_norm("FusedBatchNormV3 inference batch 1 odd C", "FusedBatchNormV3", (1, 7, 3, 13), False)
batch_norm("FusedBatchNormV3 inference empty batch", "FusedBatchNormV3", (0, 4, 4, 3), False)
batch_norm("FusedBatchNormV3 training", "FusedBatchNormV3", (4, 6, 6, 5), True, running=False)
batch_norm("FusedBatchNormV3 training averaged", "FusedBatchNormV3", (2, 5, 5, 3), True, avg_factor=0.3)
batch_norm("FusedBatchNormV3 training NCHW", "FusedBatchNormV3", (3, 4, 5, 5), True, "NCHW")
batch_norm("FusedBatchNormV3 training one element per channel", "FusedBatchNormV3", (1, 1, 1, 4), True)
batch_norm("FusedBatchNormV3 training empty batch", "FusedBatchNormV3", (0, 3, 3, 2), True)
batch_norm("FusedBatchNormV2 inference", "FusedBatchNormV2", (2, 4, 4, 8), False)
batch_norm("FusedBatchNorm training", "FusedBatchNorm", (2, 4, 4, 8), True)


def fused_conv_batch_norm(name: str, bias: bool, activation: str, op: str = "FusedBatchNormV3") -> None:
    """tf.keras 2 / tf.compat.v1's conv block: conv [+ bias] + inference
    FusedBatchNorm [+ activation], folded into one fused conv by the pass."""
    act = ACTIVATIONS[activation][0]
    x, w, b = rand(2, 7, 7, 4), tf.Variable(rand(3, 3, 4, 6)), tf.Variable(rand(6))
    scale, offset, mean = (tf.Variable(rand(6)) for _ in range(3))
    variance = tf.Variable(np.abs(rand(6)) + 0.5)

    def body(t):
        y = tf.nn.conv2d(t, w, 1, "SAME")
        y = tf.nn.bias_add(y, b) if bias else y
        y = getattr(tf.raw_ops, op)(x=y, scale=scale, offset=offset, mean=mean, variance=variance,
                                    epsilon=1e-3, is_training=False)[0]
        return act(y) if act else y

    def fusions():
        return sum(v for k, v in int8flow.stats()["fusions"].items() if "FusedBatchNorm" in k)
    before = fusions()
    q, c = traced_on(QCPU, body, x), traced_on(CPU, body, x)
    ran_on = q.device if fusions() - before == 1 else "not fused"
    s = scale.numpy() / np.sqrt(variance.numpy() + 1e-3)
    with tf.device(CPU):
        bound = tf.nn.conv2d(np.abs(x), np.abs(w.numpy() * s), 1, "SAME").numpy().astype(np.float64)
    bound += np.abs(b.numpy() * s) * bias + np.abs(offset.numpy()) + np.abs(mean.numpy() * s)
    record(name, ran_on, q, c, 1.2e-5 * bound + 1e-5 * np.abs(c.numpy()) + 1e-6)


fused_conv_batch_norm("fused conv+FusedBatchNormV3 relu", False, "relu")
fused_conv_batch_norm("fused conv+bias+FusedBatchNorm none", True, "none", "FusedBatchNorm")

# ---- fixed-seed random draws for the other kernels: broadcasting, pooling,
# reductions, Pad, SpaceToBatchND/BatchToSpaceND, Softmax (same bounds as above)
draw = np.random.default_rng(2027)


def random_dims(rank: int, low: int = 1, high: int = 7) -> list[int]:
    return [int(draw.integers(low, high)) for _ in range(rank)]


for case in range(12):
    full = random_dims(int(draw.integers(1, 5)))
    # Each operand: a suffix of the full shape, with some dims set to 1.
    sa, sb = ([1 if draw.random() < 0.3 else d for d in full[len(full) - int(draw.integers(0, len(full) + 1)):]]
              for _ in range(2))
    op, fn = [("AddV2", tf.add), ("Mul", tf.multiply), ("Sub", tf.subtract), ("Maximum", tf.maximum)][case % 4]
    eager(f"{op} random {case}: {sa} {sb}", fn, [rand(*sa), rand(*sb)], exact)
for case in range(8):
    n, h, w, c = random_dims(1, 1, 3) + random_dims(2, 1, 12) + random_dims(1, 1, 9)
    k, stride = int(draw.integers(1, 4)), int(draw.integers(1, 4))
    padding = "SAME" if draw.random() < 0.5 or k > min(h, w) else "VALID"
    label = f"random {case}: {(n, h, w, c)} k {k} stride {stride} {padding}"
    eager(f"MaxPool {label}", lambda t, k=k, s=stride, p=padding: tf.nn.max_pool2d(t, k, s, p),
          [rand(n, h, w, c)], exact)
    eager(f"AvgPool {label}", lambda t, k=k, s=stride, p=padding: tf.nn.avg_pool2d(t, k, s, p),
          [rand(n, h, w, c)], avg_bound)
for case in range(8):
    shape = random_dims(int(draw.integers(1, 5)))
    axes = sorted(int(a) for a in draw.choice(len(shape), int(draw.integers(1, len(shape) + 1)), replace=False))
    keepdims = bool(draw.random() < 0.5)
    x_case = rand(*shape)
    for op, fn in [("Mean", tf.reduce_mean), ("Sum", tf.reduce_sum), ("Max", tf.reduce_max)]:
        bound = (avg_bound if op == "Mean" else exact if op == "Max"
                 else lambda ref, x, a=tuple(axes), k=keepdims: 1e-6 * np.sum(np.abs(x), axis=a, keepdims=k) + 1e-30)
        eager(f"{op} random {case}: {shape} axes {axes} keepdims={keepdims}",
              lambda t, f=fn, a=axes, k=keepdims: f(t, axis=a, keepdims=k), [x_case], bound)
for case in range(6):
    shape = random_dims(int(draw.integers(1, 5)))
    pads = [[int(draw.integers(0, 3)), int(draw.integers(0, 3))] for _ in shape]
    eager(f"Pad random {case}: {shape} {pads}", lambda t, p=pads: tf.pad(t, p), [rand(*shape)], exact)
for case in range(6):
    m = int(draw.integers(1, 3))
    block = random_dims(m, 1, 4)
    pads = [[int(draw.integers(0, 3)), 0] for _ in range(m)]
    spatial = []
    for i in range(m):  # make each padded dim a multiple of its block
        size = int(draw.integers(1, 7))
        pads[i][1] = (-(size + pads[i][0])) % block[i]
        spatial.append(size)
    shape = [int(draw.integers(1, 3))] + spatial + random_dims(int(draw.integers(0, 2)), 1, 4)
    eager(f"SpaceToBatchND random {case}: {shape} block {block} pads {pads}",
          lambda t, b=block, p=pads: tf.space_to_batch_nd(t, b, p), [rand(*shape)], exact)
    crops = [[int(draw.integers(0, b)), int(draw.integers(0, b))] for b in block]
    batched = [shape[0] * int(np.prod(block))] + [int(draw.integers(1, 4)) for _ in block] + shape[m + 1:]
    eager(f"BatchToSpaceND random {case}: {batched} block {block} crops {crops}",
          lambda t, b=block, c=crops: tf.batch_to_space(t, b, c), [rand(*batched)], exact)
for case in range(4):
    shape = random_dims(int(draw.integers(1, 4)), 1, 40)
    eager(f"Softmax random {case}: {shape}", tf.nn.softmax, [rand(*shape) * 5], transcendental)

# ---- the ops of recurrent layers' loop bodies (loop_ops.cc) ----------------------
def each_output(name: str, fn, arrays: list[np.ndarray], bound=exact) -> None:
    """Like eager, for an op with several outputs: each recorded on its own."""
    with tf.device(QCPU):
        q = fn(*[tf.constant(a) for a in arrays])
    with tf.device(CPU):
        c = fn(*[tf.constant(a) for a in arrays])
    for i, (qi, ci) in enumerate(zip(q, c)):
        record(f"{name} output {i}", qi.device, qi, ci, bound(ci.numpy(), *arrays))


flags = [rand(3, 4) > 0, rand(4) > 0, rand(1, 1) > 0]
eager("LogicalAnd broadcast", tf.logical_and, [flags[0], flags[1]], exact)
eager("LogicalAnd scalar", tf.logical_and, [np.array(True), np.array(False)], exact)
eager("LogicalOr broadcast", tf.logical_or, [flags[2], flags[0]], exact)
eager("LogicalNot", tf.logical_not, [flags[0]], exact)
eager("ZerosLike", tf.zeros_like, [rand(2, 5)], exact)
eager("ZerosLike int32", tf.zeros_like, [np.arange(6, dtype=np.int32)], exact)
activation_grad = lambda ref, y, dy: 2.4e-7 * (np.abs(ref) + np.abs(dy))  # noqa: E731
y_sigmoid = 1 / (1 + np.exp(-rand(4, 7)))
eager("SigmoidGrad", lambda y, dy: tf.raw_ops.SigmoidGrad(y=y, dy=dy), [y_sigmoid.astype(np.float32), rand(4, 7)],
      activation_grad)
eager("TanhGrad", lambda y, dy: tf.raw_ops.TanhGrad(y=y, dy=dy), [np.tanh(rand(4, 7)), rand(4, 7)], activation_grad)
# The conv layer's: 21632 rows of 32 channels, over the threads.
for shape, data_format in [((5, 6), "NHWC"), ((2, 3, 4, 6), "NHWC"), ((2, 6, 3, 4), "NCHW"),
                           ((32, 26, 26, 32), "NHWC")]:
    axes = tuple(d for d in range(len(shape)) if d != (1 if data_format == "NCHW" else len(shape) - 1))
    eager(f"BiasAddGrad {shape} {data_format}",
          lambda t, f=data_format: tf.raw_ops.BiasAddGrad(out_backprop=t, data_format=f),
          [rand(*shape)], lambda ref, dy, a=axes: 1e-6 * np.sum(np.abs(dy), axis=a) + 1e-30)
each_output("Split axis 1", lambda t: tf.split(t, 4, axis=1), [rand(3, 8, 2)])
each_output("Split axis -1", lambda t: tf.split(t, 2, axis=-1), [rand(2, 6)])
each_output("SplitV sizes", lambda t: tf.split(t, [1, 4, 3], axis=0), [rand(8, 3)])
each_output("SplitV rest", lambda t: tf.raw_ops.SplitV(value=t, size_splits=[2, -1], axis=1, num_split=2), [rand(3, 5)])
eager("ConcatV2 axis 1", lambda a, b: tf.concat([a, b], axis=1), [rand(3, 2, 4), rand(3, 5, 4)], exact)
eager("ConcatV2 axis -1", lambda a, b: tf.concat([a, b, a], axis=-1), [rand(2, 3), rand(2, 1)], exact)
eager("ConcatV2 threaded rows", lambda a, b: tf.concat([a, b], axis=-1), [rand(300, 64, 5), rand(300, 64, 3)], exact)
# ResizeBilinear, ResizeNearestNeighbor (resize.cc): TF's weights and lerps, unfused: exact.
for mode, align, half in [("half_pixel", False, True), ("align_corners", True, False), ("legacy", False, False)]:
    for x_shape, size in [((2, 5, 7, 3), (10, 14)), ((1, 9, 6, 16), (4, 11)), ((1, 1, 4, 1), (3, 1)),
                          ((3, 6, 6, 2), (6, 6))]:
        for op in ("ResizeBilinear", "ResizeNearestNeighbor"):
            eager(f"{op} {mode} {list(x_shape)} to {list(size)}",
                  lambda t, o=op, s=size, a=align, h=half: getattr(tf.raw_ops, o)(
                      images=t, size=s, align_corners=a, half_pixel_centers=h), [rand(*x_shape)], exact)
# ReverseV2 (reverse.cc): Bidirectional's time flip, of floats and of bool masks.
for axes, shape in [([1], (3, 7, 4)), ([0], (5, 2, 3)), ([-1], (3, 6)), ([0, 2], (2, 3, 5)), ([], (2, 3)),
                    ([0, 1, 2], (2, 1, 9)), ([1], (4, 1, 3)), ([0], (0, 3))]:
    eager(f"ReverseV2 {axes} of {list(shape)}", lambda t, a=axes: tf.reverse(t, a), [rand(*shape)], exact)
eager("ReverseV2 bool mask", lambda t: tf.cast(tf.reverse(t > 0, [1]), tf.float32), [rand(4, 9)], exact)
# Transpose (transpose.cc): one reorder over the merged dims, or copies of runs of >= 16 kept
# in order (the last two cases); negative perms as TF's.
for perm, shape in [([1, 0], (5, 7)), ([0, 2, 1, 3], (2, 5, 3, 4)), ([2, 1, 0], (4, 1, 6)), ([0, 1, 2], (3, 4, 5)),
                    ([1, 0, 2], (1, 7, 3)), ([4, 0, 3, 1, 2], (2, 3, 1, 4, 5)), ([0], (6,)), ([-1, 0], (3, 8)),
                    ([1, 0], (0, 4)), ([2, 0, 1], (64, 48, 40)), ([1, 0, 2], (8, 50, 32)),
                    ([0, 2, 1, 3], (2, 6, 5, 16))]:
    eager(f"Transpose {perm} of {list(shape)}", lambda t, p=perm: tf.transpose(t, p), [rand(*shape)], exact)
# Cast: TF registers none on devices; a cond's branches cast on QCPU (loop_ops.cc).
for src, dst, values in [
    (np.float32, np.int32, rand(3, 4) * 100), (np.int32, np.float32, np.arange(-6, 6, dtype=np.int32)),
    (np.float32, np.bool_, np.array([0.0, -0.0, 1.5, -2.0, np.nan], np.float32)),
    (np.bool_, np.float32, rand(5) > 0), (np.int64, np.float32, np.array([-(2**40), 3, 2**24 + 1], np.int64)),
    (np.uint8, np.float32, np.arange(250, 256, dtype=np.uint8)), (np.float32, np.float64, rand(2, 3)),
    (np.int32, np.int64, np.array([-(2**31), 2**31 - 1], np.int32)),
]:
    eager(f"Cast {np.dtype(src).name} to {np.dtype(dst).name}", lambda t, d=dst: tf.cast(t, d), [values.astype(src)],
          exact)
# More elements than one thread takes: vector loops over threads, bools read and written as bytes.
finite = np.nan_to_num(scattered, posinf=0.0, neginf=0.0)
for src, dst, values in [(np.float32, np.bool_, scattered), (np.bool_, np.float32, scattered > 0),
                         (np.float32, np.int32, finite * 1e3), (np.int32, np.float32, (finite * 1e6).astype(np.int32)),
                         (np.bool_, np.int32, scattered > 0)]:
    eager(f"Cast {np.dtype(src).name} to {np.dtype(dst).name}, threaded", lambda t, d=dst: tf.cast(t, d),
          [values.astype(src)], exact)
# The activations an RNN cell may be given, and their gradients
# (activation_loops.cc): TF's formulas, in TF's order.
edges = [0.0, -0.0, 30.0, -30.0, 90.0, -100.0, np.inf, -np.inf, np.nan]
wide = np.concatenate([rand(60) * 6, edges]).astype(np.float32)
for op, fn in [("Exp", tf.exp), ("Expm1", tf.math.expm1), ("Erfc", tf.math.erfc), ("Softplus", tf.nn.softplus),
               ("Selu", tf.nn.selu), ("Cos", tf.cos), ("Sin", tf.sin), ("Tan", tf.tan), ("Atan", tf.atan),
               ("Erf", tf.math.erf)]:
    eager(f"{op} loop", fn, [wide], transcendental)
halves = np.concatenate([wide, [0.5, 1.5, 2.5, -0.5, -2.5]]).astype(np.float32)  # Round: half to even
for op, fn in [("Softsign", tf.nn.softsign), ("Floor", tf.floor), ("Ceil", tf.math.ceil), ("Round", tf.round)]:
    eager(f"{op} loop", fn, [halves], exact)
# Eigen's reciprocal is a refined approximation: 1 ulp from 1 / x (measured).
eager("Reciprocal loop", tf.math.reciprocal, [halves], lambda ref, *a: 2.4e-7 * np.abs(ref))
eager("LogSoftmax rows", tf.nn.log_softmax, [rand(5, 11) * 4], transcendental)
eager("LogSoftmax large", tf.nn.log_softmax, [rand(300, 40) * 4], transcendental)
grads = np.concatenate([rand(60), [1.0, np.nan, np.inf, 2.0, -1.0, 0.5, 1.0, 1.0, 1.0]]).astype(np.float32)
for op in ("ReluGrad", "Relu6Grad", "SoftsignGrad"):
    eager(f"{op} loop", lambda g, x, o=op: getattr(tf.raw_ops, o)(gradients=g, features=x), [grads, wide], exact)
for op, outputs in [("EluGrad", tf.nn.elu(wide).numpy()), ("SeluGrad", tf.nn.selu(wide).numpy())]:
    eager(f"{op} loop", lambda g, y, o=op: getattr(tf.raw_ops, o)(gradients=g, outputs=y), [grads, outputs], exact)
eager("LeakyReluGrad loop", lambda g, x: tf.raw_ops.LeakyReluGrad(gradients=g, features=x, alpha=0.3), [grads, wide],
      exact)
eager("SqrtGrad loop", lambda y, dy: tf.raw_ops.SqrtGrad(y=y, dy=dy), [np.abs(rand(40)) + 0.1, rand(40)],
      lambda ref, *a: 2.4e-7 * np.abs(ref))
eager("ReluGrad large", lambda g, x: tf.raw_ops.ReluGrad(gradients=g, features=x), [rand(300, 300), rand(300, 300)],
      exact)
# A zero dy gives 0 in these, where 0 / 0 or 0 * Inf would be NaN.
with_zeros = np.concatenate([rand(40), np.zeros(4)]).astype(np.float32)
at_zero = np.concatenate([np.abs(rand(40)) + 0.1, [0.0, 0.0, np.inf, 1.0]]).astype(np.float32)
for op in ("SqrtGrad", "RsqrtGrad", "ReciprocalGrad"):
    eager(f"{op} zero dy", lambda y, dy, o=op: getattr(tf.raw_ops, o)(y=y, dy=dy), [at_zero, with_zeros],
          lambda ref, *a: 2.4e-7 * np.nan_to_num(np.abs(ref), posinf=0.0))
eager("DivNoNan broadcast", tf.math.divide_no_nan, [rand(4, 5), np.array([0.5, 0.0, -2.0, 0.0, 1e-3], np.float32)],
      exact)
eager("DivNoNan by zero scalar", tf.math.divide_no_nan, [rand(3), np.array(0.0, np.float32)], exact)

# ---- a classifier's loss: within a few ulp of the row's log-sum-exp --------------
def xent(out: int):
    return lambda x, labels: tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=x, labels=labels)[out]
for label, x, labels in [("int32", rand(5, 7) * 3, np.array([0, 6, 3, 2, 1], np.int32)),
                         ("int64 wide logits", rand(33, 10) * 40, rng.integers(0, 10, 33)),
                         ("one class", rand(4, 1), np.zeros(4, np.int64)),
                         ("threaded", rand(800, 100), rng.integers(0, 100, 800).astype(np.int32)),
                         ("empty batch", rand(0, 4), np.zeros(0, np.int32))]:
    for out, part in ((0, "loss"), (1, "backprop")):
        eager(f"SparseSoftmaxCrossEntropyWithLogits {part} {label}", xent(out), [x, labels],
              lambda ref, *a: 1e-6 * (np.abs(ref) + 1.0))
t_values, e_values = rand(4, 3), rand(4, 3)
for label, condition in [("elementwise", rand(4, 3) > 0), ("rows", rand(4) > 0), ("scalar", np.array(False))]:
    eager(f"Select {label}", lambda c, a, b: tf.raw_ops.Select(condition=c, x=a, y=b), [condition, t_values, e_values],
          exact)
eager("Fill", lambda v: tf.fill([3, 0 + 4], v), [np.array(2.5, np.float32)], exact)
for op, fn in [("Equal", tf.equal), ("NotEqual", tf.not_equal), ("Less", tf.less), ("LessEqual", tf.less_equal),
               ("Greater", tf.greater), ("GreaterEqual", tf.greater_equal)]:
    eager(f"{op} float broadcast", fn, [wide.reshape(3, 23), np.array([0.0, np.nan, 1.5] * 7 + [2.0, -2.0],
                                                                        np.float32)], exact)
# bf16 and float16 (half_as_float.h): an RNN cell's ops under a Keras
# mixed-precision policy, on QCPU's float32 kernels with inputs widened and
# outputs rounded to nearest even. TF's CPU rounds its own float32 result
# (Eigen) or accumulates in float32 (oneDNN): both within 1 ulp of the half
# type (2^-7 relative for bf16, 2^-10 for float16) of each other; copies and
# Casts exact.
HALF_ULP = {tf.bfloat16: 2.0**-7, tf.float16: 2.0**-10}


def half(name: str, fn, arrays: list[np.ndarray], dtype, scale=None, exact_copy: bool = False) -> None:
    """`fn` on `arrays` cast to `dtype` (floats only), as eager does; within 1
    ulp of `scale(ref, *arrays)` (default |ref|), or exact for a copy. A sum
    of n terms (MatMul, Sum) takes n/2 ulps of the terms' magnitudes: TF's CPU
    adds float16 in float16 itself, rounding each partial sum (measured), where
    QCPU adds in float32 and rounds once."""
    cast = lambda a: tf.cast(a, dtype) if a.dtype == np.float32 else tf.constant(a)  # noqa: E731
    with tf.device(QCPU):
        q = fn(*[cast(a) for a in arrays])
    with tf.device(CPU):
        c = fn(*[cast(a) for a in arrays])
    ref = np.abs(c.numpy().astype(np.float64))
    bound = 0.0 if exact_copy else HALF_ULP[dtype] * (scale(ref, *arrays) if scale else ref)
    record(f"{name} {dtype.name}", q.device, q, c, bound)


for dtype in (tf.bfloat16, tf.float16):
    half("MatMul", tf.matmul, [rand(6, 16), rand(16, 5)], dtype, lambda ref, a, b: 8 * np.abs(a) @ np.abs(b))
    half("Sigmoid", tf.sigmoid, [rand(4, 9) * 4], dtype)
    half("Tanh", tf.tanh, [rand(4, 9) * 2], dtype)
    half("AddV2 broadcast", tf.add, [rand(4, 9), rand(9)], dtype)
    half("Mul", tf.multiply, [rand(4, 9), rand(4, 9)], dtype)
    half("BiasAdd", tf.nn.bias_add, [rand(3, 5), rand(5)], dtype)
    half("Sum", lambda t: tf.reduce_sum(t, axis=0), [rand(8, 5)], dtype, lambda ref, t: 4 * np.abs(t).sum(axis=0))
    # TF's CPU rounds 1 - y, y * (1 - y) and the product with dy each to the type; QCPU once.
    half("SigmoidGrad", lambda y, dy: tf.raw_ops.SigmoidGrad(y=y, dy=dy), [np.abs(rand(4, 7)) / 4, rand(4, 7)], dtype,
         lambda ref, y, dy: 3 * ref)
    half("ConcatV2", lambda a, b: tf.concat([a, b], axis=1), [rand(3, 2), rand(3, 4)], dtype, exact_copy=True)
    half("StridedSlice", lambda t: t[:, 1:7:2], [rand(3, 8)], dtype, exact_copy=True)
    half("SelectV2", tf.where, [rand(4, 5) > 0, rand(4, 5), rand(5)], dtype, exact_copy=True)
    each_output(f"Split {dtype.name}", lambda t, d=dtype: tf.split(tf.cast(t, d), 3, axis=1), [rand(4, 12)])
# Casts into and out of the half types: ties to even, NaN, infinities, overflow.
ties = np.array([1.00390625, 1.01171875, -2.0078125, 65520.0, 1e-8, np.inf, -np.inf, np.nan, 3.4e38], np.float32)
for src, dst, values in [
    (tf.float32, tf.bfloat16, ties), (tf.float32, tf.float16, ties), (tf.float32, tf.bfloat16, rand(50) * 100),
    (tf.bfloat16, tf.float32, ties), (tf.float16, tf.float32, rand(20)), (tf.float16, tf.int32, rand(20) * 50),
    (tf.bfloat16, tf.float16, rand(20)), (tf.int32, tf.bfloat16, np.arange(250, 262, dtype=np.int32)),
]:
    values = tf.cast(tf.constant(values), src) if src != tf.float32 else tf.constant(values)
    with tf.device(QCPU):
        q = tf.cast(values, dst)
    with tf.device(CPU):
        c = tf.cast(values, dst)
    record(f"Cast {src.name} to {dst.name} (half)", q.device, q, c, 0.0)

# Optimizers' cond branches (branch_ops.cc): the int64 step counters of loss
# scaling and gradient accumulation, Adam's bias correction, Lion's sign.
counters = np.array([[-7, 7, 0, 2**62], [-(2**63), 2**63 - 1, -1, 5]], np.int64)
divisors = np.array([2, -3, 7, -1], np.int64)
for op, fn in [("AddV2", tf.add), ("Sub", tf.subtract), ("Mul", tf.multiply), ("FloorDiv", tf.math.floordiv),
               ("FloorMod", tf.math.floormod), ("Maximum", tf.maximum), ("Minimum", tf.minimum)]:
    # Broadcast rows by a row of divisors (overflow wraps, INT64_MIN // -1 too),
    # and the scalar step counter plus one.
    eager(f"{op} int64 broadcast", fn, [counters, divisors], exact)
    eager(f"{op} int64 scalar", fn, [np.array(41, np.int64), np.array(3, np.int64)], exact)
for op, fn in [("Equal", tf.equal), ("NotEqual", tf.not_equal), ("Less", tf.less), ("LessEqual", tf.less_equal),
               ("Greater", tf.greater), ("GreaterEqual", tf.greater_equal)]:
    eager(f"{op} int64 broadcast", fn, [counters, np.array([[5], [-1]], np.int64)], exact)
for op in ("Equal", "NotEqual"):  # incompatible_shape_error=False: one False (True), no error
    eager(f"{op} int64 of shapes that do not broadcast",
          lambda a, b, o=op: getattr(tf.raw_ops, o)(x=a, y=b, incompatible_shape_error=False),
          [divisors, divisors[:3]], exact)
# Pow: std::pow against Eigen's vectorized pow, 2 ulp; NaN, infinities and
# zeros where TF gives them (negative bases, zero to negative powers).
bases = np.concatenate([np.abs(rand(64)) * 4, [0.0, -2.0, -2.0, 1.0, np.inf, np.nan]]).astype(np.float32)
powers = np.concatenate([rand(64) * 3, [-1.0, 0.5, 3.0, np.nan, 2.0, 0.0]]).astype(np.float32)
eager("Pow elementwise", tf.pow, [bases, powers], lambda ref, *a: 2.4e-7 * np.abs(ref))
eager("Pow by a scalar", tf.pow, [bases[:64], np.array(0.9, np.float32)], lambda ref, *a: 2.4e-7 * np.abs(ref))
eager("Pow large", tf.pow, [np.abs(rand(300, 300)), np.array(2.5, np.float32)], lambda ref, *a: 2.4e-7 * np.abs(ref))
eager("Sign", tf.sign, [np.array([-3.0, -0.0, 0.0, 2.0, np.inf, -np.inf, np.nan], np.float32)], exact)
eager("Sign large", tf.sign, [rand(300, 300)], exact)
# Sparse updates of a variable (an Embedding's table under SGD, RMSprop, Adagrad):
# the variable is made where the check runs, updated, and read back there.
def scattered(op: str, indices: list[int], scalar: bool = False):
    def update(table: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
        variable = tf.Variable(table)
        getattr(tf.raw_ops, op)(resource=variable.handle, indices=tf.constant(indices, tf.int64),
                                updates=rows[0, 0] if scalar else rows)
        return variable.read_value()
    return update


def after_a_bad_index(table: np.ndarray, rows: np.ndarray) -> tf.Tensor:
    """Rows 1 and 9 of a 4-row table on QCPU: the error comes before any update,
    so the table is as it was (TF's CPU kernel updates row 1 first)."""
    with tf.device(QCPU):
        variable = tf.Variable(table)
        try:
            tf.raw_ops.ResourceScatterSub(resource=variable.handle, indices=tf.constant([1, 9]), updates=rows)
        except tf.errors.InvalidArgumentError:
            pass
        return variable.read_value()


table = rand(4, 3)
record("ResourceScatterSub bad index changes nothing", *(lambda q: (q.device, q))(after_a_bad_index(table, rand(2, 3))),
       tf.constant(table), 0.0)
for op, indices, scalar in [("ResourceScatterAdd", [2, 0], False), ("ResourceScatterSub", [1, 3, 1], False),
                            ("ResourceScatterSub", [0, 2], True), ("ResourceScatterUpdate", [3, 1], False)]:
    eager(f"{op} rows {indices}{' (scalar)' if scalar else ''}", scattered(op, indices, scalar),
          [rand(4, 3), rand(len(indices), 3)], lambda ref, *a: 2.4e-7 * np.abs(ref))
# A masked RNN's mask: bool lists read and popped, tiled, and the gradient
# lists summed (tensor_list.cc, loop_ops.cc). The lists are made on CPU (TF
# has no device kernel for a list of bools); the op under test runs on QCPU.
lists = tf.raw_ops
for multiples in ([2, 3], [1, 0], [3, 1]):
    eager(f"Tile bool {multiples}", lambda t, m=multiples: tf.tile(t, m), [rand(2, 3) > 0], exact)
eager("Tile bool [2, 7] of [3, 1]", lambda t: tf.tile(t, [2, 7]), [rand(3, 1) > 0], exact)
eager("Tile bool scalar", lambda t: tf.raw_ops.Tile(input=t, multiples=tf.constant([], tf.int64)), [np.array(True)],
      exact)
# One-element runs repeated (a mean's gradient, MSE's in fit) are one fill per run.
for multiples, shape in [([2, 3], (3, 4)), ([1, 2, 2], (4, 8, 16)), ([3, 1], (2, 1)), ([2, 0], (2, 3)),
                         ([1, 1, 16], (4, 5, 1)), ([2, 1, 1, 9], (2, 3, 4, 1)), ([2, 0], (3, 1))]:
    eager(f"Tile float {multiples} of {list(shape)}", lambda t, m=multiples: tf.tile(t, m), [rand(*shape)], exact)
eager("Tile bool rank 3, int64 multiples", lambda t: tf.tile(t, tf.constant([1, 4, 2], tf.int64)),
      [rand(2, 1, 3) > 0], exact)
for index in (0, 2):
    eager(f"TensorListGetItem bool element {index}", lambda t, i=index: lists.TensorListGetItem(
        input_handle=lists.TensorListFromTensor(tensor=t, element_shape=[4]), index=i, element_shape=[4],
        element_dtype=tf.bool), [rand(3, 4) > 0], exact)
eager("TensorListGetItem bool never set", lambda n: lists.TensorListGetItem(
    input_handle=lists.TensorListReserve(element_shape=[2, 3], num_elements=n, element_dtype=tf.bool), index=1,
    element_shape=[2, 3], element_dtype=tf.bool), [np.int32(3)], exact)
each_output("TensorListPopBack bool", lambda t: (lambda rest, last: (lists.TensorListLength(input_handle=rest), last))(
    *lists.TensorListPopBack(input_handle=lists.TensorListFromTensor(tensor=t, element_shape=[5]), element_shape=[5],
                             element_dtype=tf.bool)), [rand(3, 5) > 0])


def list_sum(*tensors: tf.Tensor) -> tf.Tensor:
    """AddN of float lists, read back element by element and joined (ConcatV2) on the same device."""
    handles = [lists.TensorListFromTensor(tensor=t, element_shape=t.shape[1:]) for t in tensors]
    total = tf.raw_ops.AddN(inputs=handles)
    return tf.concat([lists.TensorListGetItem(input_handle=total, index=i, element_shape=tensors[0].shape[1:],
                                              element_dtype=tf.float32) for i in range(tensors[0].shape[0])], 0)


eager("AddN lists of 2", list_sum, [rand(3, 4), rand(3, 4)], lambda ref, *a: 2.4e-7 * np.abs(ref))
eager("AddN lists of 3", list_sum, [rand(2, 2, 3), rand(2, 2, 3), rand(2, 2, 3)], lambda ref, *a: 4.8e-7 * np.abs(ref))
for label, shape, args, dy_shape in [
    ("rows", (6, 5), dict(begin=[1], end=[5], strides=[2]), (2, 5)),
    ("shrink", (4, 3, 2), dict(begin=[0, 1], end=[0, 2], strides=[1, 1], begin_mask=1, end_mask=1,
                               shrink_axis_mask=2), (4, 2)),
    ("negative stride", (7, 4), dict(begin=[0, 1], end=[0, 0], strides=[-2, 1], begin_mask=1, end_mask=3),
     (4, 3)),
]:
    eager(f"StridedSliceGrad {label}",
          lambda dy, sh=shape, a=args: tf.raw_ops.StridedSliceGrad(shape=list(sh), dy=dy, **a),
          [rand(*dy_shape)], exact)

# ArgMax, ArgMin (arg_max.cc): TF's index exactly. Ties take the first; NaN
# never wins, a row of NaN or -Inf answers 0; int64 and int32 results.
ties = np.array([[1.0, 3.0, 3.0, -1.0], [np.nan, 2.0, np.nan, 2.0], [np.nan] * 4, [-np.inf] * 4,
                 [-np.inf, np.nan, -3e38, np.inf], [0.0, -0.0, -0.0, 0.0]], np.float32)
large = rand(96, 700)
large[rng.integers(0, 96, 40), rng.integers(0, 700, 40)] = np.nan
for op, fn in [("ArgMax", tf.argmax), ("ArgMin", tf.argmin)]:
    for label, x, axis in [("last axis ties and NaN", ties, -1), ("first axis ties and NaN", ties, 0),
                           ("middle axis", rand(3, 17, 5), 1), ("1-D", rand(33), 0), ("one element", rand(4, 1), 1),
                           ("last axis, threaded, NaN", large, 1), ("first axis, threaded, NaN", large, 0)]:
        eager(f"{op} {label}", lambda t, a=axis, f=fn: f(t, a), [x], exact)
    eager(f"{op} int32 result", lambda t, f=fn: f(t, 2, output_type=tf.int32), [rand(2, 3, 9)], exact)

# Cumsum (scan.cc): TF's Eigen scan adds each line in order in the element
# type, as the loops do: exact. The last axis runs 8 rows at a time (13 rows:
# a part group), other axes across the dims after them; NaN and Inf carry.
scan_x = rand(13, 37)
scan_x[3, 5], scan_x[7, 0] = np.nan, np.inf
for label, x, axis, exclusive, reverse in [
    ("last axis", scan_x, -1, False, False), ("last axis exclusive reverse", scan_x, 1, True, True),
    ("first axis", rand(9, 4, 5), 0, False, False), ("middle axis exclusive", rand(3, 17, 6), 1, True, False),
    ("middle axis reverse", rand(3, 17, 6), 1, False, True), ("1-D", rand(100), 0, False, False),
    ("threaded last axis", rand(4096, 64), -1, False, False), ("threaded first axis", rand(64, 4096), 0, True, False),
    ("float64", rand(5, 33).astype(np.float64), 1, False, False),
    ("int64", rng.integers(-50, 50, (6, 21)).astype(np.int64), 1, False, True),
    ("empty", rand(0, 3), 1, False, False),
]:
    eager(f"Cumsum {label}", lambda t, a=axis, e=exclusive, r=reverse: tf.math.cumsum(t, a, exclusive=e, reverse=r),
          [x], exact)
eager("Cumsum int64 axis", lambda t: tf.math.cumsum(t, tf.constant(-2, tf.int64)), [rand(4, 6, 3)], exact)

# OneHot (one_hot.cc): exact; indices outside [0, depth) set nothing.
labels = np.array([[0, 3, -1], [4, 2, 9]], np.int32)
for label, fn, indices in [
    ("last axis", lambda i: tf.one_hot(i, 5), labels),
    ("axis 0", lambda i: tf.one_hot(i, 5, axis=0), labels),
    ("middle axis, on and off values", lambda i: tf.one_hot(i, 4, on_value=2.5, off_value=-1.0, axis=1), labels),
    ("int64 indices", lambda i: tf.one_hot(i, 6), labels.astype(np.int64)),
    ("uint8 indices", lambda i: tf.one_hot(i, 6), np.abs(labels).astype(np.uint8)),
    ("depth 0", lambda i: tf.one_hot(i, 0), labels),
    ("threaded", lambda i: tf.one_hot(i, 64), rng.integers(-2, 66, (512, 64)).astype(np.int32)),
]:
    eager(f"OneHot {label}", fn, [indices], exact)

# ScaleShift (scale_shift.cc): Keras 3's inference BatchNormalization, x * inv
# + (beta - mean * inv), and the activation after it, fused into one pass:
# TF's roundings and its standalone activations (NaN kept). inv comes from
# QCPU's Rsqrt (2 ulp), so 2 ulp of each term that carries it.
def scale_shift(label: str, x: np.ndarray, activation, pattern: str, spec: tf.TensorSpec | None = None) -> None:
    channels = x.shape[-1]
    mean, var = tf.Variable(rand(channels)), tf.Variable(np.abs(rand(channels)) + 0.1)
    gamma, beta = tf.Variable(rand(channels)), tf.Variable(rand(channels))

    def body(t):
        inv = tf.math.rsqrt(var + 1e-3) * gamma
        y = t * inv + (beta - mean * inv)
        return activation(y) if activation else y

    q, c, ran_on = traced_and_fused(pattern, body, x, spec)
    inv = np.abs(gamma.numpy()) / np.sqrt(var.numpy() + 1e-3)
    terms = np.nan_to_num(np.abs(x) * inv, posinf=0.0) + np.abs(mean.numpy()) * inv + np.abs(beta.numpy())
    record(f"ScaleShift {label}", ran_on, q, c, 4.8e-7 * terms)


with_nans = rand(2, 5, 5, 8)
with_nans[0, 1, 2, 3], with_nans[1, 4, 0, 0] = np.nan, np.inf
for label, act in [("Relu", tf.nn.relu), ("Relu6", tf.nn.relu6),
                   ("LeakyRelu", lambda t: tf.nn.leaky_relu(t, 0.3))]:
    scale_shift(f"{label} with NaN and Inf", with_nans, act, "ScaleShift+activation")
scale_shift("alone", rand(3, 8), None, "ScaleShift")
scale_shift("Relu, threaded", rand(16, 32, 32, 16), tf.nn.relu, "ScaleShift+activation")
scale_shift("Relu, unknown batch", rand(4, 6, 6, 5), tf.nn.relu, "ScaleShift+activation",
            tf.TensorSpec([None, 6, 6, 5], tf.float32))

with open(sys.argv[1], "w") as f:
    json.dump({"results": results, "fusions": int8flow.stats()["fusions"], "tf_onednn": TF_USES_ONEDNN}, f,
              indent=1)
