"""Spark batch inference with int8flow: `make_predict_fn` for
`pyspark.ml.functions.predict_batch_udf`.

    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import ArrayType, FloatType
    predict = predict_batch_udf(int8flow.spark.make_predict_fn("saved_model_int8"),
                                return_type=ArrayType(FloatType()), batch_size=64,
                                input_tensor_shapes=[[30]])
    scored = df.withColumn("prediction", predict("features"))

Spark calls the returned function once per Python worker and caches what it
returns, so each worker loads the SavedModel (FP32, or `int8flow.quantize`'s
output) once and runs it on QCPU. Its threads are bounded by `spark.task.cpus`:
PySpark gives each Python worker `OMP_NUM_THREADS=spark.task.cpus`, which
int8flow's thread rule takes (docs/serving.md), and TF's own pool gets the same
count here. Java and Spark's own settings are the caller's.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PredictFn = Callable[..., Any]


def make_predict_fn(saved_model_dir: str | os.PathLike[str], *, signature_key: str = "serving_default",
                    input_names: Sequence[str] | None = None,
                    output_names: Sequence[str] | None = None) -> Callable[[], PredictFn]:
    """A `make_predict_fn` for `predict_batch_udf`: it loads the SavedModel's
    `signature_key` signature and returns `predict(*columns)`, which takes the
    UDF's columns as numpy batches in the order of `input_names` (needed when the
    signature has several inputs) and returns the output as an array, or a dict
    of arrays when there are several `output_names` (a StructType return type).
    A column count or name that does not fit the signature is a ValueError."""
    path = os.fspath(saved_model_dir)
    return lambda: _Predictor(path, signature_key, input_names, output_names)


class _Predictor:
    """One worker's loaded model: `predict(*columns)` (make_predict_fn)."""

    def __init__(self, path: str, signature_key: str, input_names: Sequence[str] | None,
                 output_names: Sequence[str] | None) -> None:
        import tensorflow as tf

        import int8flow

        _bound_tf_threads(tf, int8flow.cpu_features()["threads"])
        self._tf = tf
        self._model = tf.saved_model.load(path)  # held: its signatures' variables live with it
        if signature_key not in self._model.signatures:
            raise ValueError(f"{path} has no signature {signature_key!r}; it has {sorted(self._model.signatures)}")
        self._signature = self._model.signatures[signature_key]
        self._specs = self._signature.structured_input_signature[1]
        self._inputs = _pick(list(input_names) if input_names else None, sorted(self._specs), "input")
        self._outputs = _pick(list(output_names) if output_names else None,
                              sorted(self._signature.structured_outputs), "output", several=True)

    def __call__(self, *columns: np.ndarray) -> Any:
        if len(columns) != len(self._inputs):
            raise ValueError(f"the model takes {len(self._inputs)} columns ({self._inputs}), got {len(columns)}")
        tf = self._tf
        result = self._signature(**{n: tf.constant(c, self._specs[n].dtype) for n, c in zip(self._inputs, columns)})
        arrays = {n: result[n].numpy() for n in self._outputs}
        return arrays[self._outputs[0]] if len(self._outputs) == 1 else arrays


def _pick(asked: list[str] | None, available: list[str], kind: str, several: bool = False) -> list[str]:
    if asked is None:
        if len(available) > 1 and not several:
            raise ValueError(f"the signature has {kind}s {available}: name them, in the UDF's column order, "
                             f"with {kind}_names")
        return available
    unknown = [n for n in asked if n not in available]
    if unknown:
        raise ValueError(f"no {kind} {unknown} in the signature; its {kind}s are {available}")
    return asked


def _bound_tf_threads(tf: Any, threads: int) -> None:
    # TF's own pools, for the ops that stay on its CPU; once TF has started
    # they are fixed, and TF_NUM_INTRAOP_THREADS / OMP_NUM_THREADS already ruled.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
