"""Static INT8: calibrate a Keras model, save it as a portable QDQ graph.

`quantize(model, data)` freezes the model's inference graph, runs it in FP32
over the calibration data to learn each quantized layer's input range, and
writes those ranges into the graph in standard TF ops:
- activations: `FakeQuantWithMinMaxArgs` (u8 over [min, max], 0 exact);
- weights: an int8 `Const` -> `Dequantize` (SCALED, one scale per output
  channel).
Stock TensorFlow runs that graph in float, dequantizing as it goes. With
int8flow, the graph pass reads each FakeQuant's range and runs the layer on
the INT8 kernels (graph/int8_rewrite.h), passing int8 straight from one
quantized layer to the next where it can. MatMul, Conv2D, DepthwiseConv2dNative
(multiplier 1) and BatchMatMulV2 by a constant matrix (Keras' Dense on 3-D
inputs, EinsumDense) are quantized; other layers stay FP32.
"""
from __future__ import annotations

import collections
import ctypes
import gc
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

QUANTIZED_OPS = ("MatMul", "BatchMatMulV2", "Conv2D", "DepthwiseConv2dNative")
METHODS = ("minmax", "percentile", "kl")
METRICS = ("top1", "cosine")
HISTOGRAM_BINS = 2048
EMBEDDING_MIN_VALUES = 65536  # a smaller table is not worth an op per call


@dataclass
class LayerReport:
    """One quantizable layer: its input range, and whether it runs in INT8."""

    node: str
    op: str
    input_range: tuple[float, float]
    int8: bool = True
    error_alone: float | None = None  # the metric's loss with only this layer in INT8
    reason: str = "within budget"


@dataclass
class Calibration:
    """What the FP32 run saw at one layer's input."""

    low: float = np.inf
    high: float = -np.inf
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(HISTOGRAM_BINS))
    magnitudes: np.ndarray = field(default_factory=lambda: np.zeros(HISTOGRAM_BINS))


# ---- the frozen graph ------------------------------------------------------------

