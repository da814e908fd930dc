"""`quantize`: static INT8 of a Keras model or a SavedModel (docs/int8.md).

The model's graph runs in FP32 over the calibration data, once, to learn
each quantized layer's input range; the ranges go into the graph as QDQ ops
(qdq.py); the debugger measures each layer's error; the guard keeps the most
sensitive layers FP32 while the loss is over budget; the result is frozen.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from int8flow.quantization import accuracy, memory
from int8flow.quantization.accuracy import METRICS, Metric, OutputLoss
from int8flow.quantization.data import CalibrationData
from int8flow.quantization.graph import GraphView, Target, freeze, graph_function, prune
from int8flow.quantization.model import LayerReport, QuantizedModel
from int8flow.quantization.progress import Progress
from int8flow.quantization.qdq import QdqWriter, Range
from int8flow.quantization.ranges import METHODS, Method, RangeObserver
from int8flow.quantization.source import ModelSource, load_source

logger = logging.getLogger("int8flow")


def quantize(model: Any, calibration_data: Any, method: Method = "minmax", *,
             signature_key: str = "serving_default", subset_size: int | None = None, batch_size: int = 32,
             percentile: float = 99.99, ignored_scope: Sequence[str] = (), accuracy_budget: float | None = None,
             metric: Metric = "top1", metric_output: str | None = None, keep_ends: bool = False,
             verbose: bool = True) -> QuantizedModel:
    """Static INT8 of `model`: a Keras model (any inputs and outputs) or the
    path of a SavedModel directory (its `signature_key` signature).

    `calibration_data`: an array, a list or dict of arrays, a `tf.data.Dataset`,
    an iterable of batches or a callable returning one (TFLite's
    `representative_dataset`); read in batches of `batch_size`, `subset_size`
    samples at most. `method`: how each input range is chosen: `minmax`,
    `percentile` (of the values, `percentile` and 100 - `percentile`) or `kl`
    (TensorRT's entropy calibration); a layer whose own error the last two's
    clipping makes larger than minmax's takes minmax (`report`'s `range_method`). `ignored_scope`: node or layer names
    that stay FP32. `accuracy_budget`: the largest loss allowed against FP32
    on the calibration data, in `metric` (`top1`: 1 - top-1 agreement;
    `cosine`: 1 - mean cosine) of output `metric_output` (None: the mean over
    all outputs); over budget, layers go back to FP32 most sensitive first.
    `keep_ends`: the first and last quantizable layers stay FP32. `verbose`:
    progress bars on stderr and the report through the "int8flow" logger.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not 50 < percentile <= 100:
        raise ValueError(f"percentile must be in (50, 100], got {percentile!r}")
    if accuracy_budget is not None and not 0 <= accuracy_budget <= 1:
        raise ValueError(f"accuracy_budget must be in [0, 1], got {accuracy_budget!r}")
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    source = load_source(model, signature_key, _first_element(model, calibration_data))
    if metric_output is not None and metric_output not in source.signature.output_keys:
        raise ValueError(f"metric_output {metric_output!r} is not an output of the model "
                         f"(it has {', '.join(source.signature.output_keys)})")
    data = CalibrationData(calibration_data, source.signature, batch_size, subset_size)
    view = GraphView(source)
    targets, embeddings = view.targets(), view.embeddings()
    if not targets and not embeddings:
        raise ValueError("the model has no MatMul or convolution with constant weights: nothing to quantize")
    ignored = _ignored(ignored_scope, [t.name for t in targets] + [n.name for n in embeddings])
    observers = _calibrate(source, targets, data, method, verbose)
    memory.release()
    writer = QdqWriter(view)
    ranges, report = _choose_ranges(source, writer, targets, observers, method, percentile, data, verbose)
    int8_embeddings = [n for n in embeddings if n.name not in ignored]
    for n in embeddings:  # int8 whatever the budget: weights only, listed last
        limit = float(abs(writer.limit_of(n.input[0], None)))
        report.append(LayerReport(n.name, n.op, (-limit, limit), n.name not in ignored,
                                  reason="ignored_scope" if n.name in ignored else "embedding table"))

    losses_with = _QdqLosses(source, writer, targets, ranges, int8_embeddings, data, metric)

    kept: set[int] = {i for i, t in enumerate(targets) if t.name in ignored}
    for i in kept:
        report[i].int8, report[i].reason = False, "ignored_scope"
    if keep_ends:
        for i in {0, len(targets) - 1} - kept if targets else set():
            kept.add(i)
            report[i].int8, report[i].reason = False, "keep_ends"
    losses = losses_with(kept)
    loss = accuracy.combined(losses, metric_output)
    if accuracy_budget is not None and loss > accuracy_budget:
        candidates = [i for i in range(len(targets)) if i not in kept]
        everything = set(range(len(targets)))
        alone: dict[int, float] = {}
        progress = Progress("measuring each layer's sensitivity", len(candidates), verbose)
        for i in candidates:
            alone[i] = report[i].error_alone = accuracy.combined(losses_with(everything - {i}), metric_output)
            progress.step()
        progress.close()
        for i in sorted(candidates, key=lambda i: -alone[i]):
            if loss <= accuracy_budget:
                break
            kept.add(i)
            report[i].int8, report[i].reason = False, f"most sensitive ({alone[i]:.4f} alone)"
            losses = losses_with(kept)
            loss = accuracy.combined(losses, metric_output)
    final = losses_with.graph(kept)
    del losses_with
    frozen = freeze(source, final, writer.captures)
    del final, writer, view
    result = QuantizedModel(frozen, report, losses, loss, metric, metric_output)
    memory.release()  # the calibration graphs are unreachable now
    if verbose:
        logger.info("int8flow.quantize:\n%s", result.table())
    return result


