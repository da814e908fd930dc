"""Keras mixed-precision policies train with int8flow as on stock TF.

Keras compiles `fit` with XLA wherever QCPU is listed, so its optimizer's
`cond`s stay If ops whose branches run on QCPU alone (branch_ops.cc): under
`mixed_float16` the loss scale's step counter is an int64 AddV2 there, and
before those kernels every model failed `fit`. Each run is a fresh
interpreter, with int8flow and with INT8FLOW_DISABLE=1, on sklearn's digits.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_json

# (policy, optimizer) pairs: Adam's bias correction (Pow), gradient
# accumulation's counters (FloorDiv), Lion's Sign, all inside those conds.
CASES = [
    ("mixed_float16", "keras.optimizers.Adam(1e-3)"),
    ("mixed_float16", "keras.optimizers.AdamW(1e-3, gradient_accumulation_steps=2)"),
    ("mixed_float16", "keras.optimizers.Lion(1e-4)"),
    ("mixed_bfloat16", "keras.optimizers.Adam(1e-3)"),
]

FIT = f"""
import json, numpy as np, keras, int8flow
from sklearn.datasets import load_digits
digits = load_digits()
x = (digits.images[:256, :, :, None] / 16.0).astype("float32")
y = digits.target[:256]
results = []
for policy, optimizer in {CASES!r}:
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(10), keras.layers.Activation("softmax", dtype="float32")])
    model.compile(eval(optimizer), "sparse_categorical_crossentropy")
    int8flow.reset_stats()
    losses = model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0).history["loss"]
    results.append({{"losses": losses, "probabilities": model.predict(x, verbose=0).tolist(),
                    "jit": bool(model.jit_compile), "cpu_ops": int8flow.stats()["cpu_ops"]}})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def fits(installed) -> tuple[list[dict], list[dict]]:
    return run_json(FIT), run_json(FIT, INT8FLOW_DISABLE="1")


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{p}-{o.split('(')[0][17:]}" for p, o in CASES])
def test_fit_under_a_mixed_precision_policy_as_on_stock_tf(fits, case: int) -> None:
    got, stock = fits[0][case], fits[1][case]
    assert got["jit"], "Keras did not compile for XLA: the cond would be lowered, and this test prove nothing"
    # The float16/bfloat16 ops run on TF's CPU kernels either way (QCPU's are
    # float32); the float32 ones on QCPU may round their sums differently.
    # Measured on Zen 4: equal under mixed_float16, losses 6e-5 apart and
    # probabilities 6e-4 under mixed_bfloat16.
    loss_err = np.abs(np.array(got["losses"]) - np.array(stock["losses"])).max()
    assert loss_err <= 2e-4 * np.abs(stock["losses"]).max(), (got["losses"], stock["losses"])
    prob_err = np.abs(np.array(got["probabilities"]) - np.array(stock["probabilities"])).max()
    assert prob_err <= 5e-3, prob_err
    assert np.isfinite(got["losses"]).all() and got["losses"][-1] < got["losses"][0], got["losses"]
    # The Dense layer's MatMul, in the policy's type, stays on TF's CPU (its
    # native kernel): QCPU's float32 kernels for it serve loop bodies only.
    assert "MatMul" in got["cpu_ops"], got["cpu_ops"]



# Recurrent layers: their loop bodies compute in bf16/float16 on QCPU alone,
# through QCPU's float32 kernels (half_as_float.h). A masked LSTM adds the
# mask's SelectV2 and list ops in that type.
RNN_CASES = [("mixed_bfloat16", "LSTM", False), ("mixed_float16", "GRU", False),
             ("mixed_bfloat16", "SimpleRNN", False), ("mixed_float16", "Bidirectional", False),
             ("mixed_bfloat16", "LSTM", True)]

RNN_FIT = f"""
import json, numpy as np, keras, int8flow
rng = np.random.default_rng(0)
results = []
for policy, name, masked in {RNN_CASES!r}:
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    layer = {{"LSTM": lambda: keras.layers.LSTM(8), "GRU": lambda: keras.layers.GRU(8),
             "SimpleRNN": lambda: keras.layers.SimpleRNN(8),
             "Bidirectional": lambda: keras.layers.Bidirectional(keras.layers.LSTM(4))}}[name]()
    if masked:  # token ids, zero-padded at the end, masked by the embedding
        x = rng.integers(1, 50, (32, 9)).astype("int32")
        x[:, 6:], x[5, 2:] = 0, 0
        inputs = [keras.Input((9,), dtype="int32"), keras.layers.Embedding(50, 4, mask_zero=True)]
    else:
        x = rng.standard_normal((32, 9, 4)).astype("float32")
        inputs = [keras.Input((9, 4))]
    y = rng.standard_normal((32, 3)).astype("float32")
    model = keras.Sequential(inputs + [layer, keras.layers.Dense(3, dtype="float32")])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    before = model.predict(x, verbose=0)
    losses = model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    results.append({{"before": before.tolist(), "after": model.predict(x, verbose=0).tolist(),
                    "losses": losses, "jit": bool(model.jit_compile)}})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def rnn_fits(installed) -> tuple[list[dict], list[dict]]:
    return run_json(RNN_FIT), run_json(RNN_FIT, INT8FLOW_DISABLE="1")


@pytest.mark.parametrize("case", range(len(RNN_CASES)),
                         ids=[f"{p}-{n}{'-masked' if m else ''}" for p, n, m in RNN_CASES])
def test_recurrent_layer_under_a_mixed_precision_policy_as_on_stock_tf(rnn_fits, case: int) -> None:
    got, stock = rnn_fits[0][case], rnn_fits[1][case]
    assert got["jit"], "Keras did not compile for XLA: the loop would be lowered, and this test prove nothing"
    # Each step rounds to the policy's type, in float32 here and in that type's
    # own kernels on stock TF: 1 ulp apart per op, compounding over the steps.
    # Measured on Zen 4: outputs within 0.9% (bf16) and 0.06% (float16) of scale.
    tolerance = {"mixed_bfloat16": 3e-2, "mixed_float16": 3e-3}[RNN_CASES[case][0]]
    for key in ("before", "after"):
        scale = np.abs(np.array(stock[key])).max()
        err = np.abs(np.array(got[key]) - np.array(stock[key])).max()
        assert err <= tolerance * scale, (key, err, scale)
    loss_err = np.abs(np.array(got["losses"]) - np.array(stock["losses"])).max()
    assert loss_err <= tolerance * np.abs(stock["losses"]).max(), (got["losses"], stock["losses"])
