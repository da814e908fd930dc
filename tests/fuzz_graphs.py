"""Graph-rewrite fuzzing, run in a subprocess by test_fuzz.py.

Hypothesis draws small random conv and dense chains built from what the pass
fuses and quantizes:
- convolutions (regular and depthwise) and matmuls;
- bias, batch norm and activations;
- residual adds;
- a shared intermediate (a second consumer the pass must leave alone);
- weights as constants or variables;
- random shapes, strides, paddings and dilations, batch 1 and size-1 dims
  included.

Each graph runs three ways:
- stock TF on CPU (the reference);
- int8flow FP32 on QCPU, which must match within FP32 tolerance:
  |q - c| <= 1e-4 * (max|c| + 1);
- int8flow dynamic INT8 on QCPU, which must keep cosine >= 0.99 with the
  reference (or, for a near-zero reference, an absolute error within 0.05 of
  its scale).

Usage: python fuzz_graphs.py EXAMPLES. It exits 1 with the falsifying example
printed. None has failed so far; one that does is to be kept here as an
@example regression.
"""
from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import int8flow

QCPU, CPU = "/device:QCPU:0", "/device:CPU:0"
ACTIVATIONS = {
    "none": lambda t: t, "relu": tf.nn.relu, "relu6": tf.nn.relu6, "sigmoid": tf.sigmoid, "tanh": tf.tanh,
    "elu": tf.nn.elu, "leaky_relu": lambda t: tf.nn.leaky_relu(t, 0.1),
    "gelu": lambda t: tf.nn.gelu(t, approximate=False), "gelu_tanh": lambda t: tf.nn.gelu(t, approximate=True),
    "swish": lambda t: t * tf.sigmoid(t)}

layer = st.fixed_dictionaries({
    "kind": st.sampled_from(["conv", "depthwise", "dense"]),
    "kernel": st.integers(1, 3), "stride": st.integers(1, 2),
    # 64 outputs: enough work per input for dynamic INT8 to quantize even a
    # dense or 1x1 layer (docs/int8.md, "Dynamic INT8"); narrower ones stay FP32.
    "channels": st.one_of(st.integers(1, 8), st.just(64)),
    "dilation": st.integers(1, 2), "padding": st.sampled_from(["SAME", "VALID"]),
    "bias": st.booleans(), "batch_norm": st.booleans(), "activation": st.sampled_from(sorted(ACTIVATIONS)),
    "residual": st.booleans(), "share": st.booleans(), "variable": st.booleans()})
graph = st.fixed_dictionaries({
    "batch": st.integers(1, 3), "height": st.integers(1, 9), "width": st.integers(1, 9),
    "channels": st.integers(1, 6), "layers": st.lists(layer, min_size=1, max_size=3), "seed": st.integers(0, 999)})


