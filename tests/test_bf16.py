"""Opt-in bf16 (issue 24): `INT8FLOW_PRECISION=bf16` and `int8flow.enable_bf16()` run QCPU's float
MatMul, BatchMatMul, Einsum and convolutions with bf16 inputs and weights, f32 sums and f32 outputs.

Each op is compared with TF's own f32 CPU op. Its largest error, relative to the largest |output|,
must be at most BF16_TOLERANCE (bf16 keeps 8 significant bits, so each input is off by up to 2^-9
of itself; over a K-long sum of random terms the errors mostly cancel: ~0.3% is typical) and above
zero: a result equal to f32 would mean bf16 never ran. `stats()` must count the op's time as bf16.
Switched back off, the same traced function gives TF's f32 result again. The trained models'
answers under bf16 are held to the INT8 bounds in test_int8_accuracy.py.

Off by default. Where oneDNN has no native bf16 (no AVX512-BF16 or AMX: checked here through the
AVX2 proxy, `ONEDNN_MAX_CPU_ISA=AVX2`), `enable_bf16()` raises and the variable warns, and QCPU
stays f32."""
from __future__ import annotations

import pytest

from conftest import int8flow_lines, run_json, run_json_and_log

BF16_TOLERANCE = 1e-2

OPS = """
import json, numpy as np, tensorflow as tf, int8flow
on_at_start = int8flow.bf16_enabled()
rng = np.random.default_rng(0)
def t(*shape):
    return tf.constant(rng.standard_normal(shape).astype("float32"))
x, q, k = t(2, 33, 31, 24), t(2, 4, 17, 64), t(2, 4, 19, 64)
weights = {"w": t(300, 96), "f": t(3, 3, 24, 40), "dw": t(5, 5, 24, 2), "f1": t(1, 1, 24, 48), "b": t(40)}
cases = {
    "MatMul": lambda: tf.matmul(t(7, 300), weights["w"]),
    "MatMul transpose_a": lambda: tf.matmul(t(300, 5), weights["w"], transpose_a=True),
    "fused MatMul (bias, relu)": lambda: tf.nn.relu(tf.matmul(t(9, 300), weights["w"]) + weights["w"][0]),
    "Conv2D SAME": lambda: tf.nn.conv2d(x, weights["f"], 1, "SAME"),
    "Conv2D VALID stride 2": lambda: tf.nn.conv2d(x, weights["f"], 2, "VALID"),
    "fused Conv2D (bias, relu)": lambda: tf.nn.relu(tf.nn.conv2d(x, weights["f"], 1, "SAME") + weights["b"]),
    "Conv2D 1x1": lambda: tf.nn.conv2d(x, weights["f1"], 1, "SAME"),
    "DepthwiseConv2dNative": lambda: tf.nn.depthwise_conv2d(x, weights["dw"], [1, 2, 2, 1], "SAME"),
    "BatchMatMulV2 (attention scores)": lambda: tf.matmul(q, k, transpose_b=True),
    "BatchMatMulV2 (broadcast weights)": lambda: tf.matmul(q, t(64, 48)),
    "Einsum in place": lambda: tf.einsum("bhqd,bhkd->bhqk", q, k),
    "Einsum permuted": lambda: tf.einsum("bhqd,dn->bqhn", q, t(64, 32)),
}
graphs = {name: tf.function(make) for name, make in cases.items()}
def run(device):
    with tf.device(device):
        return {name: g().numpy() for name, g in graphs.items()}
rng = np.random.default_rng(1); reference = run("/CPU:0")
int8flow.enable_bf16(True)
int8flow.record_op_stats(True)
rng = np.random.default_rng(1); bf16 = run("/device:QCPU:0")
ops = {op: o["bf16_ms"] for op, o in int8flow.stats()["ops"].items()}
int8flow.enable_bf16(False)
rng = np.random.default_rng(1); fp32 = run("/device:QCPU:0")
def error(a, b):  # relative to the output scale: a clipping activation would shrink it
    return float(np.abs(a - b).max() / np.abs(b).max())
print(json.dumps({"on_at_start": on_at_start, "bf16_ms": ops,
                  "bf16": {n: error(bf16[n], reference[n]) for n in cases},
                  "fp32": {n: error(fp32[n], reference[n]) for n in cases}}))
"""

REFUSED = """
import json, numpy as np, tensorflow as tf, int8flow
x = tf.constant(np.random.default_rng(0).standard_normal((4, 64)).astype("float32"))
w = tf.constant(np.random.default_rng(1).standard_normal((64, 8)).astype("float32"))
f = tf.function(lambda: tf.matmul(x, w))
with tf.device("/CPU:0"):
    reference = f().numpy()
try:
    int8flow.enable_bf16()
    raised = ""
except RuntimeError as e:
    raised = str(e)
print(json.dumps({"supported": int8flow.cpu_features()["bf16"], "enabled": int8flow.bf16_enabled(),
                  "raised": raised, "exact": bool(np.array_equal(f().numpy(), reference))}))
"""


def test_bf16_is_off_by_default_and_a_bad_value_warns(installed) -> None:
    code = "import json, int8flow; print(json.dumps(int8flow.bf16_enabled()))"
    assert run_json(code) is False
    enabled, log = run_json_and_log(code, INT8FLOW_PRECISION="half")
    assert enabled is False
    assert int8flow_lines(log) == ["int8flow: INT8FLOW_PRECISION='half' is not 'bf16' or 'fp32'; using 'fp32'"], log


def test_ops_run_bf16_within_tolerance_and_switch_back(installed) -> None:
    if not run_json("import json, int8flow; print(json.dumps(int8flow.cpu_features()['bf16']))"):
        pytest.skip("this CPU's oneDNN has no native bf16 (AVX512-BF16 or AMX)")
    r = run_json(OPS, INT8FLOW_PRECISION="bf16")
    assert r["on_at_start"] is True  # the variable turned it on
    for name, err in r["bf16"].items():
        assert 0 < err <= BF16_TOLERANCE, (name, err)
    for name, err in r["fp32"].items():
        assert err <= 1e-5, (name, err)  # off again: f32, in the same traced functions
    for op in ("MatMul", "Conv2D", "DepthwiseConv2dNative", "BatchMatMulV2", "Einsum"):
        assert any(o.endswith(op) and ms > 0 for o, ms in r["bf16_ms"].items()), (op, r["bf16_ms"])


def test_bf16_is_refused_without_native_bf16(installed) -> None:
    r, log = run_json_and_log(REFUSED, INT8FLOW_PRECISION="bf16", ONEDNN_MAX_CPU_ISA="AVX2")
    assert r["supported"] is False and r["enabled"] is False, r
    assert "AVX512-BF16 or AMX" in r["raised"], r
    assert r["exact"], r  # still f32
    assert any("INT8FLOW_PRECISION=bf16 needs" in line for line in int8flow_lines(log)), log[-2000:]
