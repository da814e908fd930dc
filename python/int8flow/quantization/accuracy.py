"""How far INT8 is from FP32: the guard's per-output loss and the per-layer
debugger's error, both accumulated batch by batch."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Metric = Literal["top1", "cosine"]
METRICS: tuple[Metric, ...] = ("top1", "cosine")


def rows(x: np.ndarray) -> np.ndarray:
    """`x` as one float64 row per sample."""
    return x.reshape(len(x), -1).astype(np.float64)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine of each row of `a` with the same row of `b` (0 for a zero row)."""
    return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def agreement(reference: np.ndarray, got: np.ndarray) -> float:
    """The share of samples whose top-1 class (of the flattened row) is the reference's."""
    return float(np.mean(rows(reference).argmax(1) == rows(got).argmax(1)))


class OutputLoss:
    """1 - top-1 agreement, or 1 - mean cosine, of one output over the samples seen."""

    def __init__(self, metric: Metric) -> None:
        self.metric, self.total, self.samples = metric, 0.0, 0

    def update(self, reference: np.ndarray, got: np.ndarray) -> None:
        a, b = rows(reference), rows(got)
        if self.metric == "top1":
            self.total += float(np.sum(a.argmax(1) != b.argmax(1)))
        else:
            self.total += float(np.sum(1 - cosines(a, b)))
        self.samples += len(a)

    @property
    def value(self) -> float:
        return self.total / max(self.samples, 1)


def combined(losses: dict[str, float], output: str | None) -> float:
    """The loss the guard holds to: the chosen output's, or the mean over all."""
    return losses[output] if output is not None else float(np.mean(list(losses.values())))


class LayerErrors:
    """Each layer's relative RMSE against FP32 (||int8 - fp32|| / ||fp32||),
    from the sums of squares the debug graph computes per batch."""

    def __init__(self, layers: int) -> None:
        self.squared_error = np.zeros(layers)
        self.squared_reference = np.zeros(layers)

    def update(self, sums: Sequence[float]) -> None:
        half = len(sums) // 2
        self.squared_error += np.asarray(sums[:half], np.float64)
        self.squared_reference += np.asarray(sums[half:], np.float64)

    def values(self) -> list[float]:
        return [float(np.sqrt(e / r)) if r > 0 else 0.0
                for e, r in zip(self.squared_error, self.squared_reference)]
