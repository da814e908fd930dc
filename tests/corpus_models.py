"""The differential corpus: graphs int8flow's authors did not write, run on
stock TF and on int8flow, in a subprocess of test_corpus.py.

    python corpus_models.py MODE GROUP OUT

MODE is `stock` (run it with INT8FLOW_DISABLE=1: the true baseline) or `qcpu`
(int8flow: FP32 first, then dynamic INT8 for the float models). GROUP is
`apps` or `small` (see MODELS). Each model is built from a fixed seed
(keras.utils.set_random_seed(0) and fixed numpy draws), so both processes
hold the same weights (the digest of `get_weights()` is recorded to prove it),
and runs on the same fixed inputs. Every path of every model writes its outputs
to OUT/MODE/<model>/<path>.npz (spaces as underscores); the last stdout line
is one JSON object: per model, its weights digest and, per path, its error (an exception's type
and message, or null), the ops the graph pass left on CPU (`cpu_ops`), the
INT8 rewrites it made, the milliseconds QCPU's INT8 kernels ran (`int8_ms`,
from int8flow.record_op_stats), the pass's errors and the seconds the first
call took (trace, optimization and run). An exception is caught per path, so one
failing model or path hides nothing else.

Paths: Keras models run as `tf.function(model)` ("function") and through
`model.predict(x, verbose=0)` ("predict"; Keras 3 compiles its step with XLA
where a non-CPU device is listed, QCPU included, and int8flow runs it without
XLA). The tf.Modules are saved by the stock process to OUT/saved/<model> and
loaded back with tf.saved_model.load, their serving signature called
("saved"); the qcpu process loads that same SavedModel, and also saves and
reloads its own ("exported here"). INT8 paths are the same with "int8 "
before the name, traced after int8flow.enable_int8("dynamic").
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

MODE, GROUP, OUT = sys.argv[1], sys.argv[2], Path(sys.argv[3])
QCPU = MODE == "qcpu"
if QCPU:
    import int8flow

    assert int8flow.is_loaded(), int8flow.load_state()
    int8flow.record_op_stats(True)  # int8_ms: proof that INT8 kernels ran
else:
    assert not tf.config.list_physical_devices("QCPU"), "run the stock side with INT8FLOW_DISABLE=1"

BATCH = 2


# ---- Keras models ------------------------------------------------------------------
def application(name: str, size: int):
    """A keras.applications model with random weights at (about) the smallest input
    it accepts, 10 classes and logits out (a softmax of random logits over 1000
    classes is flat: INT8's cosine on it would say nothing)."""
    def build():
        model = getattr(keras.applications, name)(
            weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None)
        return model, [images(size)]
    return build


def images(size: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((BATCH, size, size, 3)).astype(np.float32)


class PositionEmbedding(keras.layers.Layer):
    def build(self, shape):
        self.position = self.add_weight(shape=tuple(shape[1:]), name="position",
                                        initializer=keras.initializers.RandomNormal(stddev=0.5))

    def call(self, x):
        return x + self.position


def vit():
    """A ViT-style encoder: 4x4 patches by a strided Conv2D, a learned position
    embedding, two pre-norm blocks (MultiHeadAttention, a GELU MLP) and a head."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(48, 4, strides=4)(inputs)
    x = PositionEmbedding()(keras.layers.Reshape((64, 48))(x))
    for _ in range(2):
        h = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(num_heads=4, key_dim=12)(h, h)])
        h = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        h = keras.layers.Dense(96, activation="gelu")(h)
        x = keras.layers.Add()([x, keras.layers.Dense(48)(h)])
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization(epsilon=1e-6)(x))
    return keras.Model(inputs, keras.layers.Dense(10)(x)), [images(32)]


def unet():
    """A two-scale U-Net: Conv2DTranspose (with bias and relu) up, a skip concatenated."""
    inputs = keras.Input((32, 32, 3))
    skip = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(keras.layers.MaxPooling2D()(skip))
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Concatenate()([x, skip])
    x = keras.layers.Conv2DTranspose(8, 3, padding="same", use_bias=False)(x)
    return keras.Model(inputs, keras.layers.Conv2D(4, 1)(x)), [images(32)]


def video3d():
    """A small video / volume classifier: Conv3D blocks (bias and relu; a
    BatchNormalization), MaxPooling3D, a Conv3DTranspose up, global pooling."""
    inputs = keras.Input((8, 16, 16, 3))
    x = keras.layers.Conv3D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling3D(2)(x)
    x = keras.layers.Conv3D(16, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv3DTranspose(8, 2, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    volumes = np.random.default_rng(4).standard_normal((BATCH, 8, 16, 16, 3)).astype(np.float32)
    return keras.Model(inputs, keras.layers.Dense(6)(x)), [volumes]


def lstm():
    model = keras.Sequential([keras.Input((12,), dtype="int32"), keras.layers.Embedding(100, 16),
                              keras.layers.LSTM(32), keras.layers.Dense(5)])
    return model, [np.random.default_rng(2).integers(0, 100, (BATCH, 12)).astype(np.int32)]


def gru():
    model = keras.Sequential([keras.Input((10, 8)), keras.layers.GRU(32, return_sequences=True),
                              keras.layers.Dense(4)])
    return model, [np.random.default_rng(3).standard_normal((BATCH, 10, 8)).astype(np.float32)]


# ---- tf.Modules with tf.function control flow, string and int ops -------------------
def weight(*shape: int, seed: int, scale: float = 0.4) -> tf.Variable:
    return tf.Variable(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * scale)


class WhileLoop(tf.Module):
    """A tf.while_loop with a data-dependent trip count; `cos` has a QCPU kernel for
    loop bodies only (activation_loops.cc): at top level it would run on TF's CPU."""
    def __init__(self, jit_compile: bool = False):
        super().__init__()
        self.w = weight(64, 64, seed=4, scale=0.15)  # 64 wide: dynamic INT8 takes it (docs/int8.md)

        def run(x, n):
            def body(i, h):
                return i + 1, tf.tanh(tf.matmul(h, self.w)) + 0.1 * tf.cos(h)
            steps, h = tf.while_loop(lambda i, h: i < n, body, (tf.constant(0), x))
            return {"steps": steps, "h": h}
        self.__call__ = tf.function(run, jit_compile=jit_compile, input_signature=[
            tf.TensorSpec([None, 64], tf.float32), tf.TensorSpec([], tf.int32)])


class Cond(tf.Module):
    """A tf.cond on the input's sum, a matmul in each branch."""
    def __init__(self):
        super().__init__()
        self.w1, self.w2 = weight(8, 64, seed=5), weight(8, 64, seed=6)  # 64 wide, as above

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32)])
    def __call__(self, x):
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: tf.nn.relu(tf.matmul(x, self.w1)),
                    lambda: 2.0 * tf.sigmoid(tf.matmul(x, self.w2)))
        return {"y": y}


