"""Ray with int8flow: `Predictor`, a callable class for Ray Data's
`Dataset.map_batches`.

    import int8flow.ray, ray.data
    predictions = ds.map_batches(int8flow.ray.Predictor, fn_constructor_kwargs={"saved_model_dir": path},
                                 compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1,
                                 batch_size=64, batch_format="numpy")

Each actor loads the SavedModel (FP32, or `int8flow.quantize`'s output) once
and runs it on QCPU. Ray gives an actor `OMP_NUM_THREADS` equal to its
`num_cpus`, which int8flow's thread rule takes (docs/serving.md): `num_cpus`
is how many cores each actor uses.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from int8flow.saved_model_runner import SavedModelRunner


class Predictor:
    """Adds the model's predictions to each numpy batch: `output_column` for a
    one-output model, else a column per output (`output_names`, all by
    default). `input_columns`: the batch's columns fed to the signature's
    inputs, in the order of `input_names` (needed when it has several);
    by default the batch's only column. A missing column is a ValueError."""

    def __init__(self, saved_model_dir: str | os.PathLike[str], *, signature_key: str = "serving_default",
                 input_columns: Sequence[str] | None = None, input_names: Sequence[str] | None = None,
                 output_column: str = "predictions", output_names: Sequence[str] | None = None) -> None:
        self._runner = SavedModelRunner(os.fspath(saved_model_dir), signature_key, input_names, output_names)
        self._columns = list(input_columns) if input_columns else None
        self._output_column = output_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = self._columns or list(batch)
        missing = [c for c in columns if c not in batch]
        if missing or len(columns) != len(self._runner.inputs):
            raise ValueError(f"the model's inputs {self._runner.inputs} need {len(self._runner.inputs)} of the "
                             f"batch's columns {list(batch)}: name them with input_columns (missing: {missing})")
        result = self._runner(*(batch[c] for c in columns))
        return {**batch, **(result if isinstance(result, dict) else {self._output_column: result})}
