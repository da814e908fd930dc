"""The benchmark models, built from Keras 3 with random weights and fixed-seed inputs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras  # annotations only: importing keras imports TensorFlow

SEQUENCE_LENGTH = 128
VOCABULARY = 30522  # BERT-base's


@dataclass(frozen=True)
class ModelSpec:
    """How to build one benchmark model and its inputs."""

    name: str
    build: Callable[[], keras.Model]
    make_inputs: Callable[[int, int], np.ndarray]  # (batch, seed) -> inputs
    classifier: bool  # outputs are class scores, so top-1 agreement means something


def _images(size: int) -> Callable[[int, int], np.ndarray]:
    def make(batch: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    return make


def _token_ids(batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCABULARY, (batch, SEQUENCE_LENGTH), dtype="int32")


def _features(batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 784)).astype("float32")


def _application(name: str) -> Callable[[], keras.Model]:
    def build() -> keras.Model:
        import keras

        keras.utils.set_random_seed(0)
        # Logits, not softmax: with random weights a 1000-way softmax is ~0.001
        # everywhere, below int8's resolution, and would hide every peer's error.
        return getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3),
                                                 classifier_activation=None)
    return build


def bert_encoder(layers: int, hidden: int = 768, heads: int = 12, intermediate: int = 3072) -> keras.Model:
    """A BERT-base-style encoder from stock Keras layers: post-LN blocks of
    MultiHeadAttention and a gelu feed-forward, then a pooled 2-class head."""
    import keras

    keras.utils.set_random_seed(0)
    ids = keras.Input((SEQUENCE_LENGTH,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(VOCABULARY, hidden)(ids)
    positions = keras.layers.Embedding(SEQUENCE_LENGTH, hidden)(np.arange(SEQUENCE_LENGTH)[None])
    x = keras.layers.LayerNormalization(epsilon=1e-12)(x + positions)
    for _ in range(layers):
        attention = keras.layers.MultiHeadAttention(heads, hidden // heads)(x, x)
        x = keras.layers.LayerNormalization(epsilon=1e-12)(x + attention)
        h = keras.layers.Dense(intermediate, activation="gelu")(x)
        x = keras.layers.LayerNormalization(epsilon=1e-12)(x + keras.layers.Dense(hidden)(h))
    pooled = keras.layers.Dense(hidden, activation="tanh")(x[:, 0])
    return keras.Model(ids, keras.layers.Dense(2)(pooled), name=f"bert_{layers}")


def mlp() -> keras.Model:
    """A plain MLP on 784 features: 3 hidden gelu/relu layers, 10 classes."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(1024, activation="gelu"),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(10),
    ], name="mlp")


def small_cnn() -> keras.Model:
    """A small image classifier on 32x32x3 with one of each layer the pass fuses:
    conv + batch norm + relu, depthwise conv + relu6, a residual add, pooling,
    a gelu dense layer and layer norm; fast enough for thousands of calls."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Add()([x, keras.layers.Conv2D(16, 1)(y)])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.LayerNormalization()(keras.layers.Dense(64, activation="gelu")(x))
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="cnn")


def unet() -> keras.Model:
    """A U-Net for 128x128 segmentation into 4 classes: conv blocks down by
    max pooling, Conv2DTranspose up (Conv2DBackpropInput + bias + relu), a skip
    concatenated at each scale, per-pixel logits out."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((128, 128, 3))
    x, skips = inputs, []
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(256, 3, padding="same", activation="relu")(x)
    for filters, skip in zip((128, 64, 32), reversed(skips)):
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, activation="relu")(x)
        x = keras.layers.Concatenate()([x, skip])
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(4, 1)(x), name="unet")


MODELS: dict[str, ModelSpec] = {
    "resnet50": ModelSpec("resnet50", _application("ResNet50"), _images(224), True),
    "mobilenetv2": ModelSpec("mobilenetv2", _application("MobileNetV2"), _images(224), True),
    "efficientnetb0": ModelSpec("efficientnetb0", _application("EfficientNetB0"), _images(224), True),
    "bert": ModelSpec("bert", lambda: bert_encoder(4), _token_ids, True),
    "bert12": ModelSpec("bert12", lambda: bert_encoder(12), _token_ids, True),
    "mlp": ModelSpec("mlp", mlp, _features, True),
    "cnn": ModelSpec("cnn", small_cnn, _images(32), True),
    "unet": ModelSpec("unet", unet, _images(128), False),
}
