"""SavedModels written the ways users have them run on QCPU as on stock TF:
a Keras 2 (tf-keras) CNN with BatchNormalization, trained so its checkpoint
holds optimizer slots, a TF1 Estimator-style export (v1 Builder, resource
variables, no object graph), and one with TF1 control flow (cond,
while_loop) reading its variables. Each loads by tf.saved_model.load and by TF's
v1 signature loader (load_v1_in_v2, which tf.saved_model.load uses for
SavedModels without an object graph, and users call when the object graph
is rejected); the first call restores the variables in one function and the
signature reads them by name in another."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_json

pytest.importorskip("tf_keras")

EXPORT = r"""
import json, os, numpy as np, tensorflow as tf
v1 = tf.compat.v1
out = os.environ["OUT"]
rng = np.random.default_rng(0)


def var(name, value):
    return v1.get_variable(name, initializer=value.astype("float32"), use_resource=True)


# Initializes the graph's variables and saves it with the v1 Builder, as an Estimator export does.
def export_v1(graph, name, inputs, outputs):
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(f"{out}/{name}")
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def(inputs, outputs)})
        builder.save()


import tf_keras as k
x = rng.standard_normal((64, 12, 12, 3)).astype("float32")
model = k.Sequential([k.layers.Conv2D(8, 3, input_shape=(12, 12, 3)), k.layers.BatchNormalization(), k.layers.ReLU(),
                      k.layers.Conv2D(8, 3), k.layers.BatchNormalization(), k.layers.ReLU(),
                      k.layers.GlobalAveragePooling2D(), k.layers.Dense(4)])
model.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, rng.integers(0, 4, 64), epochs=1, verbose=0)  # optimizer slots in the checkpoint
model.save(out + "/keras2", save_format="tf")
np.save(out + "/keras2_x.npy", x[:8])

g = tf.Graph()
with g.as_default():
    t = v1.placeholder(tf.float32, [None, 8, 8, 3], name="x")
    y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(t, var("w", rng.standard_normal((3, 3, 3, 4))), 1, "SAME"),
                                  var("b", rng.standard_normal(4))))
    y, _, _ = v1.nn.fused_batch_norm(y, tf.ones([4]), tf.zeros([4]), var("mean", rng.standard_normal(4)),
                                     var("var", rng.uniform(0.5, 2, 4)), is_training=False)
    logits = tf.matmul(tf.reduce_mean(y, [1, 2]), var("dense", rng.standard_normal((4, 3))))
    export_v1(g, "tf1", {"x": t}, {"logits": logits})
np.save(out + "/tf1_x.npy", rng.standard_normal((2, 8, 8, 3)).astype("float32"))

# TF1 control flow reading the variables: in the saved graph their handles
# pass through Switch (cond) and Enter (while_loop) to each ReadVariableOp
# (TF's v1 loader lifts these into function arguments).
v1.disable_control_flow_v2()
g = tf.Graph()
with g.as_default():
    t = v1.placeholder(tf.float32, [None, 4], name="x")
    w, u = var("w", rng.standard_normal((4, 4)) / 2), var("u", rng.standard_normal((4, 4)) / 2)
    flag = v1.placeholder_with_default(True, [])
    y = v1.cond(flag, lambda: tf.matmul(t, w), lambda: tf.matmul(t, u))
    _, y = v1.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, tf.tanh(tf.matmul(h, u))), [tf.constant(0), y])
    export_v1(g, "tf1_control_flow", {"x": t}, {"y": y})
np.save(out + "/tf1_control_flow_x.npy", rng.standard_normal((3, 4)).astype("float32"))
print(json.dumps({}))
"""

RUN = r"""
import json, os, numpy as np, tensorflow as tf, int8flow
from tensorflow.python.saved_model import load_v1_in_v2
out, tag = os.environ["OUT"], os.environ["TAG"]
loaders = {"load": lambda p: tf.saved_model.load(p), "v1": lambda p: load_v1_in_v2.load(p, ["serve"])}
report = {}
for model in ("keras2", "tf1", "tf1_control_flow"):
    x = np.load(f"{out}/{model}_x.npy")
    for name, load in loaders.items():
        key = f"{model} {name}"
        before = int8flow.stats()
        try:
            signature = load(f"{out}/{model}").signatures["serving_default"]  # restores the variables
            int8flow.reset_stats()  # cpu_ops: the signature's alone
            outputs = signature(tf.constant(x))
            (y,) = outputs.values()
            np.save(f"{out}/{key} {tag}.npy", y.numpy())
            s = int8flow.stats()
            added = lambda counts: {k: n - before[counts].get(k, 0) for k, n in s[counts].items()
                                    if n != before[counts].get(k, 0)}  # since process start: this case's
            report[key] = {"cpu_ops": s["cpu_ops"], "fusions": added("fusions"),
                           "pass_errors": added("pass_errors"), "error": None}
        except Exception as e:
            report[key] = {"error": f"{type(e).__name__}: {e}"[:1500]}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def runs(installed, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("saved_models")
    run_json(EXPORT, OUT=str(out), INT8FLOW_DISABLE="1")
    stock = run_json(RUN, OUT=str(out), TAG="stock", INT8FLOW_DISABLE="1")
    ours = run_json(RUN, OUT=str(out), TAG="qcpu")
    return out, stock, ours


@pytest.mark.parametrize("case", ["keras2 load", "keras2 v1", "tf1 load", "tf1 v1", "tf1_control_flow load",
                                  "tf1_control_flow v1"])
def test_saved_model_runs_as_on_stock_tf(runs, case: str) -> None:
    out, stock, ours = runs
    assert stock[case]["error"] is None, stock[case]["error"]
    assert ours[case]["error"] is None, ours[case]["error"]
    want, got = np.load(out / f"{case} stock.npy"), np.load(out / f"{case} qcpu.npy")
    # float32 sums in other orders through two convs: 1e-5 of the output's scale.
    assert np.abs(got - want).max() <= 1e-5 * (np.abs(want).max() + 1), np.abs(got - want).max()
    # Computed on QCPU: only the variables (read by name, so kept where TF
    # restored them, with the control flow passing their handles) and TF's
    # own plumbing may stay on CPU. The pass fused the rest, and gave up on
    # no graph of this case.
    allowed = {"VarHandleOp", "ReadVariableOp", "NoOp", "Identity", "Switch", "Merge", "Enter", "Exit",
               "NextIteration", "LoopCond", "Less", "Const", "AddV2"}
    assert set(ours[case]["cpu_ops"]) <= allowed, ours[case]["cpu_ops"]
    assert not ours[case]["pass_errors"], ours[case]["pass_errors"]
    if case.startswith(("keras2", "tf1 ")):
        assert ours[case]["fusions"], ours[case]
