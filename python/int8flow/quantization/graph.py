"""The model's graph as `quantize` reads and runs it: which nodes it quantizes
(the pass's own rules, `_native.quantizable_ops()`), their weights, and
tf.functions that run a GraphDef with the model's variables."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from int8flow import _native
from int8flow.quantization.source import ModelSource

EMBEDDING_MIN_VALUES = 65536  # a smaller table is not worth an op per call


def flag(node: Any, attr: str) -> bool:
    # Never node.attr[attr] for a missing attr: protobuf would insert an empty
    # AttrValue, which TF then refuses to run.
    return attr in node.attr and node.attr[attr].b


def node_of(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


@dataclass(frozen=True)
class Target:
    """A node `quantize` quantizes: its input range is calibrated, its weights
    (input 1) stored as int8 with one scale per output channel (`channel_axis`)."""

    name: str
    op: str
    input: str  # the activation tensor, input 0
    channel_axis: int
    depthwise: bool = False  # a depthwise filter: no channel sums, so 8-bit weights on every CPU


class GraphView:
    """Lookups into `source.graph_def`; weights are Consts or captured variables."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.nodes = {n.name: n for n in source.graph_def.node}

    def producer(self, tensor: str) -> Any:
        """The node making `tensor`, looking through Identity."""
        node = self.nodes[node_of(tensor)]
        while node.op == "Identity":
            node = self.nodes[node_of(node.input[0])]
        return node

    def constant(self, tensor: str) -> np.ndarray | None:
        """The value of `tensor` when it is a Const, a read of a captured
        variable or a captured value, possibly reshaped by a constant shape."""
        import tensorflow as tf

        node = self.producer(tensor)
        if node.op == "Const":
            return tf.make_ndarray(node.attr["value"].tensor)
        if node.op == "ReadVariableOp":
            handle = self.source.captures.get(self.producer(node.input[0]).name)
            if handle is None:
                return None
            return tf.raw_ops.ReadVariableOp(resource=handle, dtype=node.attr["dtype"].type).numpy()
        if node.op == "Placeholder" and node.name in self.source.captures:
            value = self.source.captures[node.name]
            return None if value.dtype == tf.resource else value.numpy()
        if node.op == "Reshape":
            value, shape = self.constant(node.input[0]), self.constant(node.input[1])
            return None if value is None or shape is None else value.reshape(shape)
        return None

    def weights(self, tensor: str) -> np.ndarray:
        """The value of `tensor`, which `targets` or `embeddings` found to be constant."""
        value = self.constant(tensor)
        assert value is not None, f"{tensor} is not a constant"
        return value

    def targets(self) -> list[Target]:
        """The float nodes the pass quantizes, as its rules say, whose weights are constant."""
        rules = {rule["op"]: rule for rule in _native.quantizable_ops()}
        found = []
        for n in self.source.graph_def.node:
            rule = rules.get(n.op)
            if rule is None or n.attr["T"].type != 1 or any(flag(n, a) for a in rule["refused_attrs"]):
                continue
            if rule["data_format"] and "data_format" in n.attr and \
                    n.attr["data_format"].s.decode() != rule["data_format"]:
                continue
            weights = self.constant(n.input[1])
            if weights is None or (rule["weight_rank"] and weights.ndim != rule["weight_rank"]):
                continue
            if rule["depthwise"] and weights.shape[3] != 1:  # one channel axis only with multiplier 1
                continue
            transposed = rule["transpose_weights_attr"] is not None and flag(n, rule["transpose_weights_attr"])
            axis = 0 if transposed else 2 if rule["depthwise"] else weights.ndim - 1
            found.append(Target(n.name, n.op, n.input[0] if ":" in n.input[0] else n.input[0] + ":0", axis,
                                rule["depthwise"]))
        return found

    def embeddings(self) -> list[Any]:
        """GatherV2 nodes reading a constant float table of at least
        EMBEDDING_MIN_VALUES values: embeddings, stored as int8 with one scale."""
        found = []
        for n in self.source.graph_def.node:
            if n.op != "GatherV2" or "Tparams" not in n.attr or n.attr["Tparams"].type != 1 or \
                    ("batch_dims" in n.attr and n.attr["batch_dims"].i != 0):
                continue
            table = self.constant(n.input[0])
            if table is not None and table.size >= EMBEDDING_MIN_VALUES:
                found.append(n)
        return found


