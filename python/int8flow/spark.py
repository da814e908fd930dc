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

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from int8flow.saved_model_runner import SavedModelRunner


def make_predict_fn(saved_model_dir: str | os.PathLike[str], *, signature_key: str = "serving_default",
                    input_names: Sequence[str] | None = None,
                    output_names: Sequence[str] | None = None) -> Callable[[], Callable[..., Any]]:
    """A `make_predict_fn` for `predict_batch_udf`: it loads the SavedModel's
    `signature_key` signature and returns `predict(*columns)`, which takes the
    UDF's columns as numpy batches in the order of `input_names` (needed when the
    signature has several inputs) and returns the output as an array, or a dict
    of arrays when there are several `output_names` (a StructType return type).
    A column count or name that does not fit the signature is a ValueError."""
    path = os.fspath(saved_model_dir)

    def load() -> Callable[..., Any]:
        runner = SavedModelRunner(path, signature_key, input_names, output_names)

        def predict(*columns: np.ndarray) -> Any:
            return runner(*columns)

        # predict_batch_udf passes one array per column only to a function with
        # that many parameters (it counts them), so say one per input.
        predict.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(f"input_{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(runner.inputs))])
        return predict
    return load
