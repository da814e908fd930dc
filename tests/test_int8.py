"""INT8 kernels: each op against a float reference on the same quantized inputs
within the bound int8_checks.py derives, on this CPU's oneDNN path and on the
AVX2 path (no VNNI: vpmaddubsw, whose saturation the kernels must avoid);
bad input gives TF errors; profiles tag the kernels int8."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUBPROCESS_TIMEOUT, clean_env, run_json, run_json_and_log, run_python

CHECKS = Path(__file__).parent / "int8_checks.py"


def run_checks(tmp: Path, **env: str) -> dict:
    out = tmp / "int8.json"
    result = subprocess.run([sys.executable, str(CHECKS), str(out)], env=clean_env(**env),
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("isa", ["native", "AVX2"])
def test_int8_ops_within_bound(installed: Path, tmp_path: Path, isa: str) -> None:
    # ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN use its non-VNNI u8·s8 code here too.
    checks = run_checks(tmp_path, **({"ONEDNN_MAX_CPU_ISA": "AVX2"} if isa == "AVX2" else {}))
    if isa == "AVX2":
        assert checks["isa"] == "avx2" and checks["seven_bit_cpu"], checks["isa"]
    results = checks["results"]
    assert len(results) == 119, len(results)  # a check that stops running must not pass silently
    for group in ["QuantizedMatMul", "QuantizedBatchMatMul", "QuantizedConv2D", "QuantizedDepthwiseConv2D",
                  "Quantize"]:
        assert any(r["name"].startswith(group) for r in results), group
    off_device = [(r["name"], r["device"]) for r in results if not r["device"].endswith("QCPU:0")]
    assert not off_device, off_device
    failed = [(r["name"], r["max_err"]) for r in results if not r["ok"]]
    assert not failed, failed


BAD_INPUT = """
    import numpy as np, tensorflow as tf
    from int8flow import ops
    a = np.full((2, 8), 200, np.uint8)
    w = np.ones((8, 4), np.int8)
    cases = {
        "scales length": lambda: ops.quantized_matmul(a, w, 0.1, 3, np.ones(3, np.float32)),
        "activation scale 0": lambda: ops.quantized_matmul(a, w, 0.0, 3, np.ones(4, np.float32)),
        "activation scale vector": lambda: ops.quantized_matmul(a, w, [0.1, 0.2], 3, np.ones(4, np.float32)),
        "zero point range": lambda: ops.quantized_matmul(a, w, 0.1, 300, np.ones(4, np.float32)),
        "negative weight scale": lambda: ops.quantized_matmul(a, w, 0.1, 3, -np.ones(4, np.float32)),
        "inner dims": lambda: ops.quantized_matmul(a, np.ones((7, 4), np.int8), 0.1, 3, np.ones(4, np.float32)),
        "float activations": lambda: ops.quantized_matmul(a.astype(np.float32), w, 0.1, 3, np.ones(4, np.float32)),
        "out zero point": lambda: ops.quantized_matmul(a, w, 0.1, 3, np.ones(4, np.float32),
                                                       out_dtype="uint8", out_zero_point=-1),
        "conv scales length": lambda: ops.quantized_conv2d(np.zeros((1, 4, 4, 3), np.uint8),
                                                           np.ones((3, 3, 3, 5), np.int8), 0.1, 0,
                                                           np.ones(4, np.float32)),
        "conv channels": lambda: ops.quantized_conv2d(np.zeros((1, 4, 4, 3), np.uint8),
                                                      np.ones((3, 3, 2, 5), np.int8), 0.1, 0,
                                                      np.ones(5, np.float32)),
        "static scale 0": lambda: ops.quantize(np.ones(3, np.float32), "uint8", 0.0),
        "static zero point": lambda: ops.quantize(np.ones(3, np.float32), "int8", 0.1, 200),
        "dequantize scale shape": lambda: ops.dequantize(np.ones(3, np.uint8), [1.0, 2.0], 0),
        "int8 addend scale": lambda: ops.quantized_matmul(a, w, 0.1, 3, np.ones(4, np.float32),
                                                          addend=(np.ones((2, 4), np.uint8), 0.0, 0)),
        "fused K=0": lambda: ops.quantized_matmul(np.zeros((2, 0), np.uint8), np.zeros((0, 4), np.int8), 0.1, 3,
                                                  np.ones(4, np.float32), bias=np.ones(4, np.float32)),
        "non-finite into int8": lambda: ops.quantized_matmul(a, w, float("nan"), 3, np.ones(4, np.float32),
                                                             out_dtype="uint8", out_scale=0.1),
        "dequantize scale Inf": lambda: ops.dequantize(np.ones(3, np.uint8), float("inf"), 0),
    }
    for name, case in cases.items():
        try:
            case()
            print(name, "NO ERROR")
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
            print(name, "|", type(e).__name__, "|", str(e).splitlines()[0].split("}} ")[-1])
