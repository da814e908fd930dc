"""Activation ranges from one streamed pass over the calibration data.

Each quantized layer's input has a RangeObserver: its min and max and, for
`percentile` and `kl`, a histogram whose span doubles (bins merged in pairs,
so no count moves between bins) whenever a batch reaches past it. One pass
is enough, so a generator is read once and nothing is kept.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

Method = Literal["minmax", "percentile", "kl"]
METHODS: tuple[Method, ...] = ("minmax", "percentile", "kl")
HISTOGRAM_BINS = 2048


class RangeObserver:
    """What the FP32 run saw at one layer's input. The histogram spans
    [-top, top] (`percentile`) or, of |x| without exact zeros, [0, top] (`kl`)."""

    def __init__(self, method: Method) -> None:
        self.method = method
        self.low, self.high, self.top = math.inf, -math.inf, 0.0
        self.histogram = np.zeros(HISTOGRAM_BINS)

    def update(self, values: np.ndarray) -> None:
        v = values.ravel()
        if not np.all(np.isfinite(v)):
            raise ValueError("the FP32 model produced NaN or Inf on the calibration data")
        self.low, self.high = min(self.low, float(v.min())), max(self.high, float(v.max()))
        if self.method == "minmax":
            return
        self._span(max(-self.low, self.high))
        if self.top == 0:
            return  # only zeros so far
        if self.method == "percentile":
            self.histogram += np.histogram(v, HISTOGRAM_BINS, (-self.top, self.top))[0]
        else:
            # Exact zeros (most of a ReLU's output) quantize exactly at any
            # threshold: counted, they pull KL towards clipping.
            self.histogram += np.histogram(np.abs(v[v != 0]), HISTOGRAM_BINS, (0, self.top))[0]

    def _span(self, top: float) -> None:
        """Widen the histogram to reach `top`, by a power of two."""
        if top <= self.top:
            return
        if self.top == 0:
            self.top = top
            return
        factor = 2 ** math.ceil(math.log2(top / self.top))
        low = -self.top if self.method == "percentile" else 0.0
        width = (self.top - low) / HISTOGRAM_BINS
        self.top *= factor
        new_low = -self.top if self.method == "percentile" else 0.0
        new_width = (self.top - new_low) / HISTOGRAM_BINS
        # Each old bin lies inside one new bin: the power of two aligns their edges.
        left_edges = low + width * np.arange(HISTOGRAM_BINS)
        index = np.minimum(((left_edges - new_low) / new_width + 1e-9).astype(int), HISTOGRAM_BINS - 1)
        histogram = np.zeros(HISTOGRAM_BINS)
        np.add.at(histogram, index, self.histogram)
        self.histogram = histogram

    def minmax(self) -> tuple[float, float]:
        """Everything the data reached, and 0 (so that 0.0 is exact)."""
        lo, hi = min(self.low, 0.0), max(self.high, 0.0)
        return (lo, hi) if hi > lo else (lo, lo + 1e-6)

    def choose(self, percentile: float) -> tuple[float, float]:
        """The range to quantize over, by the method; it always holds 0, so that 0.0 is exact."""
        lo, hi = self.minmax()
        total = self.histogram.sum()
        if self.method == "percentile" and total > 0:
            edges = np.linspace(-self.top, self.top, HISTOGRAM_BINS + 1)
            cdf = np.cumsum(self.histogram) / total
            lo = max(lo, min(float(edges[np.searchsorted(cdf, 1 - percentile / 100)]), 0.0))
            hi = min(hi, max(float(edges[min(np.searchsorted(cdf, percentile / 100) + 1, HISTOGRAM_BINS)]), 0.0))
        elif self.method == "kl" and total > 0:
            t = kl_threshold(self.histogram, self.top, 255 if lo >= 0 else 127)
            lo, hi = max(lo, -t), min(hi, t)
        if hi <= lo:
            hi = lo + 1e-6
        return lo, hi


def kl_threshold(magnitudes: np.ndarray, top: float, levels: int) -> float:
    """TensorRT's entropy calibration: the clip threshold whose `levels`-level
    quantization of the |x| histogram (over [0, top]) loses the least information (KL)."""
    bins = len(magnitudes)
    used_bins = int(np.nonzero(magnitudes)[0].max()) + 1  # the histogram may span past the data
    best, best_kl = used_bins, np.inf
    for cut in range(min(levels, used_bins), used_bins + 1, max(1, used_bins // 256)):
        p = magnitudes[:cut].astype(np.float64).copy()
        p[-1] += magnitudes[cut:].sum()  # clipped values pile up at the edge
        groups = np.array_split(np.arange(cut), min(levels, cut))
        q = np.zeros(cut)
        for g in groups:
            used = magnitudes[g] > 0
            if used.any():
                q[g[used]] = magnitudes[g].sum() / used.sum()
        p, q = p / p.sum(), q / max(q.sum(), 1e-30)
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))
        if kl < best_kl:
            best, best_kl = cut, kl
    return top * best / bins