class Strings(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)])
    def __call__(self, words, numbers):
        length = tf.strings.length(words)
        value = tf.strings.to_number(numbers, tf.float32)
        return {"length": length, "substr": tf.strings.substr(words, 1, 3),
                "value": value * 2.0 + 1.0, "as_string": tf.strings.as_string(value, precision=3),
                "joined": tf.strings.join([tf.strings.upper(words), tf.strings.as_string(length * 7)], "-")}


class IntOps(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.int32)])
    def __call__(self, x):
        return {"floormod": tf.math.floormod(x, 7), "floordiv": tf.math.floordiv(x, 3),
                "cumsum": tf.cumsum(x, axis=1),
                "cumsum_rev": tf.cumsum(x, axis=1, exclusive=True, reverse=True),
                "argmax": tf.argmax(x, axis=1), "argmin": tf.argmin(x, axis=0, output_type=tf.int32),
                "sum": tf.reduce_sum(x * 3 - 1, axis=0)}


def floats(seed: int, *shape: int, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) + shift).astype(np.float32)


INTS = np.random.default_rng(7).integers(-50, 50, (4, 6)).astype(np.int32)
# The module and its calls: each call a dict of signature inputs.
MODULES = {
    "while_loop": (WhileLoop, [{"x": floats(8, 3, 64), "n": np.int32(5)}]),
    "while_loop (jit_compile)": (lambda: WhileLoop(jit_compile=True),
                                 [{"x": floats(8, 3, 64), "n": np.int32(5)}]),
    # Both branches: a positive sum, then a negative one.
    "cond": (Cond, [{"x": floats(9, 3, 8, shift=1.0)}, {"x": floats(9, 3, 8, shift=-1.0)}]),
    "strings": (Strings, [{"words": np.array([b"tensor", b"flow", b"qc", b"\xc3\xa9t\xc3\xa9", b"int8flow!"]),
                           "numbers": np.array([b"12", b"-3.5", b"1e3", b"0.125", b"7"])}]),
    # Stock TF raises InvalidArgument (substr's pos 1 is past the end of b""):
    # int8flow must raise the same.
    "strings (bad input)": (Strings, [{"words": np.array([b"tensor", b""]),
                                       "numbers": np.array([b"1", b"2"])}]),
    "int_ops": (IntOps, [{"x": INTS}]),
}