"""


def test_bad_input_gives_tf_errors(installed: Path) -> None:
    result = run_python(BAD_INPUT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in result.stdout.splitlines() if " | " in line)
    assert len(lines) == 17 and "NO ERROR" not in result.stdout, result.stdout
    expected = {"scales length": "one per output channel (4)", "activation scale 0": "must be finite and > 0",
                "activation scale vector": "must be a single float", "zero point range": "outside the uint8 range",
                "negative weight scale": ">= 0", "inner dims": "Matrix size-incompatible",
                "float activations": "float32", "out zero point": "out_zero_point",
                "conv scales length": "one per output channel (5)", "conv channels": "evenly divisible",
                "static scale 0": "static_scale must be finite and > 0",
                "static zero point": "outside the int8 range", "dequantize scale shape": "single values",
                "int8 addend scale": "addend_scale must be finite and > 0",
                "fused K=0": "need an inner dimension > 0",
                "non-finite into int8": "an int8 output cannot represent that",
                "dequantize scale Inf": "must be finite or NaN"}
    for name, fragment in expected.items():
        assert fragment in lines[name], (name, lines[name])


def test_dynamic_int8_turns_non_finite_activations_into_nan(installed: Path) -> None:
    # FP32 turns a NaN row into zeros past the ReLU; INT8 has no scale for a
    # tensor holding NaN or Inf, and must not make a finite answer up.
    result = run_python("""
        import numpy as np, tensorflow as tf, keras, int8flow
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu")])
        x = np.ones((3, 8), np.float32)
        for bad in (np.nan, np.inf):
            x[1, 2] = bad
            print(bool(np.isnan(tf.function(lambda t: model(t, training=False))(x).numpy()).all()))
        print("INT8 dynamic _QcpuFusedMatMul" in int8flow.stats()["fusions"])
        """, INT8FLOW_QUANTIZE="dynamic")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "True", "True"], result.stdout


def test_dynamic_int8_refuses_non_finite_weights(installed: Path) -> None:
    # NaN or Inf weights have no per-channel scale: a TF error that names them,
    # where FP32 would quietly give NaN. Each assignment is a new buffer, so
    # the cached quantized weights of the first call cannot hide the second.
    result = run_python("""
        import numpy as np, tensorflow as tf, keras
        layer = keras.layers.Dense(64)  # wide enough for INT8 (docs/int8.md)
        model = keras.Sequential([keras.Input((4,)), layer])
        call = tf.function(lambda x: model(x, training=False))
        x = np.ones((2, 4), np.float32)
        call(x)
        for name, bad in (("NaN", np.nan), ("Inf", np.inf)):
            w = np.ones((4, 64), np.float32)
            w[1, 2] = bad
            layer.kernel.assign(w)
            try:
                call(x)
                print(name, "| NO ERROR")
            except tf.errors.InvalidArgumentError as e:
                print(name, "|", e.message.splitlines()[0])
        """, INT8FLOW_QUANTIZE="dynamic")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in result.stdout.splitlines() if " | " in line)
    assert "hold NaN" in lines["NaN"], lines
    assert "channel 2 are not finite" in lines["Inf"], lines


def test_attr_our_op_does_not_declare_is_a_tf_error(installed: Path) -> None:
    # Eagerly TF itself refuses it; in a graph TF would ignore it, so the
    # kernel refuses it: a graph from a newer int8flow must not run altered.
    result = run_python("""
        import numpy as np, tensorflow as tf
        from int8flow import ops
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [2, 3])
            ops.quantize(x)
        graph_def = graph.as_graph_def()
        node = next(n for n in graph_def.node if n.op == "_QcpuQuantize")
        for attrs in ({}, {"bogus": 1}):
            for name, value in attrs.items():
                node.attr[name].i = value
            imported = tf.Graph()
            with imported.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            try:
                with tf.compat.v1.Session(graph=imported) as session:
                    session.run(node.name + ":0", {x.name: np.ones((2, 3), np.float32)})
                print("ran")
            except tf.errors.InvalidArgumentError as e:
                print(" ".join(e.message.split())[:300])
        """)
    assert result.returncode == 0, result.stderr[-3000:]
    ran, refused = result.stdout.strip().splitlines()[-2:]
    assert ran == "ran", ran
    assert ("_QcpuQuantize has no attr 'bogus' in this int8flow "
            "(it has T, mode, static_scale, static_zero_point)") in refused, refused


def test_profile_tags_int8_kernels(installed: Path, tmp_path: Path) -> None:
    code = f"""
        import glob, numpy as np, tensorflow as tf
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
        from int8flow import ops
        x = np.random.default_rng(0).standard_normal((1, 8, 8, 16)).astype(np.float32)
        w, s = ops.quantize_weights(np.random.default_rng(1).standard_normal((3, 3, 16, 8)))
        @tf.function
        def f(x):
            q, sx, zx = ops.quantize(x)
            return ops.quantized_conv2d(q, w, sx, zx, s, activation="relu")
        f(x)
        with tf.profiler.experimental.Profile({str(tmp_path)!r}):
            f(x)
        (path,) = glob.glob({str(tmp_path)!r} + "/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace(); space.ParseFromString(open(path, "rb").read())
        (plane,) = [p for p in space.planes if "QCPU" in p.name]
        names = {{k: m.name for k, m in plane.stat_metadata.items()}}
        for line in plane.lines:
            for e in line.events:
                stats = {{names[s.metadata_id]: s.str_value for s in e.stats}}
                print(plane.event_metadata[e.metadata_id].display_name, stats.get("precision"),
                      stats.get("onednn_impl"))
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines()]
    conv = [r for r in rows if r[0] == "_QcpuQuantizedConv2D"]
    assert len(conv) == 1 and conv[0][1] == "int8" and conv[0][2] not in ("None", ""), result.stdout
    assert any(r[0] == "_QcpuQuantize" for r in rows), result.stdout