def _freeze(model: Any) -> tuple[Any, str, str, Any]:
    """The model's inference graph with its variables as constants; its input and
    output tensor names, and the input's TensorSpec (any batch size)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"quantize takes a model with one input and one output, got "
                         f"{len(model.inputs)} and {len(model.outputs)}")
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], model.inputs[0].dtype)
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda x: model(x, training=False)).get_concrete_function(spec))
    graph_def, input_name, output_name = frozen.graph.as_graph_def(), frozen.inputs[0].name, frozen.outputs[0].name
    del frozen
    release_memory()  # the frozen function's graph: one more copy of the weights
    return graph_def, input_name, output_name, spec


def _callable(graph_def: Any, input_name: str, outputs: Sequence[str], spec: Any) -> Any:
    """A tf.function running `graph_def` from `input_name`, fed `spec`, to the
    `outputs` tensors: a function like any other, so Grappler (and QCPU's
    pass) optimize it, and tf.saved_model.save saves it."""
    import tensorflow as tf

    @tf.function(input_signature=[spec])
    def run(x: Any) -> list[Any]:
        results = tf.graph_util.import_graph_def(graph_def, input_map={input_name: x},
                                                 return_elements=list(outputs), name="")
        # Handed back on the host, copied by the graph: an eager copy of a
        # QCPU result (.numpy()) costs a function call, 0.1 ms.
        with tf.device("/CPU:0"):
            return [tf.identity(t) for t in results]
    return run


def _producer(nodes: dict[str, Any], tensor: str) -> Any:
    """The node making `tensor`, looking through Identity."""
    node = nodes[tensor.lstrip("^").split(":")[0]]
    while node.op == "Identity":
        node = nodes[node.input[0].split(":")[0]]
    return node


def _constant(nodes: dict[str, Any], tensor: str) -> np.ndarray | None:
    """The value of `tensor` when it is a Const, possibly reshaped by a constant shape."""
    import tensorflow as tf

    node = _producer(nodes, tensor)
    if node.op == "Const":
        return tf.make_ndarray(node.attr["value"].tensor)
    if node.op == "Reshape":
        value, shape = _constant(nodes, node.input[0]), _constant(nodes, node.input[1])
        return None if value is None or shape is None else value.reshape(shape)
    return None


def _weights(nodes: dict[str, Any], tensor: str) -> np.ndarray:
    """The value of `tensor`, which `_targets` or `_embeddings` found to be constant."""
    value = _constant(nodes, tensor)
    assert value is not None, f"{tensor} is not a constant"
    return value


def _flag(node: Any, attr: str) -> bool:
    # Never node.attr[attr] for a missing attr: protobuf would insert an empty
    # AttrValue, which TF then refuses to run.
    return attr in node.attr and node.attr[attr].b


def _embeddings(graph_def: Any) -> list[Any]:
    """GatherV2 nodes reading a float constant table of at least
    EMBEDDING_MIN_VALUES values: embeddings, which `quantize` stores as int8
    with one scale (a transformer's largest weights)."""
    nodes = {n.name: n for n in graph_def.node}
    found = []
    for n in graph_def.node:
        if n.op != "GatherV2" or "Tparams" not in n.attr or n.attr["Tparams"].type != 1 or \
                ("batch_dims" in n.attr and n.attr["batch_dims"].i != 0):
            continue
        table = _producer(nodes, n.input[0])
        if table.op == "Const" and EMBEDDING_MIN_VALUES <= int(
                np.prod([d.size for d in table.attr["value"].tensor.tensor_shape.dim])):
            found.append(n)
    return found


def _targets(graph_def: Any) -> list[Any]:
    """Float MatMul/Conv2D/DepthwiseConv2dNative nodes whose weights are
    constants, and BatchMatMulV2 nodes whose second operand is a constant matrix."""
    nodes = {n.name: n for n in graph_def.node}
    targets = []
    for n in graph_def.node:
        if n.op not in QUANTIZED_OPS or n.attr["T"].type != 1 or _flag(n, "transpose_a") or _flag(n, "adj_x"):
            continue
        weights = _constant(nodes, n.input[1])
        # One scale per output channel: a depthwise filter [kh, kw, ic, multiplier]
        # has its own channel axis only with multiplier 1 (Keras' default).
        if weights is not None and (n.op != "BatchMatMulV2" or weights.ndim == 2) and \
                (n.op != "DepthwiseConv2dNative" or weights.shape[3] == 1):
            targets.append(n)
    return targets


# ---- calibration -------------------------------------------------------------------

def _batches(data: Any, batch_size: int, spec: Any) -> list[np.ndarray]:
    x = np.asarray(data)
    sample_shape = tuple(spec.shape[1:])
    if x.ndim == 0 or len(x) == 0:
        raise ValueError("calibration_data is empty: give at least one sample")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"calibration_data must be numeric, got dtype {x.dtype}")
    if len(x.shape) != len(sample_shape) + 1 or any(
            want is not None and got != want for got, want in zip(x.shape[1:], sample_shape)):
        raise ValueError(f"calibration_data has samples of shape {x.shape[1:]}; the model takes "
                         f"{tuple(sample_shape)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("calibration_data holds NaN or Inf: ranges learned from it would be meaningless")
    x = x.astype(spec.dtype.as_numpy_dtype)
    return [x[i:i + batch_size] for i in range(0, len(x), batch_size)]


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _calibrate(graph_def: Any, input_name: str, output_name: str, spec: Any, targets: list[Any],
               batches: list[np.ndarray], method: str, verbose: bool) -> tuple[list[Calibration], list[np.ndarray]]:
    """Two passes when histograms are needed: ranges, then histograms over them.
    Also the FP32 model's outputs, from the first pass: the guard's reference."""
    names = [t.input[0] if ":" in t.input[0] else t.input[0] + ":0" for t in targets]
    fetched = [output_name, *sorted(set(names) - {input_name, output_name})]  # a layer may read the input
    run = _callable(graph_def, input_name, fetched, spec)
    stats = [Calibration() for _ in targets]
    reference = []
    passes = 1 if method == "minmax" else 2
    for p in range(passes):
        for i, batch in enumerate(batches):
            values = {name: value.numpy() for name, value in zip(fetched, run(batch))}
            if p == 0:
                reference.append(values[output_name])
            values[input_name] = batch
            for s, name in zip(stats, names):
                v = np.asarray(values[name]).ravel()
                if not np.all(np.isfinite(v)):
                    raise ValueError("the FP32 model produced NaN or Inf on the calibration data")
                if p == 0:
                    s.low, s.high = min(s.low, float(v.min())), max(s.high, float(v.max()))
                    continue
                lo, hi = min(s.low, 0.0), max(s.high, 0.0)
                if method == "percentile":
                    s.histogram += np.histogram(v, HISTOGRAM_BINS, (lo, hi if hi > lo else lo + 1))[0]
                else:  # kl
                    # Exact zeros (most of a ReLU's output) quantize exactly at
                    # any threshold: counted, they pull KL towards clipping.
                    top = max(-lo, hi)
                    s.magnitudes += np.histogram(np.abs(v[v != 0]), HISTOGRAM_BINS, (0, top if top > 0 else 1))[0]
            if verbose:
                _progress(f"calibrating ({'ranges' if p == 0 else 'histograms'})", i + 1, len(batches))
    return stats, reference


def _kl_threshold(magnitudes: np.ndarray, top: float, levels: int) -> float:
    """TensorRT's entropy calibration: the clip threshold whose `levels`-level
    quantization of the |x| histogram loses the least information (KL)."""
    bins = len(magnitudes)
    best, best_kl = bins, np.inf
    for cut in range(levels, bins + 1, max(1, bins // 256)):
        p = magnitudes[:cut].astype(np.float64).copy()
        p[-1] += magnitudes[cut:].sum()  # clipped values pile up at the edge
        if p.sum() == 0:
            continue
        groups = np.array_split(np.arange(cut), levels)
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


def _choose_range(s: Calibration, method: str, percentile: float) -> tuple[float, float]:
    lo, hi = min(s.low, 0.0), max(s.high, 0.0)
    if method == "percentile" and s.histogram.sum() > 0:
        edges = np.linspace(lo, hi if hi > lo else lo + 1, HISTOGRAM_BINS + 1)
        cdf = np.cumsum(s.histogram) / s.histogram.sum()
        lo = min(float(edges[np.searchsorted(cdf, 1 - percentile / 100)]), 0.0)
        hi = max(float(edges[np.searchsorted(cdf, percentile / 100) + 1]), 0.0)
    elif method == "kl" and s.magnitudes.sum() > 0:
        t = _kl_threshold(s.magnitudes, max(-lo, hi), 255 if lo >= 0 else 127)
        lo, hi = max(lo, -t), min(hi, t)
    if hi <= lo:
        hi = lo + 1e-6
    return lo, hi


# ---- the QDQ graph -------------------------------------------------------------------

def _qdq_graph(graph_def: Any, targets: list[Any], ranges: list[tuple[float, float] | None]) -> Any:
    """A copy of `graph_def` with FakeQuant before each target's input and its
    weights as int8 Const -> Dequantize; a range of None leaves that layer FP32."""
    import tensorflow as tf

    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    reads = collections.Counter(i.lstrip("^").split(":")[0] for n in out.node for i in n.input)
    for target, r in zip(targets, ranges):
        if r is None:
            continue
        node = nodes[target.name]
        # A zero Pad between (Keras' ZeroPadding2D before a strided conv): the
        # FakeQuant goes before it, which is the same (0.0 is exact), so that
        # the pass can still fold the Pad into the conv and chain int8 into it.
        pad = nodes.get(node.input[0])
        holder = pad if pad is not None and pad.op == "Pad" and reads[pad.name] == 1 else node
        fake_quant = out.node.add(name=f"{node.name}/int8flow_input", op="FakeQuantWithMinMaxArgs",
                                  input=[holder.input[0]])
        fake_quant.attr["min"].f, fake_quant.attr["max"].f = r
        fake_quant.attr["num_bits"].i = 8
        fake_quant.attr["narrow_range"].b = False
        w = _weights(nodes, node.input[1])
        transposed = _flag(node, "transpose_b") or _flag(node, "adj_y")
        axis = 0 if transposed else 2 if node.op == "DepthwiseConv2dNative" else w.ndim - 1
        q, limit = _int8(w, axis)
        dequantize = out.node.add(name=f"{node.name}/int8flow_weights")
        _set_dequantize(dequantize, _add_int8_consts(out, f"{node.name}/int8flow_weights", q, limit), axis)
        holder.input[0], node.input[1] = fake_quant.name, dequantize.name
    for node in _embeddings(out):
        # Rows are gathered as int8 and then dequantized: the node becomes that
        # Dequantize (its readers keep their input), the gather a new node.
        q, limit = _int8(_weights(nodes, node.input[0]), None)
        table, low, high = _add_int8_consts(out, f"{node.name}/int8flow_table", q, limit)
        gather = out.node.add(name=f"{node.name}/int8flow_rows", op="GatherV2", input=[table, *node.input[1:]])
        for attr in ("Tindices", "Taxis", "batch_dims"):
            if attr in node.attr:
                gather.attr[attr].CopyFrom(node.attr[attr])
        gather.attr["Tparams"].type = tf.qint8.as_datatype_enum
        node.ClearField("attr")
        _set_dequantize(node, [gather.name, low, high], -1)
    return out


def _int8(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of `w`, one scale along `axis` (None: one for all); the
    int8 values and each scale's float limit (127 steps), a scalar for None."""
    reduce_axes = None if axis is None else tuple(a for a in range(w.ndim) if a != axis)
    scale = np.abs(w).max(axis=reduce_axes, keepdims=True) / 127
    q = np.where(scale > 0, np.round(w / np.where(scale > 0, scale, 1)), 0).astype(np.int8)
    limit = (127 * scale).astype(np.float32)
    return q, limit.reshape(()) if axis is None else limit.ravel()


def _add_int8_consts(graph_def: Any, prefix: str, q: np.ndarray, limit: np.ndarray) -> list[str]:
    """Consts of `q` (qint8) and of -limit and limit, named `prefix`_int8,
    _min and _max: a Dequantize's three inputs."""
    import tensorflow as tf

    names = []
    for suffix, value, dtype in (("int8", q, tf.qint8), ("min", -limit, tf.float32), ("max", limit, tf.float32)):
        c = graph_def.node.add(name=f"{prefix}_{suffix}", op="Const")
        c.attr["dtype"].type = dtype.as_datatype_enum
        proto = tf.make_tensor_proto(value)
        proto.dtype = dtype.as_datatype_enum
        c.attr["value"].tensor.CopyFrom(proto)
        names.append(c.name)
    return names


def _set_dequantize(node: Any, inputs: list[str], axis: int) -> None:
    """Makes `node` TF's Dequantize of qint8 to float, SCALED, narrow range."""
    import tensorflow as tf

    node.op = "Dequantize"
    del node.input[:]
    node.input.extend(inputs)
    node.attr["T"].type = tf.qint8.as_datatype_enum
    node.attr["mode"].s = b"SCALED"
    node.attr["narrow_range"].b = True
    node.attr["axis"].i = axis
    node.attr["dtype"].type = tf.float32.as_datatype_enum


def _prune(graph_def: Any, output_name: str) -> Any:
    """`graph_def` with only the nodes the output's value needs: the float
    weights that int8 ones replaced go. Control edges go too: in a frozen
    graph they only ordered the variable reads, and they would keep those
    float weights alive."""
    import tensorflow as tf

    nodes = {n.name: n for n in graph_def.node}
    needed, todo = set(), [output_name.split(":")[0]]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += [i.split(":")[0] for i in nodes[name].input if not i.startswith("^")]
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    for node in graph_def.node:
        if node.name in needed:
            kept = out.node.add()
            kept.CopyFrom(node)
            del kept.input[:]
            kept.input.extend(i for i in node.input if not i.startswith("^"))
    return out


def release_memory() -> None:
    """Hand back what calibration held: its tf.functions (each with the frozen
    FP32 graph's weights) sit in reference cycles until a collection, and glibc
    keeps freed pages until trimmed. Measured on ResNet50 after quantize and a
    first call: RSS 4.2 GB, 3.0 GB after a collection, 2.2 GB after the trim."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator keeps its pages
        pass


# ---- the accuracy guard --------------------------------------------------------------

def _loss(reference: list[np.ndarray], got: list[np.ndarray], metric: str) -> float:
    """How far `got` is from `reference`: 1 - top-1 agreement, or 1 - mean cosine."""
    a, b = np.concatenate(reference), np.concatenate(got)
    if metric == "top1":
        return float(np.mean(a.reshape(len(a), -1).argmax(1) != b.reshape(len(b), -1).argmax(1)))
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    cos = np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return float(1 - cos.mean())


def _outputs(graph_def: Any, input_name: str, output_name: str, spec: Any,
             batches: list[np.ndarray]) -> list[np.ndarray]:
    run = _callable(graph_def, input_name, [output_name], spec)
    outputs = [run(b)[0].numpy() for b in batches]
    del run
    release_memory()  # each graph run holds its own copies of the weights
    return outputs


class QuantizedModel:
    """A model whose MatMul/Conv2D layers run in INT8 on QCPU (FP32 where kept)."""

    def __init__(self, graph_def: Any, input_name: str, output_name: str, spec: Any,
                 report: list[LayerReport], loss: float, metric: str) -> None:
        from tensorflow.python.eager import context

        self.graph_def, self.report, self.loss, self.metric = graph_def, report, loss, metric
        # Called as a concrete function: at batch 1 the tf.function's own
        # dispatch costs ~0.1 ms, a CNN's whole int8 compute ~2 ms.
        self._concrete = _callable(graph_def, input_name, [output_name], spec).get_concrete_function()
        self._spec = spec
        self._host = context.context().host_address_space() + "/device:CPU:0"

    def __call__(self, x: Any) -> Any:
        """The output for one batch, as a tf.Tensor."""
        import tensorflow as tf
        # Private, as TF's own tf.constant uses it; int8flow is built for one TF minor.
        from tensorflow.python.framework.ops import EagerTensor

        if not isinstance(x, tf.Tensor):
            # Made on the host. On QCPU (the default device) a constant costs a
            # function call and two copies, 0.45 ms for one 224x224 image;
            # under tf.device("/CPU:0") the scope alone costs 0.05 ms.
            x = EagerTensor(x, self._host, self._spec.dtype.as_datatype_enum)
        # A concrete function checks no shapes: a bad one would fail deep in the graph.
        if not self._spec.is_compatible_with(x):
            raise ValueError(f"the model takes {self._spec.dtype.name} {self._spec.shape}, "
                             f"got {x.dtype.name} {x.shape}")
        # The one input is checked above, so ConcreteFunction.__call__'s
        # argument binding (0.1 ms at batch 1) is skipped.
        return self._concrete._call_flat([x], self._concrete.captured_inputs)[0]

    def predict(self, x: Any, batch_size: int = 32) -> np.ndarray:
        """Outputs for `x` in batches, as numpy."""
        x = np.asarray(x)
        return np.concatenate([self(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)])

    def save(self, path: str | Path) -> None:
        """A SavedModel (`serving_default`) in standard TF ops: it also loads without int8flow."""
        import tensorflow as tf

        # As a signature only: an attribute too would store the graph twice.
        tf.saved_model.save(tf.Module(), str(path), signatures=self._concrete)

    def table(self) -> str:
        """The report as text: one row per quantizable layer."""
        rows = [f"{'layer':<40} {'op':<7} {'input range':>22} {'alone':>8}  precision"]
        for r in self.report:
            alone = "" if r.error_alone is None else f"{r.error_alone:.4f}"
            rows.append(f"{r.node[-40:]:<40} {r.op:<7} {r.input_range[0]:>10.4g},{r.input_range[1]:<11.4g} "
                        f"{alone:>8}  {'int8' if r.int8 else 'fp32: ' + r.reason}")
        rows.append(f"{self.metric} loss against FP32 on the calibration data: {self.loss:.4f}")
        return "\n".join(rows)


def quantize(model: Any, calibration_data: Any, method: str = "minmax", *, percentile: float = 99.99,
             accuracy_budget: float | None = None, metric: str = "top1", keep_ends: bool = False,
             batch_size: int = 32, verbose: bool = True) -> QuantizedModel:
    """Static INT8 for a one-input, one-output Keras model (see the module's docstring).

    `method`: how each input range is chosen from the calibration run: `minmax`,
    `percentile` (of the values, `percentile` and 100 - `percentile`) or `kl`
    (TensorRT's entropy calibration). `accuracy_budget`: the largest loss allowed
    against FP32 on the calibration data, in `metric` (`top1`: 1 - top-1 agreement;
    `cosine`: 1 - mean output cosine). Over budget, layers go back to FP32 most
    sensitive first (each one's loss when quantized alone) until the budget holds.
    `keep_ends`: the first and last quantizable layers (the stem and the
    classifier, often the most sensitive) stay FP32 from the start.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    graph_def, input_name, output_name, spec = _freeze(model)
    targets = _targets(graph_def)
    if not targets:
        raise ValueError("the model has no MatMul or Conv2D with constant weights: nothing to quantize")
    batches = _batches(calibration_data, batch_size, spec)
    stats, reference = _calibrate(graph_def, input_name, output_name, spec, targets, batches, method, verbose)
    release_memory()
    ranges = [_choose_range(s, method, percentile) for s in stats]
    report = [LayerReport(t.name, t.op, r) for t, r in zip(targets, ranges)]
    nodes = {n.name: n for n in graph_def.node}
    for n in _embeddings(graph_def):  # int8 whatever the budget: weights only, listed last
        limit = float(np.abs(_weights(nodes, n.input[0])).max())
        report.append(LayerReport(n.name, n.op, (-limit, limit), reason="embedding table"))

    def loss_with(kept: Iterable[int]) -> float:
        qdq = _qdq_graph(graph_def, targets, [None if i in kept else r for i, r in enumerate(ranges)])
        # Pruned: the float weights that int8 ones replaced would ride along.
        return _loss(reference, _outputs(_prune(qdq, output_name), input_name, output_name, spec, batches), metric)

    kept: set[int] = {0, len(targets) - 1} if keep_ends else set()
    for i in kept:
        report[i].int8, report[i].reason = False, "keep_ends"
    loss = loss_with(kept)
    if accuracy_budget is not None and loss > accuracy_budget:
        candidates = [i for i in range(len(targets)) if i not in kept]
        everything = set(range(len(targets)))
        alone: dict[int, float] = {}
        for n, i in enumerate(candidates):
            alone[i] = report[i].error_alone = loss_with(everything - {i})
            if verbose:
                _progress("measuring each layer's sensitivity", n + 1, len(candidates))
        for i in sorted(candidates, key=lambda i: -alone[i]):
            if loss <= accuracy_budget:
                break
            kept.add(i)
            report[i].int8, report[i].reason = False, f"most sensitive ({alone[i]:.4f} alone)"
            loss = loss_with(kept)
    qdq = _qdq_graph(graph_def, targets, [None if i in kept else r for i, r in enumerate(ranges)])
    result = QuantizedModel(_prune(qdq, output_name), input_name, output_name, spec, report, loss, metric)
    if verbose:
        print(result.table())
    return result
