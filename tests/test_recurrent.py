"""Keras recurrent layers run with int8flow as on stock TF, in predict and fit.

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
x = rng.standard_normal((16, 7, 3)).astype("float32")
y = rng.standard_normal((16, 4)).astype("float32")
layer = {"SimpleRNN": lambda: keras.layers.SimpleRNN(4), "LSTM": lambda: keras.layers.LSTM(4),
         "GRU": lambda: keras.layers.GRU(4),
         "Bidirectional": lambda: keras.layers.Bidirectional(keras.layers.LSTM(2))}[NAME]()
model = keras.Sequential([keras.Input((7, 3)), layer])
model.compile(keras.optimizers.SGD(0.05), "mse")
int8flow.record_op_stats(True)
before = model.predict(x, verbose=0)
losses = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
after = model.predict(x, verbose=0)
print(json.dumps({"before": before.tolist(), "after": after.tolist(), "losses": losses,
                  "ops": sorted(int8flow.stats()["ops"]), "jit": bool(model.jit_compile)}))
"""


def run(name: str, **env: str) -> dict:
    return run_json(RECURRENT.replace("NAME", repr(name)), **env)


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