DYNAMIC_MODEL = """
    import json, numpy as np, tensorflow as tf, keras, int8flow
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)),
        keras.layers.Conv2D(16, 3, padding="same"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.ReLU(6.0),
        keras.layers.Conv2D(64, 1), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(64, activation="gelu"), keras.layers.Dense(10)])
    x = np.random.default_rng(0).standard_normal((4, 16, 16, 3)).astype("float32")
    f = tf.function(lambda t: model(t, training=False))
    def compare():
        y = f(x).numpy()
        with tf.device("/CPU:0"):
            ref = model(x, training=False).numpy()
        return float((y * ref).sum() / np.linalg.norm(y) / np.linalg.norm(ref))
    before = compare()
    int8flow.record_op_stats(True)
    f(x)
    ops = sorted(int8flow.stats()["ops"])
    dense = model.layers[-2]
    dense.kernel.assign(dense.kernel.numpy() * -3.0)  # new weights: must not be served stale
    after = compare()
    print(json.dumps({"cos_before": before, "cos_after": after, "ops": ops,
                      "fusions": int8flow.stats()["fusions"]}))
"""


def test_dynamic_int8_rewrites_matmul_and_conv(installed: Path) -> None:
    """INT8FLOW_QUANTIZE=dynamic: the fused convs and matmuls of a Keras model run
    as int8 kernels (the depthwise conv and the 10-wide head, too little work per
    input, stay FP32), outputs keep cosine >= 0.999 to TF's CPU float result, and a
    reassigned weight is never served stale."""
    r = run_json(DYNAMIC_MODEL, INT8FLOW_QUANTIZE="dynamic")
    assert r["fusions"].get("INT8 dynamic _QcpuFusedConv2D") == 2, r["fusions"]
    assert r["fusions"].get("INT8 dynamic _QcpuFusedMatMul") == 1, r["fusions"]
    assert {"_QcpuQuantizedConv2D", "_QcpuQuantizedMatMul", "_QcpuQuantize",
            "_QcpuFusedDepthwiseConv2dNative", "_QcpuFusedMatMul"} <= set(r["ops"]), r["ops"]
    assert "_QcpuFusedConv2D" not in r["ops"], r["ops"]
    assert r["cos_before"] >= 0.999 and r["cos_after"] >= 0.999, r


def test_quantize_setting_off_and_bogus(installed: Path) -> None:
    """Off by default; a bad value warns once and stays off (FP32 kernels)."""
    for env in ({}, {"INT8FLOW_QUANTIZE": "bogus"}):
        r, log = run_json_and_log(DYNAMIC_MODEL, **env)
        assert not any(k.startswith("INT8") for k in r["fusions"]), r["fusions"]
        assert "_QcpuQuantizedMatMul" not in r["ops"], r["ops"]
        warnings = [line for line in log.splitlines() if "INT8FLOW_QUANTIZE" in line]
        assert len(warnings) == (1 if env else 0), log[-2000:]


def test_enable_int8_switches_functions_traced_after_it(installed: Path) -> None:
    """int8flow.enable_int8("dynamic") without the environment variable: functions
    traced afterwards run INT8; after enable_int8("off"), new ones run FP32."""
    code = """
        import numpy as np, tensorflow as tf, int8flow
        w = tf.Variable(np.random.default_rng(0).standard_normal((64, 64)).astype("float32"))
        x = np.random.default_rng(1).standard_normal((4, 64)).astype("float32")
        def ran_int8():
            int8flow.reset_stats(); int8flow.record_op_stats(True)
            tf.function(lambda t: tf.nn.relu(tf.matmul(t, w)))(x)
            return "_QcpuQuantizedMatMul" in int8flow.stats()["ops"]
        before = ran_int8()
        int8flow.enable_int8("dynamic")
        on = ran_int8()
        int8flow.enable_int8("off")
        off = ran_int8()
        try:
            int8flow.enable_int8("static")
            bad = "no error"
        except ValueError as e:
            bad = str(e)
        print(before, on, off, "|", bad)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    flags, bad = result.stdout.strip().splitlines()[-1].split(" | ")
    assert flags == "False True False", result.stdout
    assert "must be 'dynamic' or 'off'" in bad, bad
