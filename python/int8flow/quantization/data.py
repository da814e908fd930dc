"""Calibration data in the forms of the ecosystem, read as a stream of batches.

Taken: a numpy array (one input); a list, tuple or dict of arrays (one per
input, by position or name); a `tf.data.Dataset`, any iterable, or a callable
returning an iterator (TFLite's `representative_dataset`), whose elements are
batches or single samples in the model's input structure, or Keras' `(x, y)`
or `(x, y, sample_weight)` tuples. Each pass reads the data again, so nothing
is held but the batch at hand, except for a one-shot iterator (a generator
object): its batches are kept for the passes after the first.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from int8flow.quantization.source import Signature


class CalibrationData:
    """Batches of at most `batch_size` samples, each a list with one array per
    flat input of `signature`, checked against it; `subset_size` samples at most."""

    def __init__(self, data: Any, signature: Signature, batch_size: int, subset_size: int | None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if subset_size is not None and subset_size < 1:
            raise ValueError(f"subset_size must be at least 1, got {subset_size}")
        self._signature, self._batch_size, self._subset_size = signature, batch_size, subset_size
        self._kept: list[list[np.ndarray]] | None = None  # a one-shot iterator's batches
        inputs = len(signature.input_names)
        if isinstance(data, (list, tuple)) and inputs > 1 and len(data) != inputs and \
                all(hasattr(x, "shape") for x in data):  # arrays, but not one per input
            raise ValueError(f"calibration_data gives {len(data)} arrays; the model takes {inputs} inputs: "
                             f"{signature.describe_inputs()}")
        if _is_arrays(data, signature):
            self._elements: Any = lambda: iter([data])
        elif callable(data) and not hasattr(data, "element_spec"):
            self._elements = data
        elif isinstance(data, Iterator):
            self._elements, self._kept = (lambda: data), []
            self._stream = self._limited(self._batches())
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
            self._elements = lambda: iter(data)
        else:
            raise ValueError(f"calibration_data must be an array, a list or dict of arrays, a tf.data.Dataset "
                             f"or an iterable of batches; got {type(data).__name__}")

    def first(self) -> Any:
        """The first batch in the structure it came in (a subclassed model's input structure)."""
        return self._signature.pack_inputs(next(iter(self)))

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        if self._kept is None:
            yield from self._limited(self._batches())
            return
        yield from self._kept
        for batch in self._stream:  # what earlier passes did not read yet
            self._kept.append(batch)
            yield batch

    def _limited(self, batches: Iterator[list[np.ndarray]]) -> Iterator[list[np.ndarray]]:
        seen = 0
        for batch in batches:
            if self._subset_size is not None:
                batch = [x[:self._subset_size - seen] for x in batch]
            seen += len(batch[0])
            yield batch
            if self._subset_size is not None and seen >= self._subset_size:
                return
        if seen == 0:
            raise ValueError("calibration_data is empty: give at least one sample")

    def _batches(self) -> Iterator[list[np.ndarray]]:
        """Elements cut or joined into batches of `batch_size`; joined only
        while their sample shapes agree (a sequence model's may not)."""
        size = self._batch_size
        pending: list[list[np.ndarray]] = []
        for element in self._elements():
            arrays = self._arrays(element)
            if pending and any(a.shape[1:] != p.shape[1:] for a, p in zip(arrays, pending[0])):
                yield from _cut(_joined(pending), size)
                pending = []
            pending.append(arrays)
            joined = _joined(pending)
            full = len(joined[0]) // size * size
            yield from _cut([x[:full] for x in joined], size)
            pending = [[x[full:] for x in joined]] if full < len(joined[0]) else []
        if pending:
            yield from _cut(_joined(pending), size)

    def _arrays(self, element: Any) -> list[np.ndarray]:
        """`element` as one checked array per flat input, with a batch axis."""
        signature = self._signature
        element = _features(element, signature)
        if isinstance(element, dict):
            unknown = sorted(set(element) - set(signature.input_names))
            missing = [n for n in signature.input_names if n not in element]
            if unknown or missing:
                raise ValueError(f"calibration_data has inputs {sorted(element)}; the model takes "
                                 f"{list(signature.input_names)}" + (f" (no input {unknown[0]!r})" if unknown else ""))
            flat = [element[n] for n in signature.input_names]
        elif isinstance(element, (list, tuple)):
            if len(element) != len(signature.input_names):
                raise ValueError(f"calibration_data gives {len(element)} arrays per element; the model takes "
                                 f"{len(signature.input_names)} inputs: {signature.describe_inputs()}")
            flat = list(element)
        elif len(signature.input_names) == 1:
            flat = [element]
        else:
            raise ValueError(f"the model takes {len(signature.input_names)} inputs "
                             f"({signature.describe_inputs()}): give a list or a dict of arrays")
        return [_checked(x, name, spec) for x, name, spec in zip(flat, signature.input_names, signature.input_specs)]


def _joined(pending: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [np.concatenate(column) if len(column) > 1 else column[0] for column in zip(*pending)]


def _cut(arrays: list[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    for i in range(0, len(arrays[0]), size):
        yield [x[i:i + size] for x in arrays]


def _is_arrays(data: Any, signature: Signature) -> bool:
    """Whether `data` is in-memory arrays in the input structure (cut into
    batches here), rather than a stream of elements."""
    if isinstance(data, dict):
        return True
    if isinstance(data, (list, tuple)) and len(data) == len(signature.input_names) and \
            all(hasattr(x, "shape") and hasattr(x, "dtype") for x in data):
        return len(data) > 1 or np.ndim(data[0]) == len(signature.input_specs[0].shape)
    return hasattr(data, "shape") and hasattr(data, "dtype") and not hasattr(data, "element_spec")


def _features(element: Any, signature: Signature) -> Any:
    """The model's inputs of a Keras-style `(x, y)` or `(x, y, sample_weight)` element."""
    if isinstance(element, tuple) and len(element) in (2, 3) and len(element) != len(signature.input_names):
        return element[0]
    return element


def _checked(x: Any, name: str, spec: Any) -> np.ndarray:
    """`x` as an array of the input's dtype with a batch axis, or a ValueError
    that names the input and what it takes."""
    import tensorflow as tf

    want = f"the model's input '{name}' takes {spec.dtype.name} {tuple(spec.shape)}"
    array = x.numpy() if isinstance(x, tf.Tensor) else np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"calibration_data['{name}'] must be numeric, got dtype {array.dtype}; {want}")
    if array.ndim == len(spec.shape) - 1:  # a single sample
        array = array[None]
    if array.ndim != len(spec.shape) or any(
            want_dim is not None and got != want_dim for got, want_dim in zip(array.shape[1:], spec.shape[1:])):
        raise ValueError(f"calibration_data['{name}'] has samples of shape {array.shape[1:]}; {want}")
    if len(array) == 0:
        raise ValueError(f"calibration_data['{name}'] is empty: give at least one sample")
    if spec.dtype.is_floating and not np.all(np.isfinite(array)):
        raise ValueError(f"calibration_data['{name}'] holds NaN or Inf: ranges learned from it would be meaningless")
    if spec.dtype.is_integer and np.issubdtype(array.dtype, np.floating) and not np.all(array == np.round(array)):
        raise ValueError(f"calibration_data['{name}'] holds fractions; {want}")
    return array.astype(spec.dtype.as_numpy_dtype, copy=False)