def graph_function(source: ModelSource, graph_def: Any, fetches: Sequence[str],
                   reduce: Callable[[list[Any]], list[Any]] | None = None, captures: dict[str, Any] | None = None,
                   arguments: Sequence[str] = ()) -> Any:
    """A tf.function running `graph_def` from the model's inputs to the
    `fetches` tensors (or to `reduce` of them, computed in the function),
    reading its variables through their handles: a function like any other,
    so Grappler (and QCPU's pass) optimize it. `captures`: more placeholders
    and their captured values (the int8 weights); `arguments`: placeholders
    among them taken as arguments after the model's inputs instead."""
    import tensorflow as tf
    # Private: how a tf.function records the variables it reads, which TF's
    # freezing (`freeze`) then finds; reading them through their API would
    # add a read of each to the graph.
    from tensorflow.python.ops.resource_variable_ops import variable_accessed

    present = {n.name for n in graph_def.node}
    every = {**source.captures, **(captures or {})}
    captured = {name: value for name, value in every.items() if name in present and name not in arguments}
    inputs = [t for t in source.input_tensors if node_of(t) in present]
    argument_specs = [tf.TensorSpec(every[name].shape, every[name].dtype) for name in arguments]

    @tf.function(input_signature=[*source.signature.input_specs, *argument_specs])
    def run(*xs: Any) -> list[Any]:
        graph = tf.compat.v1.get_default_graph()
        count = len(source.input_tensors)
        input_map = {t: x for t, x in zip(source.input_tensors, xs) if t in inputs}
        input_map.update({f"{name}:0": x for name, x in zip(arguments, xs[count:])})
        input_map.update({f"{name}:0": graph.capture(value) for name, value in captured.items()})
        for name in captured.keys() & source.variables.keys():
            variable_accessed(source.variables[name])
        results = tf.graph_util.import_graph_def(graph_def, input_map=input_map, return_elements=list(fetches),
                                                 name="")
        if reduce is not None:
            results = reduce(results)
        # Handed back on the host, copied by the graph: an eager copy of a
        # QCPU result (.numpy()) costs a function call, 0.1 ms.
        with tf.device("/CPU:0"):
            return [tf.identity(t) for t in results]
    return run


def prune(graph_def: Any, outputs: Sequence[str]) -> Any:
    """`graph_def` with only the nodes the outputs need: the float weights that
    int8 ones replaced go. Control edges go too: in an inference graph they
    only ordered the variable reads, and they would keep those weights alive."""
    import tensorflow as tf

    nodes = {n.name: n for n in graph_def.node}
    needed, todo = set(), [node_of(t) for t in outputs]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += [node_of(i) for i in nodes[name].input if not i.startswith("^")]
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name in needed:
            kept = out.node.add()
            kept.CopyFrom(node)
            del kept.input[:]
            kept.input.extend(i for i in node.input if not i.startswith("^"))
    return out


def freeze(source: ModelSource, graph_def: Any, int8: dict[str, Any]) -> ModelSource:
    """`graph_def` (pruned to the outputs) with the variables it still reads as
    constants: a graph that runs without the model. The `int8` placeholders
    (of QdqWriter.captures) stay placeholders, of the captures it returns."""
    # Private, as int8flow is built for one TF minor: TF's own freezing, less
    # the wrapping function it would build (one more copy of the graph).
    from tensorflow.python.framework.convert_to_constants import (
        _FunctionConverterDataInEager, _replace_variables_by_constants)

    present = {n.name for n in graph_def.node}
    arguments = [name for name in int8 if name in present]
    concrete = graph_function(source, graph_def, source.output_tensors, captures=int8,
                              arguments=arguments).get_concrete_function()
    frozen, _ = _replace_variables_by_constants(converter_data=_FunctionConverterDataInEager(
        func=concrete, lower_control_flow=False, aggressive_inlining=True))
    count = len(source.signature.input_names)
    outputs = tuple(t.name for t in concrete.outputs)
    captures = {t.op.name: int8[name] for t, name in zip(concrete.inputs[count:], arguments)}
    return ModelSource(source.signature, prune(frozen, outputs), tuple(t.name for t in concrete.inputs[:count]),
                       outputs, captures, {})
