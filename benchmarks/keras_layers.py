"""One-layer Keras models, int8flow against stock TF: where QCPU is slower than TF's CPU.

    python benchmarks/keras_layers.py [--models lstm,conv3d] [--rounds 3] [--batch 8] [--device-input | --fit]

Each round runs every model once in a process with int8flow and once with
INT8FLOW_DISABLE=1, one after the other, and times `tf.function(model)` on
fixed-seed inputs (numpy in and out, as a user calls it; with --device-input
the input is a tensor made once on the default device, so the copies at the
function's boundary leave the figure). With --fit it times an epoch of
Keras' `fit` instead (Adam, 8 batches; sparse categorical cross-entropy for
the softmax classifiers, else MSE to zeros), which stock TF compiles with
XLA. Prints each model's median over the rounds and the ratio stock /
int8flow (above 1: int8flow is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def models(batch: int) -> dict:
    import keras

    layers = keras.layers

    def sequential(shape: tuple, *stack, dtype: str = "float32"):
        def build():
            keras.utils.set_random_seed(0)
            x = inputs = keras.Input(shape, dtype=dtype)
            for layer in stack:
                x = layer()(x)
            return keras.Model(inputs, x)
        return build

    def attention():
        keras.utils.set_random_seed(0)
        x = keras.Input((128, 256))
        return keras.Model(x, layers.MultiHeadAttention(8, 32)(x, x))

    def conv(filters: int, **kw):
        return lambda: layers.Conv2D(filters, 3, padding="same", **kw)

    return {
        "conv1d": sequential((256, 64), lambda: layers.Conv1D(64, 5, padding="same", activation="relu"),
                             lambda: layers.Conv1D(64, 3, activation="relu")),
        "separable_conv2d": sequential((64, 64, 32), lambda: layers.SeparableConv2D(64, 3, padding="same"),
                                       lambda: layers.SeparableConv2D(64, 3, padding="same")),
        "conv3d": sequential((16, 32, 32, 8), lambda: layers.Conv3D(16, 3, padding="same", activation="relu")),
        "upsampling_bilinear": sequential((32, 32, 32), lambda: layers.UpSampling2D(interpolation="bilinear"),
                                          conv(32)),
        "upsampling_nearest": sequential((32, 32, 32), layers.UpSampling2D, conv(32)),
        "average_pooling": sequential((64, 64, 32), lambda: layers.AveragePooling2D(2), conv(32),
                                      layers.GlobalMaxPooling2D),
        "batch_norm_relu": sequential((64, 64, 32), layers.BatchNormalization, layers.ReLU),
        "dense_softmax_3d": sequential((128, 256), lambda: layers.Dense(256, activation="gelu"),
                                       lambda: layers.Dense(64), layers.Softmax),
        "embedding_pooling": sequential((200,), lambda: layers.Embedding(20000, 128),
                                        layers.GlobalAveragePooling1D, lambda: layers.Dense(2), dtype="int32"),
        "attention": attention,
        "lstm": sequential((50, 64), lambda: layers.LSTM(128)),
        "bidirectional_lstm": sequential((50, 64), lambda: layers.Bidirectional(layers.LSTM(64))),
        "gru": sequential((50, 64), lambda: layers.GRU(128, return_sequences=True), lambda: layers.Dense(8)),
        "conv2d_transpose": sequential(
            (32, 32, 64), lambda: layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
            lambda: layers.Conv2DTranspose(32, 3, strides=2, padding="same")),
        "depthwise_bn_relu": sequential((56, 56, 64), lambda: layers.DepthwiseConv2D(3, padding="same"),
                                        layers.BatchNormalization, layers.ReLU),
        "layer_norm_dense": sequential((64, 512), layers.LayerNormalization, lambda: layers.Dense(512)),
        "dilated_conv2d": sequential((64, 64, 32), conv(32, dilation_rate=2, activation="relu")),
        # What `fit` trains most: an MNIST-sized CNN and a tabular MLP, softmax classifiers.
        "cnn_classifier": sequential((28, 28, 1), conv(32, activation="relu"), layers.MaxPooling2D,
                                     conv(64, activation="relu"), layers.MaxPooling2D, layers.Flatten,
                                     lambda: layers.Dropout(0.5), lambda: layers.Dense(10, activation="softmax")),
        "mlp_classifier": sequential((64,), lambda: layers.Dense(256, activation="relu"), layers.BatchNormalization,
                                     lambda: layers.Dense(256, activation="relu"),
                                     lambda: layers.Dense(10, activation="softmax")),
    }


def inputs_for(model, rows: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = [rows, *model.input_shape[1:]]
    if model.input.dtype == "int32":
        return rng.integers(0, 20000, shape).astype("int32")
    return rng.standard_normal(shape).astype("float32")


def median_ms(run, least: int) -> float:
    """Median ms of `run()` over at least 1.5 s and `least` runs, after warming up."""
    for _ in range(2):
        run()
    times, deadline = [], time.perf_counter() + 1.5
    while time.perf_counter() < deadline or len(times) < least:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def time_fit(model, batch: int) -> float:
    """ms per epoch of `fit` on 8 batches."""
    x = inputs_for(model, 8 * batch)
    classifier = model.layers[-1].get_config().get("activation") == "softmax"
    if classifier:
        y = np.random.default_rng(1).integers(0, model.output_shape[-1], 8 * batch)
    else:
        y = np.zeros([8 * batch, *model.output_shape[1:]], "float32")
    model.compile("adam", "sparse_categorical_crossentropy" if classifier else "mse")
    return median_ms(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), least=3)


def time_models(names: list[str], batch: int, device_input: bool, fit: bool) -> dict[str, float]:
    """This process's median ms per call (or per fit epoch) of each model."""
    import tensorflow as tf

    found = models(batch)
    medians = {}
    for name in names:
        model = found[name]()
        if fit:
            medians[name] = time_fit(model, batch)
            continue
        x = inputs_for(model, batch)
        if device_input:
            x = tf.identity(tf.constant(x))
        call = tf.function(lambda t, m=model: m(t, training=False))
        medians[name] = median_ms(lambda c=call, t=x: c(t).numpy(), least=10)
    return medians


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="", help="comma-separated (default: all)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--device-input", action="store_true", help="input made once as a tensor on the device")
    mode.add_argument("--fit", action="store_true", help="time an epoch of Keras' fit (8 batches)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    names = a.models.split(",") if a.models else list(models(a.batch))
    if a.worker:
        print(json.dumps(time_models(names, a.batch, a.device_input, a.fit)))
        return 0
    runs: dict[str, list[dict[str, float]]] = {"int8flow": [], "stock": []}
    command = [sys.executable, __file__, "--worker", "--models", ",".join(names), "--batch", str(a.batch)]
    command += ["--device-input"] * a.device_input + ["--fit"] * a.fit
    for _ in range(a.rounds):
        for side, disable in (("int8flow", "0"), ("stock", "1")):
            out = subprocess.run(command, env={**os.environ, "INT8FLOW_DISABLE": disable},
                                 capture_output=True, text=True, check=True)
            runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    unit = "ms/epoch" if a.fit else "ms"
    print(f"| model | int8flow {unit} | stock TF {unit} | stock / int8flow |\n|---|---:|---:|---:|")
    for name in names:
        ours, stock = (statistics.median(r[name] for r in runs[side]) for side in ("int8flow", "stock"))
        print(f"| {name} | {ours:.2f} | {stock:.2f} | {stock / ours:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
