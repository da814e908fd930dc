"""Static INT8 of the models users have: several inputs and outputs in dicts,
int token ids beside a float padding mask that reaches attention's softmax,
SavedModels from Keras' export, from a tf.Module and from Keras 2 code,
calibrated from a tf.data.Dataset. The transformer is trained here, with
fixed seeds, on a sequence task that needs the mask: is token 1 more
frequent than token 2 among the first `length` tokens (the rest is padding
of random tokens, which an unmasked model would count)?"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_json, run_python

MAX_DROP = 0.005  # half a point of accuracy, as test_quantize.py
INT8_BOUND = 0.05  # stock TF against int8flow on the saved INT8 model, of the output's scale

TRAIN = """
import json, os, numpy as np, tensorflow as tf, keras, int8flow
out = os.environ["OUT"]
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
T = 24
tokens = rng.integers(0, 8, (6000, T)).astype("int32")
length = rng.integers(6, T + 1, 6000)
mask = (np.arange(T)[None] < length[:, None]).astype("float32")
ones, twos = ((tokens == 1) * mask).sum(1), ((tokens == 2) * mask).sum(1)
keep = ones != twos
tokens, mask, ones, labels = tokens[keep], mask[keep], ones[keep], (ones > twos)[keep].astype("int64")
train, test = slice(0, 4000), slice(4000, 5000)
with tf.device("/CPU:0"):  # training, and so the variables, stay on TF's CPU
    ids = keras.Input((T,), dtype="int32", name="token_ids")
    padding = keras.Input((T,), name="padding_mask")
    h = keras.layers.Embedding(8, 32)(ids)
    attend = keras.ops.cast(padding[:, None, :], "bool")  # [batch, query, key]
    h = keras.layers.LayerNormalization()(h + keras.layers.MultiHeadAttention(2, 16)(h, h, attention_mask=attend))
    h = keras.layers.LayerNormalization()(h + keras.layers.Dense(32)(keras.layers.Dense(64, activation="gelu")(h)))
    pooled = keras.ops.sum(h * padding[..., None], 1) / keras.ops.sum(padding, 1, keepdims=True)
    model = keras.Model({"token_ids": ids, "padding_mask": padding},
                        {"label": keras.layers.Dense(2, name="label")(pooled),
                         "count": keras.layers.Dense(1, name="count")(pooled)})
    model.compile(keras.optimizers.Adam(3e-3),
                  {"label": keras.losses.SparseCategoricalCrossentropy(from_logits=True), "count": "mse"},
                  loss_weights={"label": 1.0, "count": 0.01})
    x = {"token_ids": tokens, "padding_mask": mask}
    model.fit({k: v[train] for k, v in x.items()}, {"label": labels[train], "count": ones[train]},
              epochs=10, batch_size=64, verbose=0)
x_test = {k: v[test] for k, v in x.items()}

def accuracy(outputs):
    return float(np.mean(np.asarray(outputs["label"]).argmax(1) == labels[test]))

calibration = tf.data.Dataset.from_tensor_slices({k: v[train] for k, v in x.items()}).shuffle(4000, seed=0).batch(50)
qmodel = int8flow.quantize(model, calibration, "percentile", subset_size=500, metric_output="label", verbose=False)
result = {"fp32": accuracy(model.predict(x_test, verbose=0)), "int8": accuracy(qmodel.predict(x_test, verbose=0)),
          "count_rmse": float(np.sqrt(np.mean((qmodel.predict(x_test)["count"][:, 0] - ones[test]) ** 2))),
          "count_rmse_fp32": float(np.sqrt(np.mean(
              (model.predict(x_test, verbose=0)["count"][:, 0] - ones[test]) ** 2))),
          "losses": qmodel.losses, "outputs": list(qmodel.output_names), "inputs": list(qmodel.input_names),
          "table": qmodel.table(), "worst": [[r.node, r.error] for r in qmodel.layer_errors()],
          "fusions": int8flow.stats()["fusions"], "int8_path": int8flow.cpu_features()["int8_path"]}
qmodel.save(out + "/int8")
model.export(out + "/fp32", verbose=False)
# The SavedModel Keras wrote, quantized from its directory.
from_dir = int8flow.quantize(out + "/fp32", lambda: ({k: v[i:i + 25] for k, v in x.items()} for i in range(0, 500, 25)),
                             verbose=False)
