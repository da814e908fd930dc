"""The QDQ graph: the calibrated ranges written into the model's graph in
standard TF ops, which stock TF runs in float and the pass runs in INT8.
- activations: `FakeQuantWithMinMaxArgs` (u8 over [min, max], 0 exact);
- weights: int8 values -> `Bitcast` to qint8 -> `Dequantize` (SCALED, one
  scale per output channel);
- embedding tables: int8 rows gathered, bitcast, then dequantized.
The int8 values are not Consts but placeholders of captured tensors
(`QdqWriter.captures`): TF copies a graph's constants some ten times while it
imports, optimizes and runs a function (1.45 GB more RSS for BERT-base's
104 MB of int8), a captured tensor never. A saved model stores them as its
variables (`QuantizedModel.save`).
"""
from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np

from int8flow import _native
from int8flow.quantization.graph import GraphView, Target, node_of

Range = tuple[float, float]
DEBUG_SUFFIX = "/int8flow_debug"


class QdqWriter:
    """Writes QDQ graphs of one model, its targets' int8 weights made once."""

    def __init__(self, view: GraphView) -> None:
        self.view = view
        self._int8: dict[str, tuple[Any, np.ndarray]] = {}
        # Without VNNI the kernels run weights wider than 7 bits halved (a u8·s8
        # pair would saturate), which rounds them twice: made 7-bit here, they
        # run as stored, and the debugger and guard measure what runs here.
        # A depthwise filter sums no channels, so no pairs: 8 bits everywhere.
        self.seven_bit_weights = _native.cpu_features()["int8_path"] == "avx2"
        self.captures: dict[str, Any] = {}  # placeholder name -> its int8 tensor, for graph_function

    def quantized(self, targets: Sequence[Target], ranges: Sequence[Range | None],
                  embeddings: Sequence[Any]) -> Any:
        """A copy of the graph with each target that has a range (None: it
        stays FP32) quantized, and the `embeddings` tables stored as int8."""
        return _quantized(self, targets, ranges, embeddings)

    def debug(self, targets: Sequence[Target], range_sets: Sequence[Sequence[Range]]) -> tuple[Any, list[list[str]]]:
        """The FP32 graph with, beside each target, a quantized twin per range
        set reading the same FP32 input: the error each layer's own
        quantization adds, measured on the INT8 kernels that will run it.
        The twins' outputs, per range set."""
        return _debug(self, targets, range_sets)

    def add_weights(self, graph_def: Any, target: Target, name: str) -> str:
        """The target's weights as int8 -> Dequantize, named `name`."""
        tensor = self.view.nodes[target.name].input[1]
        dequantize = graph_def.node.add(name=name)
        levels = 63 if self.seven_bit_weights and not target.depthwise else 127
        _set_dequantize(dequantize, self.add_int8_values(graph_def, name, tensor, target.channel_axis,
                                                         levels=levels), target.channel_axis)
        return name

    def limit_of(self, tensor: str, axis: int | None) -> np.ndarray:
        """The float limit of each scale of the constant `tensor`'s int8 values."""
        return self._int8_of(tensor, axis, 127)[1]

    def _int8_of(self, tensor: str, axis: int | None, levels: int) -> tuple[Any, np.ndarray]:
        """`int8_values` of the constant `tensor`, made once: the values as a
        tensor on QCPU, where the kernels read it (from the host they would copy
        it every call)."""
        import tensorflow as tf

        if tensor not in self._int8:
            q, limit = int8_values(self.view.weights(tensor), axis, levels)
            with tf.device("/device:QCPU:0" if tf.config.list_logical_devices("QCPU") else "/device:CPU:0"):
                self._int8[tensor] = tf.constant(q), limit
        return self._int8[tensor]

    def add_int8_values(self, graph_def: Any, prefix: str, tensor: str, axis: int | None,
                        rows: Any = None, levels: int = 127) -> list[str]:
        """The int8 values of `tensor` (in [-levels, levels]) as a captured
        placeholder `prefix`_int8 (gathered by `rows`, a GatherV2 node, when
        given) bitcast to qint8, and Consts of -limit and limit: a Dequantize's
        three inputs."""
        import tensorflow as tf

        q, limit = self._int8_of(tensor, axis, levels)
        values = graph_def.node.add(name=f"{prefix}_int8", op="Placeholder")
        values.attr["dtype"].type = tf.int8.as_datatype_enum
        values.attr["shape"].shape.CopyFrom(q.shape.as_proto())
        self.captures[values.name] = q
        read = values.name
        if rows is not None:
            rows.input[0] = read
            rows.attr["Tparams"].type = tf.int8.as_datatype_enum
            read = rows.name
        bitcast = graph_def.node.add(name=f"{prefix}_qint8", op="Bitcast", input=[read])
        bitcast.attr["T"].type = tf.int8.as_datatype_enum
        bitcast.attr["type"].type = tf.qint8.as_datatype_enum
        names = [bitcast.name]
        for suffix, value in (("min", -limit), ("max", limit)):
            c = graph_def.node.add(name=f"{prefix}_{suffix}", op="Const")
            c.attr["dtype"].type = tf.float32.as_datatype_enum
            c.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            names.append(c.name)
        return names