class _QdqLosses:
    """Each output's loss against FP32 on the data, in `metric`, of the QDQ
    graph whose targets but those `kept` are INT8: the guard's measure."""

    def __init__(self, source: ModelSource, writer: QdqWriter, targets: list[Target], ranges: list[Range],
                 embeddings: list[Any], data: CalibrationData, metric: Metric) -> None:
        self.source, self.writer, self.targets, self.ranges = source, writer, targets, ranges
        self.embeddings, self.data, self.metric = embeddings, data, metric
        self.reference = graph_function(source, source.graph_def, source.output_tensors)

    def graph(self, kept: Iterable[int]) -> Any:
        """The QDQ graph, pruned: the float weights that int8 ones replaced would ride along."""
        kept = set(kept)
        qdq = self.writer.quantized(self.targets, [None if i in kept else r for i, r in enumerate(self.ranges)],
                                    self.embeddings)
        return prune(qdq, self.source.output_tensors)

    def __call__(self, kept: Iterable[int]) -> dict[str, float]:
        source = self.source
        run = graph_function(source, self.graph(kept), source.output_tensors, captures=self.writer.captures)
        losses = [OutputLoss(self.metric) for _ in source.output_tensors]
        for batch in self.data:
            for loss, a, b in zip(losses, self.reference(*batch), run(*batch)):
                loss.update(a.numpy(), b.numpy())
        del run
        memory.release()  # each graph run holds its own copies of the packed weights
        return dict(zip(source.signature.output_keys, (loss.value for loss in losses)))


def _first_element(model: Any, calibration_data: Any) -> Any:
    """The calibration data's first element when it alone can say the model's
    inputs (a subclassed Keras model, never called on Keras inputs)."""
    if isinstance(model, str) or getattr(model, "inputs", None):
        return None
    if isinstance(calibration_data, dict) or hasattr(calibration_data, "shape"):
        return calibration_data
    if isinstance(calibration_data, (list, tuple)) and all(hasattr(x, "shape") for x in calibration_data):
        return list(calibration_data)
    raise ValueError("a subclassed Keras model takes its input structure from in-memory calibration data "
                     "(an array, or a list or dict of arrays); call it once on keras.Input tensors "
                     "to use a dataset or a generator")