def build(spec: dict):
    """The model body as a function of its input, and that input."""
    rng = np.random.default_rng(spec["seed"])
    x = rng.standard_normal((spec["batch"], spec["height"], spec["width"], spec["channels"])).astype(np.float32)
    steps = []
    shape = list(x.shape)
    for lay in spec["layers"]:
        param = (lambda v: tf.Variable(v)) if lay["variable"] else tf.constant
        step = dict(lay)
        if lay["kind"] == "dense" or len(shape) == 2:
            step["kind"] = "dense"
            k = shape[-1]
            step["w"] = param((rng.standard_normal((k, lay["channels"])) / np.sqrt(k)).astype(np.float32))
            out_shape = shape[:-1] + [lay["channels"]]
        else:
            kernel = lay["kernel"]
            dilation = lay["dilation"] if lay["stride"] == 1 else 1  # TF allows one or the other
            span = (kernel - 1) * dilation + 1
            padding = lay["padding"] if span <= min(shape[1], shape[2]) else "SAME"
            step.update(dilation=dilation, padding=padding)
            c = shape[-1]
            if lay["kind"] == "depthwise":
                mult = 1 + lay["channels"] % 2
                step["w"] = param((rng.standard_normal((kernel, kernel, c, mult)) / kernel).astype(np.float32))
                out_c = c * mult
            else:
                step["w"] = param((rng.standard_normal((kernel, kernel, c, lay["channels"]))
                                   / np.sqrt(kernel * kernel * c)).astype(np.float32))
                out_c = lay["channels"]
            stride = lay["stride"]
            if padding == "SAME":
                out_h, out_w = -(-shape[1] // stride), -(-shape[2] // stride)
            else:
                out_h, out_w = (shape[1] - span) // stride + 1, (shape[2] - span) // stride + 1
            out_shape = [shape[0], out_h, out_w, out_c]
        n = out_shape[-1]
        step["b"] = param(rng.standard_normal(n).astype(np.float32)) if lay["bias"] else None
        if lay["batch_norm"]:
            step["bn"] = [param(v.astype(np.float32)) for v in
                          (rng.standard_normal(n), rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n),
                           rng.standard_normal(n))]
        step["residual"] = lay["residual"] and out_shape == shape
        steps.append(step)
        shape = out_shape

    def body(t):
        outputs = []
        for s in steps:
            inp = t
            if s["kind"] == "dense":
                t = tf.matmul(t, s["w"]) if len(t.shape) == 2 else tf.tensordot(t, s["w"], 1)
            elif s["kind"] == "depthwise":
                t = tf.nn.depthwise_conv2d(t, s["w"], [1, s["stride"], s["stride"], 1], s["padding"],
                                           dilations=[s["dilation"]] * 2)
            else:
                t = tf.nn.conv2d(t, s["w"], s["stride"], s["padding"], dilations=s["dilation"])
            if s["b"] is not None:
                t = tf.nn.bias_add(t, s["b"])
            if "bn" in s:
                mean, var, gamma, beta = s["bn"]
                t = tf.nn.batch_normalization(t, mean, var, beta, gamma, 1e-3)
            if s["share"]:
                outputs.append(t)  # a second consumer of the pre-activation value
            if s["residual"]:
                t = t + inp
            t = ACTIVATIONS[s["activation"]](t)
        return [t] + outputs
    return body, x


def run(body, x, device: str) -> list[np.ndarray]:
    fn = tf.function(body, autograph=False)  # a new function: traced and optimized now
    with tf.device(device):
        return [o.numpy() for o in fn(tf.constant(x))]


def check(spec: dict) -> None:
    body, x = build(spec)
    int8flow.enable_int8("off")
    try:
        ref = run(body, x, CPU)
    except tf.errors.OpError as e:
        # Stock TF's own CPU kernel failed (its oneDNN depthwise conv cannot
        # reorder some shapes): no reference to compare with. Said, then skipped.
        print("stock TF failed on", spec, "|", str(e).splitlines()[-1][:200], file=sys.stderr)
        reject()
    fp32 = run(body, x, QCPU)
    int8flow.enable_int8("dynamic")
    try:
        int8 = run(body, x, QCPU)
    finally:
        int8flow.enable_int8("off")
    for r, q, i in zip(ref, fp32, int8):
        assert q.shape == r.shape and i.shape == r.shape, (q.shape, i.shape, r.shape)
        scale = float(np.abs(r).max(initial=0)) + 1
        err = float(np.abs(q - r).max(initial=0))
        assert err <= 1e-4 * scale, f"FP32 on QCPU differs by {err:.3g} (scale {scale:.3g})"
        norm = float(np.linalg.norm(r)) * float(np.linalg.norm(i))
        if float(np.linalg.norm(r)) > 1e-3 * np.sqrt(r.size):
            cosine = float((r.astype(np.float64) * i).sum()) / norm if norm > 0 else 0.0
            assert cosine >= 0.99, f"INT8 cosine {cosine:.4f}"
        else:
            assert float(np.abs(i - r).max(initial=0)) <= 0.05 * scale, "INT8 error on a near-zero result"


def main(examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(graph)
    def fuzz(spec: dict) -> None:
        check(spec)

    fuzz()
    fusions = int8flow.stats()["fusions"]
    print("fusions", sorted(fusions.items()))
    # The fuzzer must exercise the pass, not only plain kernels.
    assert any(k.startswith("Conv") for k in fusions) and any(k.startswith("INT8") for k in fusions), fusions


if __name__ == "__main__":
    main(int(sys.argv[1]))