result["from_dir"] = accuracy(from_dir.predict(x_test))
from_dir.save(out + "/int8_from_dir")
# The worst layer by the debugger, kept FP32 by name.
worst = qmodel.layer_errors()[0].node
kept = int8flow.quantize(model, calibration, "percentile", subset_size=500, ignored_scope=[worst], verbose=False)
result["kept"] = [[r.node, r.int8, r.reason] for r in kept.report if r.node == worst]
np.savez(out + "/x_test.npz", **x_test)
np.save(out + "/labels.npy", labels[test])
np.savez(out + "/int8_outputs.npz", **qmodel.predict(x_test))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def trained(installed, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("two_inputs")
    return {**run_json(TRAIN, OUT=str(tmp)), "dir": tmp}


def test_two_input_transformer_keeps_accuracy_from_a_dataset(trained: dict) -> None:
    assert trained["fp32"] > 0.9, trained  # the mask matters: unmasked padding would blur the counts
    assert trained["int8"] >= trained["fp32"] - MAX_DROP, trained
    assert trained["from_dir"] >= trained["fp32"] - MAX_DROP, trained
    assert trained["count_rmse"] <= trained["count_rmse_fp32"] * 1.2 + 0.05, trained
    assert trained["inputs"] == ["padding_mask", "token_ids"] and trained["outputs"] == ["count", "label"], trained
    assert set(trained["losses"]) == {"count", "label"} and trained["losses"]["label"] <= 0.02, trained
    assert "'label' against FP32" in trained["table"] and "(guarded)" in trained["table"], trained["table"]
    assert trained["fusions"].get("INT8 static _QcpuFusedMatMul", 0) > 0, trained["fusions"]


def test_debugger_ranks_layers_and_ignored_scope_keeps_one_fp32(trained: dict) -> None:
    errors = [e for _, e in trained["worst"]]
    assert len(errors) >= 6 and errors == sorted(errors, reverse=True), trained["worst"]
    assert 0 < errors[0] < 0.2 and all(e >= 0 for e in errors), trained["worst"]
    assert trained["kept"] == [[trained["worst"][0][0], False, "ignored_scope"]], trained["kept"]


def test_saved_int8_models_keep_the_signature_and_run_on_stock_tensorflow(trained: dict) -> None:
    tmp: Path = trained["dir"]
    result = run_json(f"""
        import json, numpy as np, tensorflow as tf, int8flow
        x = dict(np.load({str(tmp / "x_test.npz")!r}))
        labels = np.load({str(tmp / "labels.npy")!r})
        int8 = dict(np.load({str(tmp / "int8_outputs.npz")!r}))
        result = {{"loaded": int8flow.is_loaded()}}
        for name in ("fp32", "int8", "int8_from_dir"):
            loaded = tf.saved_model.load({str(tmp)!r} + "/" + name)
            signature = loaded.signatures["serving_default"]
            outputs = signature(**{{k: tf.constant(v) for k, v in x.items()}})
            result[name] = {{"signatures": sorted(loaded.signatures),
                             "inputs": sorted(signature.structured_input_signature[1]),
                             "outputs": sorted(signature.structured_outputs),
                             "accuracy": float(np.mean(outputs["label"].numpy().argmax(1) == labels))}}
            if name == "int8":
                result["diff"] = float(np.abs(outputs["label"].numpy() - int8["label"]).max())
                result["scale"] = float(np.abs(int8["label"]).max())
        print(json.dumps(result))
        """, INT8FLOW_DISABLE="1")
    assert result["loaded"] is False
    fp32, int8, from_dir = result["fp32"], result["int8"], result["int8_from_dir"]
    for saved in (int8, from_dir):
        assert saved["inputs"] == fp32["inputs"] == ["padding_mask", "token_ids"], result
        assert saved["outputs"] == fp32["outputs"] == ["count", "label"], result
        assert saved["accuracy"] >= trained["fp32"] - MAX_DROP, result
    assert int8["signatures"] == fp32["signatures"] == ["serve", "serving_default"], result
    # Stock TF runs the same QDQ graph in float: int8 arithmetic and rounding ties differ.
    assert result["diff"] <= INT8_BOUND * result["scale"], result


OTHER_SOURCES = """
import json, os, numpy as np, tensorflow as tf, keras, tf_keras, int8flow
out = os.environ["OUT"]
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 16)).astype("float32")
result = {}

class Scorer(tf.Module):  # not Keras: variables and a tf.function
    def __init__(self):
        self.w1 = tf.Variable(rng.standard_normal((16, 32)).astype("float32") / 4)
        self.w2 = tf.Variable(rng.standard_normal((32, 4)).astype("float32") / 4)
    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="features")])
    def score(self, features):
        h = tf.nn.relu(tf.matmul(features, self.w1))
        return {"scores": tf.matmul(h, self.w2), "hidden_norm": tf.norm(h, axis=1)}

with tf.device("/CPU:0"):
    module = Scorer()
    tf.saved_model.save(module, out + "/module", signatures={"score": module.score})
    reference = {k: v.numpy() for k, v in module.score(x).items()}
    tf_keras.utils.set_random_seed(0)
    keras2 = tf_keras.Sequential([tf_keras.Input((16,), name="features"), tf_keras.layers.Dense(32, activation="relu"),
                                  tf_keras.layers.Dense(4)])
    keras2.save(out + "/keras2")  # Keras 2's SavedModel format
    keras2_reference = keras2(x).numpy()

q = int8flow.quantize(out + "/module", x, signature_key="score", metric="cosine", verbose=False)
got = q(x)
result["module"] = {"inputs": list(q.input_names), "outputs": list(q.output_names),
                    "error": float(np.abs(got["scores"].numpy() - reference["scores"]).max()
                                   / np.abs(reference["scores"]).max()),
                    "int8": [r.int8 for r in q.report]}
q.save(out + "/module_int8")
loaded = tf.saved_model.load(out + "/module_int8")
result["module"]["signatures"] = sorted(loaded.signatures)
q2 = int8flow.quantize(out + "/keras2", [x[:32], x[32:]], metric="cosine", verbose=False)
(key,) = q2.output_names
result["keras2"] = {"inputs": list(q2.input_names), "error": float(
    np.abs(q2(x)[key].numpy() - keras2_reference).max() / np.abs(keras2_reference).max())}

# Keras structures: list inputs and outputs, and a subclassed model called on a dict.
keras.utils.set_random_seed(0)
a, b = keras.Input((16,), name="a"), keras.Input((8,), name="b")
h = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()([a, b]))
listed = keras.Model([a, b], [keras.layers.Dense(4)(h), keras.layers.Dense(2)(h)])
pair = [x, x[:, :8]]
q3 = int8flow.quantize(listed, pair, metric="cosine", verbose=False)
got3, want3 = q3(pair), listed(pair)
result["list"] = {"types": [type(got3).__name__, len(got3)], "outputs": list(q3.output_names),
                  "error": max(float(np.abs(g.numpy() - w.numpy()).max() / np.abs(w.numpy()).max())
                               for g, w in zip(got3, want3))}

class Towers(keras.Model):
    def __init__(self):
        super().__init__()
        self.user, self.item = keras.layers.Dense(8), keras.layers.Dense(8)
    def call(self, inputs):
        return keras.ops.sum(self.user(inputs["user"]) * self.item(inputs["item"]), axis=1, keepdims=True)

towers = Towers()
pairs = {"user": x, "item": x[::-1].copy()}
q4 = int8flow.quantize(towers, pairs, metric="cosine", verbose=False)
want4 = towers(pairs).numpy()
result["subclassed"] = {"inputs": list(q4.input_names), "int8": sum(r.int8 for r in q4.report),
                        "error": float(np.abs(q4(pairs).numpy() - want4).max() / np.abs(want4).max())}
print(json.dumps(result))
"""


def test_savedmodels_of_a_tf_module_and_keras2_and_keras_structures(installed, tmp_path: Path) -> None:
    r = run_json(OTHER_SOURCES, OUT=str(tmp_path))
    module = r["module"]
    assert module["inputs"] == ["features"] and module["outputs"] == ["hidden_norm", "scores"], r
    assert module["signatures"] == ["score", "serving_default"] and module["int8"] == [True, True], r
    assert r["keras2"]["inputs"] == ["features"], r
    assert r["list"]["types"] == ["list", 2] and r["list"]["outputs"] == ["output_0", "output_1"], r
    assert r["subclassed"]["inputs"] == ["item", "user"] and r["subclassed"]["int8"] == 2, r
    # Random weights: INT8 against FP32 within a few steps of the 8-bit grid.
    for case in ("module", "keras2", "list", "subclassed"):
        assert r[case]["error"] < 0.05, (case, r[case])


BAD = """
import numpy as np, tensorflow as tf, keras, int8flow
ids, mask = keras.Input((4,), dtype="int32", name="ids"), keras.Input((4,), name="mask")
h = keras.layers.Dense(3)(keras.layers.Embedding(10, 3)(ids) * mask[..., None])
model = keras.Model({"ids": ids, "mask": mask}, h)
good = {"ids": np.ones((8, 4), np.int32), "mask": np.ones((8, 4), np.float32)}
def generator():
    yield {"ids": np.ones((2, 4), np.int32), "mask": np.full((2, 4), np.inf, np.float32)}
cases = {
    "unknown name": {"ids": good["ids"], "msk": good["mask"]},
    "missing input": {"ids": good["ids"]},
    "one array for two inputs": good["mask"],
    "three arrays": [good["ids"], good["mask"], good["mask"]],
    "fractional ids": {"ids": np.full((8, 4), 0.5), "mask": good["mask"]},
    "mask shape": {"ids": good["ids"], "mask": np.ones((8, 5), np.float32)},
    "empty dataset": tf.data.Dataset.from_tensor_slices(good).take(0),
    "Inf from a generator": generator(),
    "not data": 3,
}
for name, data in cases.items():
    try:
        int8flow.quantize(model, data, verbose=False)
        print(name, "| NO ERROR")
    except ValueError as e:
        print(name, "|", e)
options = {"percentile": dict(percentile=101), "subset_size": dict(subset_size=0),
           "ignored_scope": dict(ignored_scope=["no_such_layer"]), "metric_output": dict(metric_output="logits"),
           "budget": dict(accuracy_budget=2.0)}
for name, kwargs in options.items():
    try:
        int8flow.quantize(model, good, verbose=False, **kwargs)
        print(name, "| NO ERROR")
    except ValueError as e:
        print(name, "|", e)
for name, path, kwargs in [("not a SavedModel", "/nonexistent", {}), ("signature", "SAVED", {"signature_key": "nope"})]:
    try:
        int8flow.quantize(path, good, verbose=False, **kwargs)
        print(name, "| NO ERROR")
    except ValueError as e:
        print(name, "|", e)
q = int8flow.quantize(model, good, verbose=False)
for name, call in [("call missing", lambda: q({"ids": good["ids"]})), ("call list", lambda: q([good["ids"]]))]:
    try:
        call()
        print(name, "| NO ERROR")
    except ValueError as e:
        print(name, "|", e)
"""


def test_bad_data_and_options_name_the_input_and_what_it_takes(installed, tmp_path: Path) -> None:
    made = run_python(f"""
        import keras
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        m.export({str(tmp_path / "saved")!r}, verbose=False)
        """)
    assert made.returncode == 0, made.stderr[-2000:]
    result = run_python(BAD.replace('"SAVED"', repr(str(tmp_path / "saved"))))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" | ", 1) for line in result.stdout.splitlines() if " | " in line)
    expected = {
        "unknown name": "no input 'msk'", "missing input": "the model takes ['ids', 'mask']",
        "one array for two inputs": "give a list or a dict", "three arrays": "gives 3 arrays; the model takes 2 inputs",
        "fractional ids": "calibration_data['ids'] holds fractions; the model's input 'ids' takes int32",
        "mask shape": "calibration_data['mask'] has samples of shape (5,); "
                      "the model's input 'mask' takes float32 (None, 4)",
        "empty dataset": "is empty", "Inf from a generator": "calibration_data['mask'] holds NaN or Inf",
        "not data": "calibration_data must be an array", "percentile": "percentile must be in (50, 100]",
        "subset_size": "subset_size must be at least 1", "ignored_scope": "'no_such_layer' names no quantizable",
        "metric_output": "metric_output 'logits' is not an output", "budget": "accuracy_budget must be in [0, 1]",
        "not a SavedModel": "is not a SavedModel directory",
        "signature": "has no signature 'nope' (it has serve, serving_default)",
        "call missing": "the model takes inputs ['ids', 'mask'], got ['ids']",
        "call list": "the model takes 2 inputs ['ids', 'mask'], got 1",
    }
    assert set(lines) == set(expected), result.stdout
    for name, fragment in expected.items():
        assert fragment in lines[name], (name, lines[name])
