"""Runs one small Keras 3 model every way a user would and saves the outputs.

    python keras_workload.py OUT.npz

Run once with the plugin and once with INT8FLOW_DISABLE=1; test_keras.py
compares the two files. Weights come from a fixed NumPy seed, so both runs
hold the same model whatever device initialises it.
"""
from __future__ import annotations

import sys
import tempfile

import numpy as np
import tensorflow as tf
import keras

import int8flow


def build_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(32, activation="gelu")(x)
    x = keras.layers.LayerNormalization()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(1234)
    # Variances must be positive, or BatchNormalization gives NaN everywhere.
    model.set_weights([
        np.abs(v) + 0.5 if "variance" in w.path else v
        for w, v in ((w, rng.standard_normal(w.shape).astype("float32") * 0.3)
                     for w in model.weights)])
    return model


def main(out_path: str) -> None:
    model = build_model()
    x = np.random.default_rng(7).standard_normal((4, 16, 16, 3)).astype("float32")
    results = {
        "predict": model.predict(x, verbose=0),  # Keras' default jit_compile="auto"
        "call": model(x, training=False).numpy(),
        "tf_function": tf.function(lambda t: model(t, training=False))(x).numpy(),
    }
    with tempfile.TemporaryDirectory() as exported, tempfile.TemporaryDirectory() as saved:
        model.export(exported, format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(exported)  # keep it alive: it owns the variables
        results["keras_export"] = loaded.serve(x).numpy()
        tf.saved_model.save(model, saved)
        served = tf.saved_model.load(saved)
        (output,) = served.signatures["serving_default"](tf.constant(x)).values()
        results["saved_model"] = output.numpy()
    qcpu = [d.name for d in tf.config.list_physical_devices("QCPU")]
    np.savez(out_path, qcpu=np.array(len(qcpu)), active=np.array(int8flow.is_loaded()),
             **results)


if __name__ == "__main__":
    main(sys.argv[1])