# name: (group, kind, float model, build)
MODELS = {
    "DenseNet121": ("apps", "keras", True, application("DenseNet121", 32)),
    "InceptionV3": ("apps", "keras", True, application("InceptionV3", 75)),
    "Xception": ("apps", "keras", True, application("Xception", 71)),
    "NASNetMobile": ("apps", "keras", True, application("NASNetMobile", 32)),
    "ConvNeXtTiny": ("apps", "keras", True, application("ConvNeXtTiny", 32)),
    "EfficientNetV2B0": ("apps", "keras", True, application("EfficientNetV2B0", 32)),
    "ViT": ("small", "keras", True, vit),
    "UNet": ("small", "keras", True, unet),
    "Video3D": ("small", "keras", True, video3d),
    "LSTM": ("small", "keras", True, lstm),
    "GRU": ("small", "keras", True, gru),
    "while_loop": ("small", "module", True, None),
    "while_loop (jit_compile)": ("small", "module", True, None),
    "cond": ("small", "module", True, None),
    "strings": ("small", "module", False, None),
    "strings (bad input)": ("small", "module", False, None),
    "int_ops": ("small", "module", False, None),
}


# ---- running ---------------------------------------------------------------------------
def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip()[:1500]}"


def fused_int8() -> int:
    return sum(n for k, n in int8flow.stats()["fusions"].items() if k.startswith("INT8")) if QCPU else 0


def run_path(record: dict, folder: Path, path: str, call) -> None:
    """Runs `call()` (a list of arrays) once, saves what it returns, and records
    the error, the CPU ops, the INT8 rewrites and the time."""
    entry: dict = {"error": None}
    if QCPU:
        int8flow.reset_stats()
        int8_before = fused_int8()
    start = time.perf_counter()
    try:
        # String tensors come as object arrays: store them as fixed-width bytes.
        outputs = [a.astype(bytes) if a.dtype == object else a for a in map(np.asarray, call())]
        np.savez(folder / f"{path.replace(' ', '_')}.npz", *outputs)
    except Exception as e:  # noqa: BLE001  per-path errors are the data
        entry["error"] = describe(e)
        traceback.print_exc()
    entry["seconds"] = round(time.perf_counter() - start, 2)
    if QCPU:
        stats = int8flow.stats()
        entry.update(cpu_ops=stats["cpu_ops"], int8_rewrites=fused_int8() - int8_before,
                     pass_errors=stats["pass_errors"],
                     int8_ms=round(sum(o["int8_ms"] for o in stats["ops"].values()), 3))
    record["paths"][path] = entry


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def signature_outputs(loaded, calls: list[dict]) -> list[np.ndarray]:
    fn = loaded.signatures["serving_default"]
    outputs = []
    for inputs in calls:
        result = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        outputs += [result[k].numpy() for k in sorted(result)]
    return outputs


def run_keras(name: str, build, record: dict, folder: Path, is_float: bool) -> None:
    keras.utils.set_random_seed(0)
    model, inputs = build()
    record["weights"] = digest(model.get_weights())
    phases = [""] + (["int8 "] if QCPU and is_float else [])
    for prefix in phases:
        if prefix:
            int8flow.enable_int8("dynamic")
            model.predict_function = None  # trace predict's step anew
        try:
            run_path(record, folder, prefix + "function", lambda: [tf.function(model)(*inputs)])
            run_path(record, folder, prefix + "predict", lambda: [model.predict(*inputs, verbose=0)])
        finally:
            if prefix:
                int8flow.enable_int8("off")


def run_module(name: str, record: dict, folder: Path, is_float: bool) -> None:
    make, calls = MODULES[name]
    saved = OUT / "saved" / name.replace(" ", "_")
    if not QCPU:
        module = make()
        tf.saved_model.save(module, str(saved), signatures=module.__call__.get_concrete_function())
        record["weights"] = digest(v.numpy() for v in module.variables)
        run_path(record, folder, "saved", lambda: signature_outputs(tf.saved_model.load(str(saved)), calls))
        return
    module = make()
    record["weights"] = digest(v.numpy() for v in module.variables)
    run_path(record, folder, "saved", lambda: signature_outputs(tf.saved_model.load(str(saved)), calls))

    def export_here():
        here = OUT / "saved_qcpu" / name.replace(" ", "_")
        tf.saved_model.save(module, str(here), signatures=module.__call__.get_concrete_function())
        return signature_outputs(tf.saved_model.load(str(here)), calls)
    run_path(record, folder, "exported here", export_here)
    if is_float:
        int8flow.enable_int8("dynamic")
        try:
            run_path(record, folder, "int8 saved",
                     lambda: signature_outputs(tf.saved_model.load(str(saved)), calls))
        finally:
            int8flow.enable_int8("off")


def main() -> None:
    results = {}
    for name, (group, kind, is_float, build) in MODELS.items():
        if group != GROUP:
            continue
        folder = OUT / MODE / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        record: dict = {"paths": {}, "error": None}
        start = time.perf_counter()
        try:
            if kind == "keras":
                run_keras(name, build, record, folder, is_float)
            else:
                run_module(name, record, folder, is_float)
        except Exception as e:  # noqa: BLE001  a build error is recorded, the next model runs
            record["error"] = describe(e)
            traceback.print_exc()
        record["seconds"] = round(time.perf_counter() - start, 2)
        results[name] = record
        print(f"corpus: {MODE} {name}: {record['seconds']} s", file=sys.stderr, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