def _quantized(writer: QdqWriter, targets: Sequence[Target], ranges: Sequence[Range | None],
               embeddings: Sequence[Any]) -> Any:
    import tensorflow as tf

    view = writer.view
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(view.source.graph_def)
    nodes = {n.name: n for n in out.node}
    reads = collections.Counter(node_of(i) for n in out.node for i in n.input)
    for target, r in zip(targets, ranges):
        if r is None:
            continue
        node = nodes[target.name]
        # A zero Pad between (Keras' ZeroPadding2D before a strided conv): the
        # FakeQuant goes before it, which is the same (0.0 is exact), so that
        # the pass can still fold the Pad into the conv and chain int8 into it.
        pad = nodes.get(node.input[0])
        holder = pad if pad is not None and pad.op == "Pad" and reads[pad.name] == 1 else node
        holder.input[0] = _add_fake_quant(out, f"{node.name}/int8flow_input", holder.input[0], r)
        node.input[1] = writer.add_weights(out, target, f"{node.name}/int8flow_weights")
    for node in (nodes[n.name] for n in embeddings):
        # Rows are gathered as int8 and then dequantized: the node becomes that
        # Dequantize (its readers keep their input), the gather a new node.
        gather = out.node.add(name=f"{node.name}/int8flow_rows", op="GatherV2", input=node.input)
        for attr in ("Tindices", "Taxis", "batch_dims"):
            if attr in node.attr:
                gather.attr[attr].CopyFrom(node.attr[attr])
        inputs = writer.add_int8_values(out, f"{node.name}/int8flow_table", node.input[0], None, rows=gather)
        node.ClearField("attr")
        _set_dequantize(node, inputs, -1)
    return out


def _debug(writer: QdqWriter, targets: Sequence[Target],
           range_sets: Sequence[Sequence[Range]]) -> tuple[Any, list[list[str]]]:
    import tensorflow as tf

    out = tf.compat.v1.GraphDef()
    out.CopyFrom(writer.view.source.graph_def)
    twins: list[list[str]] = []
    for k, ranges in enumerate(range_sets):
        twins.append([])
        for target, r in zip(targets, ranges):
            node = writer.view.nodes[target.name]
            twin = out.node.add()
            twin.CopyFrom(node)
            twin.name = node.name + DEBUG_SUFFIX + (f"_{k}" if k else "")
            del twin.input[:]
            twin.input.extend([_add_fake_quant(out, f"{twin.name}/input", node.input[0], r),
                               writer.add_weights(out, target, f"{twin.name}/weights"), *node.input[2:]])
            twins[-1].append(twin.name + ":0")
    return out, twins


def int8_values(w: np.ndarray, axis: int | None, levels: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of `w` in [-levels, levels], one scale along `axis`
    (None: one for all); the int8 values and each scale's float limit (the
    value of 127, as Dequantize's SCALED mode reads it), a scalar for None."""
    reduce_axes = None if axis is None else tuple(a for a in range(w.ndim) if a != axis)
    scale = np.abs(w).max(axis=reduce_axes, keepdims=True) / levels
    q = np.where(scale > 0, np.round(w / np.where(scale > 0, scale, 1)), 0).astype(np.int8)
    limit = (127 * scale).astype(np.float32)
    return q, limit.reshape(()) if axis is None else limit.ravel()


def _add_fake_quant(graph_def: Any, name: str, tensor: str, r: Range) -> str:
    fake_quant = graph_def.node.add(name=name, op="FakeQuantWithMinMaxArgs", input=[tensor])
    fake_quant.attr["min"].f, fake_quant.attr["max"].f = r
    fake_quant.attr["num_bits"].i = 8
    fake_quant.attr["narrow_range"].b = False
    return name


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