def _ignored(scope: Sequence[str], names: list[str]) -> set[str]:
    """The node names that `scope` (node names, or layer names: a component of
    a node's path, possibly with TF's _N suffix) holds; a ValueError for an
    entry that names nothing, as a typo would."""
    if isinstance(scope, str):
        raise ValueError("ignored_scope takes a list of names, got a string")
    found = set()
    for entry in scope:
        pattern = re.compile(rf"(^|/){re.escape(entry)}(_\d+)?(/|$)")
        matched = {n for n in names if n == entry or pattern.search(n)}
        if not matched:
            layers = sorted({n.rsplit("/", 1)[0] for n in names})
            raise ValueError(f"ignored_scope: {entry!r} names no quantizable node or layer; they are in "
                             f"{', '.join(layers[:20])}{' ...' if len(layers) > 20 else ''}")
        found |= matched
    return found


def _calibrate(source: ModelSource, targets: list[Target], data: CalibrationData, method: Method,
               verbose: bool) -> list[RangeObserver]:
    """One FP32 pass over the data, every target's input observed."""
    fetched = sorted({t.input for t in targets})
    run = graph_function(source, source.graph_def, fetched)
    observers = {name: RangeObserver(method) for name in fetched}
    progress = Progress("calibrating", None, verbose)
    for batch in data:
        for name, value in zip(fetched, run(*batch)):
            observers[name].update(value.numpy())
        progress.step(len(batch[0]))
    progress.close()
    del run
    return [observers[t.input] for t in targets]


def _choose_ranges(source: ModelSource, writer: QdqWriter, targets: list[Target], observers: list[RangeObserver],
                   method: Method, percentile: float, data: CalibrationData,
                   verbose: bool) -> tuple[list[Range], list[LayerReport]]:
    """Each target's range by `method`, and its report with the debugger's
    error. A clipping method's range is kept only where it does not make the
    layer's own error larger than minmax's: KL clipped the input of a trained
    mini-Xception's first pointwise conv to [-0.53, 0.53] of [-3.3, 1.8], a
    56% error there, and 40 points of its top-1 agreement."""
    range_sets = [[o.choose(percentile) for o in observers]]
    if method != "minmax":
        range_sets.append([o.minmax() for o in observers])
    errors = _layer_errors(source, writer, targets, range_sets, data, verbose)
    best = [min(range(len(range_sets)), key=lambda k: errors[k][i]) for i in range(len(targets))]
    ranges = [range_sets[k][i] for i, k in enumerate(best)]
    report = [LayerReport(t.name, t.op, r, range_method="minmax" if k else method, error=errors[k][i])
              for i, (t, r, k) in enumerate(zip(targets, ranges, best))]
    return ranges, report


def _layer_errors(source: ModelSource, writer: QdqWriter, targets: list[Target], range_sets: list[list[Range]],
                  data: CalibrationData, verbose: bool) -> list[list[float]]:
    """The debugger: each target's relative RMSE when only it is quantized,
    with each set of ranges, in one pass of the FP32 graph with every target's
    quantized twins beside it."""
    import tensorflow as tf

    if not targets:
        return [[] for _ in range_sets]
    graph_def, twins = writer.debug(targets, range_sets)
    originals = [f"{t.name}:0" for t in targets]
    n = len(targets)

    def sums(results: list[Any]) -> list[Any]:
        fp32 = results[:n]
        return [tf.reduce_sum(tf.square(b - a)) for k in range(len(range_sets))
                for a, b in zip(fp32, results[n * (k + 1):n * (k + 2)])] + [tf.reduce_sum(tf.square(a)) for a in fp32]

    run = graph_function(source, graph_def, originals + [t for ts in twins for t in ts], sums,
                         captures=writer.captures)
    errors = [accuracy.LayerErrors(n) for _ in range_sets]
    progress = Progress("measuring each layer's error", None, verbose)
    for batch in data:
        s = [float(v) for v in run(*batch)]
        for k, e in enumerate(errors):
            e.update(s[n * k:n * (k + 1)] + s[-n:])
        progress.step(len(batch[0]))
    progress.close()
    del run
    memory.release()
    return [e.values() for e in errors]
