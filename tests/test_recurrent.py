"""Keras recurrent layers, masked or not, and Embedding tables run with int8flow
as on stock TF, in predict and fit.

Keras compiles both with XLA wherever a non-CPU device is listed, QCPU too, so
its RNN loops are never lowered: TF runs each as a While op whose body lives on
QCPU alone (loop_ops.cc). Each model runs in a fresh interpreter with int8flow
and with INT8FLOW_DISABLE=1 (stock TF), on the same weights and data.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_json

RECURRENT = """
import json, numpy as np, tensorflow as tf, keras, int8flow
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
y = rng.standard_normal((16, 4)).astype("float32")
layer = {"SimpleRNN": lambda: keras.layers.SimpleRNN(4), "LSTM": lambda: keras.layers.LSTM(4),
         "GRU": lambda: keras.layers.GRU(4),
         "Bidirectional": lambda: keras.layers.Bidirectional(keras.layers.LSTM(2)),
         "ConvLSTM2D": lambda: keras.layers.ConvLSTM2D(4, 3)}[NAME]()
if MASKED:  # token ids, zero-padded at the end (one row wholly), masked by the embedding
    x = rng.integers(1, 50, (16, 7)).astype("int32")
    x[:, 5:], x[3, 2:], x[7, :] = 0, 0, 0
    model = keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(50, 3, mask_zero=True), layer])
elif NAME == "ConvLSTM2D":  # 3 frames of 6x6x2; its cell is four convolutions
    x = rng.standard_normal((16, 3, 6, 6, 2)).astype("float32")
    model = keras.Sequential([keras.Input((3, 6, 6, 2)), layer, keras.layers.GlobalAveragePooling2D()])
else:
    x = rng.standard_normal((16, 7, 3)).astype("float32")
    model = keras.Sequential([keras.Input((7, 3)), layer])
model.compile(keras.optimizers.SGD(0.05), "mse")
int8flow.record_op_stats(True)
before = model.predict(x, verbose=0)
losses = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
after = model.predict(x, verbose=0)
print(json.dumps({"before": before.tolist(), "after": after.tolist(), "losses": losses,
                  "ops": sorted(int8flow.stats()["ops"]), "cpu_ops": int8flow.stats()["cpu_ops"],
                  "jit": bool(model.jit_compile)}))
"""


def run(name: str, masked: bool = False, **env: str) -> dict:
    return run_json(RECURRENT.replace("NAME", repr(name)).replace("MASKED", repr(masked)), **env)


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU", "Bidirectional"])
def test_recurrent_layers_predict_and_fit_as_on_stock_tf(installed, name: str) -> None:
    got, stock = run(name), run(name, INT8FLOW_DISABLE="1")
    # Keras chose XLA because QCPU is listed; the loop's plumbing ran on QCPU.
    assert got["jit"] and {"LogicalAnd", "Split" if name != "SimpleRNN" else "Tanh"} <= set(got["ops"]), got["ops"]
    # Float32 sums of a few terms per step in other orders, over 7 steps and
    # two epochs of SGD: well inside 1e-4 of O(1) values.
    for key in ("before", "after", "losses"):
        err = np.abs(np.array(got[key]) - np.array(stock[key])).max()
        assert err <= 1e-4, (key, err)


def test_conv_lstm_predicts_and_fits_as_on_stock_tf(installed) -> None:
    # Its gradient loop's body runs Conv2D's gradients on QCPU alone
    # (conv_backprop.cc): without them `fit` cannot place the body.
    got, stock = run("ConvLSTM2D"), run("ConvLSTM2D", INT8FLOW_DISABLE="1")
    assert {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"} <= set(got["ops"]), got["ops"]
    for key in ("before", "after", "losses"):
        err = np.abs(np.array(got[key]) - np.array(stock[key])).max()
        assert err <= 1e-4, (key, err)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "Bidirectional"])
def test_masked_recurrent_layers_predict_and_fit_as_on_stock_tf(installed, name: str) -> None:
    # Embedding(mask_zero=True) before the RNN: its loop reads the mask from a
    # TensorList of bools and tiles it, and the gradient loop pops it back and
    # sums lists; with no QCPU kernel for those, predict and fit failed with
    # NotFound. They run on QCPU now (tensor_list.cc), as stock TF computes.
    # (The loops lowered for the pass reach it without the Tile: Grappler rewrites it first.)
    got, stock = run(name, masked=True), run(name, masked=True, INT8FLOW_DISABLE="1")
    assert {"TensorListGetItem", "TensorListPopBack", "AddN"} <= set(got["ops"]), got["ops"]
    for key in ("before", "after", "losses"):
        err = np.abs(np.array(got[key]) - np.array(stock[key])).max()
        assert err <= 1e-4, (key, err)


EMBEDDING_FIT = """
import json, numpy as np, keras, int8flow
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(50, 3), keras.layers.Flatten(),
                          keras.layers.Dense(2)])
