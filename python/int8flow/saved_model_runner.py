"""One SavedModel signature, loaded once per worker process and called on numpy
batches: what Spark's predict function, Ray Data's predictor and the Ray Serve
replicas share."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SavedModelRunner:
    """A SavedModel's `signature_key` signature on QCPU: `runner(*inputs)` takes numpy
    arrays in the order of `inputs` and returns the one output's array, or a dict of
    `outputs`' arrays. Loading bounds TF's own pools to int8flow's thread count."""

    def __init__(self, path: str, signature_key: str, input_names: Sequence[str] | None,
                 output_names: Sequence[str] | None, named_inputs: bool = False) -> None:
        # named_inputs: the caller names each input (a serving request does), so
        # several inputs need no input_names; `inputs` gives their order.
        import tensorflow as tf

        import int8flow

        _bound_tf_threads(tf, int8flow.cpu_features()["threads"])
        self._tf = tf
        self._model = tf.saved_model.load(path)  # held: its signatures' variables live with it
        if signature_key not in self._model.signatures:
            raise ValueError(f"{path} has no signature {signature_key!r}; it has {sorted(self._model.signatures)}")
        self._signature = self._model.signatures[signature_key]
        self._specs = self._signature.structured_input_signature[1]
        self.inputs = _pick(list(input_names) if input_names else None, sorted(self._specs), "input",
                            several=named_inputs)
        self.outputs = _pick(list(output_names) if output_names else None,
                              sorted(self._signature.structured_outputs), "output", several=True)

    def __call__(self, *columns: np.ndarray) -> Any:
        if len(columns) != len(self.inputs):
            raise ValueError(f"the model takes {len(self.inputs)} inputs ({self.inputs}), got {len(columns)}")
        tf = self._tf
        result = self._signature(**{n: tf.constant(c, self._specs[n].dtype) for n, c in zip(self.inputs, columns)})
        arrays = {n: result[n].numpy() for n in self.outputs}
        return arrays[self.outputs[0]] if len(self.outputs) == 1 else arrays


def _pick(asked: list[str] | None, available: list[str], kind: str, several: bool = False) -> list[str]:
    if asked is None:
        if len(available) > 1 and not several:
            raise ValueError(f"the signature has {kind}s {available}: name them with {kind}_names, in the "
                             "order they are passed")
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