model.compile(OPTIMIZER, "mse")
x = np.random.default_rng(0).integers(0, 50, (16, 7)).astype("int32")
losses = model.fit(x, np.ones((16, 2)), epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
print(json.dumps({"losses": losses, "table": model.layers[0].embeddings.numpy().tolist()}))
"""


@pytest.mark.parametrize("optimizer", ["SGD", "RMSprop", "Adagrad"])
def test_embedding_trains_with_sparse_updates_as_on_stock_tf(installed, optimizer: str) -> None:
    # These optimizers update an Embedding's table row by row (ResourceScatterSub,
    # in a cond that casts), next to the variable on QCPU: fit failed to place
    # the graph, then to find a Cast kernel in the cond's branch.
    script = EMBEDDING_FIT.replace("OPTIMIZER", f"keras.optimizers.{optimizer}(0.05)")
    got, stock = run_json(script), run_json(script, INT8FLOW_DISABLE="1")
    for key in ("losses", "table"):
        err = np.abs(np.array(got[key]) - np.array(stock[key])).max()
        assert err <= 1e-5, (key, err)


ACTIVATIONS = ["relu", "relu6", "elu", "selu", "gelu", "softplus", "softsign", "leaky_relu", "hard_sigmoid",
               "hard_tanh", "celu", "mish", "squareplus", "sparse_plus", "soft_shrink"]

ACTIVATION_FIT = f"""
import json, numpy as np, keras
rng = np.random.default_rng(0)
x = rng.standard_normal((16, 6, 3)).astype("float32")
y = rng.standard_normal((16, 4)).astype("float32")
results = {{}}
for activation in {ACTIVATIONS!r}:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.SimpleRNN(4, activation=activation)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    losses = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    results[activation] = {{"losses": losses, "after": model.predict(x, verbose=0).tolist()}}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def activation_fits(installed) -> tuple[dict, dict]:
    return run_json(ACTIVATION_FIT), run_json(ACTIVATION_FIT, INT8FLOW_DISABLE="1")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_recurrent_cell_activations_fit_as_on_stock_tf(activation_fits, activation: str) -> None:
    # A cell's activation and its gradient run in the loop bodies, on QCPU
    # alone (activation_loops.cc): before those kernels, fit with "relu"
    # failed on ReluGrad, "selu" on Selu, "gelu" on Erfc, "hard_tanh" on a
    # float comparison.
    got, stock = activation_fits[0][activation], activation_fits[1][activation]
    for key in ("losses", "after"):
        err = np.abs(np.array(got[key]) - np.array(stock[key])).max()
        assert err <= 1e-5 * max(1.0, np.abs(np.array(stock[key])).max()), (key, err)


LOOP_COPIES = """
import json, numpy as np, tensorflow as tf, keras, int8flow
x = np.random.default_rng(0).standard_normal((8, 30, 16)).astype("float32")
model = keras.Sequential([keras.Input((30, 16)), keras.layers.LAYER(32)])
model.compile("adam", "mse")
graph = tf.function(model)
calls = {"tf.function": lambda: graph(x).numpy(), "predict": lambda: model.predict(x, verbose=0),
         "fit": lambda: model.fit(x, np.zeros((8, 32), "float32"), batch_size=8, verbose=0)}
copies, cells = {}, {}
for name, call in calls.items():
    int8flow.reset_stats()
    call()  # traced and optimized here
    cells[name] = int8flow.stats()["fusions"].get("LAYER cell", 0)
    int8flow.reset_stats()
    call()
    counts = int8flow.stats()["copies"]
    copies[name] = counts["htod"]["count"] + counts["dtoh"]["count"]
print(json.dumps({"copies": copies, "cells": cells}))
"""


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_recurrent_steps_copy_nothing_and_cells_fuse(installed, layer: str) -> None:
    # A loop's condition compares int32 counters, whose tensors TF keeps in
    # host memory, and LoopCond and While read its bool there: with QCPU's
    # LogicalAnd on device memory, each of the 30 steps paid three copies,
    # each a wait on TF's event manager (an LSTM(128) ran 8x slower than on
    # stock TF). predict's loop, traced for XLA, ran as a While op, whose
    # condition's bool crossed twice a step, until the pass had it lowered.
    # Only the input, the result and predict's bookkeeping cross now.
    # fit's gradient loop summed its weight gradients in loop variables that
    # started as zeros on TF's CPU: each step copied every sum to QCPU and
    # back (222 copies a batch). Its optimizer's and metrics' scalar
    # bookkeeping still crosses, about 40 times a batch.
    got = run_json(LOOP_COPIES.replace("LAYER", layer))
    bounds = {"tf.function": 10, "predict": 10, "fit": 60}  # 30 steps: a copy a step fails
    assert all(got["copies"][call] < bound for call, bound in bounds.items()), got
    # The step's element-wise ops run as one fused cell, in predict's
    # lowered loop too.
    assert all(n > 0 for n in got["cells"].values()), got


def test_bidirectional_call_copies_only_its_input_and_result(installed) -> None:
    # Bidirectional flips the sequence (ReverseV2, reverse.cc) and both
    # directions read one time-major Transpose (transpose.cc): with neither on
    # QCPU each call copied 3 tensors in and 2 out. Now only the input crosses
    # in and the result out, and the answer is stock TF's.
    got = run_json("""
        import json, numpy as np, tensorflow as tf, keras, int8flow
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).standard_normal((4, 20, 8)).astype("float32")
        model = keras.Sequential([keras.Input((20, 8)), keras.layers.Bidirectional(keras.layers.LSTM(16))])
        graph = tf.function(model)
        graph(x).numpy()
        int8flow.reset_stats()
        out = graph(x).numpy()
        copies = int8flow.stats()["copies"]
        with tf.device("/device:CPU:0"):
            reference = model(x).numpy()
        print(json.dumps({"in": copies["htod"]["count"], "out": copies["dtoh"]["count"],
                          "err": float(np.abs(out - reference).max()), "scale": float(np.abs(reference).max())}))
    """)
    assert (got["in"], got["out"]) == (1, 1), got
    assert got["err"] <= 1e-5 * got["scale"], got

