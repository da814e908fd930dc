"""Golden GraphDef tests of the graph pass: one small graph per fusion table row,
built from the row itself, and what the pass made of it.

    INT8FLOW_DUMP_GRAPHS=DIR python golden_graphs.py OUT.json

The table comes from the plugin (int8flow._native.fusion_table()), so a new
row gets a graph with no edit here, and one this builder cannot make fails.
Each graph holds exactly the row's nodes: each node takes the first op the
row allows, its captures are function arguments of shapes that pass the
row's checks (Consts where a check or an op needs a Const: paddings, axes,
epsilon, a Reshape's shape, the transposed convs' input_sizes), and a capture
that must be >= 0 comes from a Relu. The graph returns the root's output and
the row's extra outputs (an LSTM cell's state), all compared.
TF's own Grappler rewrites are off, so the pass sees that graph as built.
For each row the JSON records the pass's GraphDef out (from the dump), the
fusions it counted, and the result's largest difference from the same graph
on TF's CPU. INT8_CASES, written by hand, do the same for the INT8 rewrites
(int8_rewrite.cc), each with the exact ops it must become; to them are added
cases built from each rule of the quantizable ops' table as Python reads it
(int8flow._native.quantizable_ops()).
"""
from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import op_def_registry

import int8flow

QCPU, CPU = "/device:QCPU:0", "/device:CPU:0"
C = 4  # every channel / feature dim
# Leave the graph to the pass: TF's rewrites would regroup the rows' forms.
tf.config.optimizer.set_experimental_options({
    name: False for name in ("layout_optimizer", "constant_folding", "shape_optimization",
                             "remapping", "arithmetic_optimization", "dependency_optimization",
                             "loop_optimization", "function_optimization", "debug_stripper",
                             "scoped_allocator_optimization", "pin_to_host_optimization",
                             "implementation_selector", "auto_mixed_precision")})
# Attrs an op needs that a row does not constrain.
OP_ATTRS = {
    "Conv2D": {"strides": [1, 1, 1, 1], "padding": "SAME"},
    "Conv2DBackpropInput": {"strides": [1, 1, 1, 1], "padding": "SAME"},
    "Conv3DBackpropInputV2": {"strides": [1, 2, 1, 1, 1], "padding": "SAME"},
    "DepthwiseConv2dNative": {"strides": [1, 1, 1, 1], "padding": "SAME"},
    "Conv3D": {"strides": [1, 1, 1, 1, 1], "padding": "SAME"},
    "MaxPool": {"ksize": [1, 3, 3, 1], "strides": [1, 1, 1, 1]},
    "Mean": {"keep_dims": True},
}
SPATIAL_PADDINGS = [[0, 0], [1, 1], [1, 1], [0, 0]]  # 6x6 -> 8x8, then 3x3 VALID -> 6x6


def output_shape(row: dict) -> list[int]:
    """The shape of the row's product: [1, 6, 6, C] for 2-D convs and pools,
    [1, 4, 6, 6, C] for 3-D convs, [3, C] else, or [1, C] where only AddN may
    add (it takes no broadcast: a per-channel vector is then [1, C] too)."""
    ops = {op for node in row["nodes"] for op in node["ops"][:1]}
    if ops & {"Conv2D", "Conv2DBackpropInput", "MaxPool"}:
        return [1, 6, 6, C]
    if ops & {"Conv3DBackpropInputV2"}:
        return [1, 4, 6, 6, C]
    return [1, C] if any(node["ops"] == ["AddN"] for node in row["nodes"]) else [3, C]


def capture_plan(row: dict) -> tuple[dict[str, list[int]], dict[str, np.ndarray], set[str]]:
    """Argument shapes, Const values and captures that must be >= 0."""
    kinds = {}
    for check in row["checks"]:
        kinds.setdefault(check["capture"], set()).add(check["kind"])
    out = output_shape(row)
    args: dict[str, list[int]] = {}
    consts: dict[str, np.ndarray] = {}
    non_negative = {c for c, k in kinds.items() if "non_negative" in k}
    # A dilated conv's SpaceToBatchND: block 2, pads of 2 (6x6 -> 10x10), no crops.
    for check in row["checks"]:
        if check["kind"] == "same_spatial_block":
            consts[check["capture"]] = consts[check["of"]] = np.array([2, 2], np.int32)
        elif check["kind"] == "crops_within_paddings":
            consts[check["capture"]] = np.zeros((2, 2), np.int32)
            consts[check["of"]] = np.full((2, 2), 2, np.int32)
    for node in row["nodes"]:
        op = node["ops"][0]
        for position, spec in enumerate(node["inputs"]):
            if not spec.startswith("$") or spec in args or spec in consts:
                continue
            k = kinds.get(spec, set())
            if k & {"spatial_paddings"}:
                consts[spec] = np.array(SPATIAL_PADDINGS, np.int32)
            elif "last_axis" in k:
                consts[spec] = np.array(-1 if op == "Split" else [-1], np.int32)  # Split's is a scalar
            elif "scalar" in k:
                consts[spec] = np.array(1e-3, np.float32)
            elif op == "Reshape":
                consts[spec] = np.array([1, *out], np.int32)  # splits off a leading 1
            elif node["ops"] == ["AddN"]:
                args[spec] = out
            elif "vector_of_last_dim" in k or "trailing_dims" in k or op == "FusedBatchNorm":
                args[spec] = [C]
            elif "same_shape" in k:
                args[spec] = out
            elif op == "Conv2D":
                args[spec] = [1, 6, 6, C] if position == 0 else [3, 3, C, C]
            elif op in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):  # sizes, filter, out_backprop
                if position == 0:
                    consts[spec] = np.array(out, np.int32)
                elif position == 1:
                    args[spec] = [3] * (len(out) - 2) + [C, C]
                else:  # the conv's output: half the depth where it strides by 2
                    args[spec] = [1, 2, 6, 6, C] if len(out) == 5 else out
            elif op == "MatMul":
                args[spec] = [3, C] if position == 0 else [C, C]
            elif op == "Split":  # its parts have the output's shape
                args[spec] = [out[0], node["int_attrs"]["num_split"] * C]
            else:
                args[spec] = out
    return args, consts, non_negative


def make_node(op: str, node: dict, inputs: list[tf.Tensor]) -> tf.Tensor:
    raw_op = getattr(tf.raw_ops, op)
    op_def = op_def_registry.get(op)
    # raw ops take keywords only, their inputs first (Python's names: Mean's `axis`).
    input_names = list(inspect.signature(raw_op).parameters)[:len(op_def.input_arg)]
    attr_names = {a.name for a in op_def.attr}
    kwargs = dict(OP_ATTRS.get(op, {}))
    # A row's attr constraints bind the ops that have the attr (adj_x: BatchMatMulV2's).
    kwargs.update({k: v for k, v in {**node["bool_attrs"], **node["string_attrs"], **node["int_attrs"]}.items()
                   if k in attr_names})
    if op_def.input_arg[0].number_attr:  # AddN: one list input
        kwargs[input_names[0]] = inputs
    else:
        kwargs.update(zip(input_names, inputs))
    return raw_op(**kwargs)  # a list or tuple for several outputs (Split, FusedBatchNorm)


def build(row: dict, args: dict, consts: dict, non_negative: set, values: list[tf.Tensor],
          chosen: dict[str, str]) -> tf.Tensor | tuple[tf.Tensor, ...]:
    """The row's nodes in order, each its first op that takes these shapes
    (AddN adds equal shapes only), recorded in `chosen`; returns the root's
    output, and the extra outputs after it."""
    tensors: dict[str, tf.Tensor | tuple[tf.Tensor, ...]] = {}
    for name, value in zip(sorted(args), values):
        tensors[name] = tf.nn.relu(value) if name in non_negative else value
    for name, value in consts.items():
        tensors[name] = tf.constant(value)

    def tensor(spec: str) -> tf.Tensor:  # "label", "label:1", "$capture", "=0.5"
        if spec.startswith("="):
            return tf.constant(float(spec[1:]))
        label, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "0")
        value = tensors[label]
        return value[int(port)] if isinstance(value, (list, tuple)) else value

    for node in row["nodes"]:
        inputs = [tensor(s) for s in node["inputs"]]
        for i, op in enumerate(node["ops"]):
            try:
                tensors[node["label"]] = make_node(op, node, inputs)
                chosen[node["label"]] = op
                break
            except ValueError:  # shapes this op does not take
                if i + 1 == len(node["ops"]):
                    raise
    outputs = tuple(tensor(label) for label in [row["nodes"][-1]["label"], *row["extra_outputs"]])
    return outputs if len(outputs) > 1 else outputs[0]


def as_array(result: tf.Tensor | tuple[tf.Tensor, ...]) -> np.ndarray:
    """A function's result, its outputs flattened one after the other."""
    if isinstance(result, tuple):
        return np.concatenate([t.numpy().ravel() for t in result])
    return result.numpy()


def compute_nodes(graph: graph_pb2.GraphDef) -> list[graph_pb2.NodeDef]:
    plumbing = {"_Arg", "_Retval", "Const", "Identity", "NoOp"}
    return [n for n in graph.node if n.op not in plumbing]


class PassRun(NamedTuple):
    output: np.ndarray
    fired: dict[str, int]        # fusion counts the call's graph added
    pass_errors: dict[str, int]  # pass errors it added
    nodes: list                  # the compute nodes of the pass's output for the function body


def run_through_pass(fn, arrays: list[np.ndarray], dump: Path) -> PassRun:
    """Calls `fn` (traced there and then) and reads what the pass did to it."""
    def changed(counts: str, before: dict) -> dict:
        after = int8flow.stats()[counts]
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}

    before_files = set(dump.glob("*_after.pb"))
    fusions, errors = int8flow.stats()["fusions"], int8flow.stats()["pass_errors"]
    output = as_array(fn(*arrays))
    graphs = [compute_nodes(graph_pb2.GraphDef.FromString(p.read_bytes()))
              for p in sorted(set(dump.glob("*_after.pb")) - before_files)]
    # The function's body: the dumped graph with the most compute nodes.
    return PassRun(output, changed("fusions", fusions), changed("pass_errors", errors),
                   max(graphs, key=len, default=[]))


def check_row(row: dict, dump: Path, rng: np.random.Generator) -> dict:
    args, consts, non_negative = capture_plan(row)
    names = sorted(args)
    arrays = [rng.standard_normal(args[n]).astype(np.float32) for n in names]
    for i, name in enumerate(names):
        if name in ("$variance",):  # a variance: > 0
            arrays[i] = np.abs(arrays[i]) + 0.5
    spec = [tf.TensorSpec(args[n], tf.float32) for n in names]
    chosen: dict[str, str] = {}

    def traced(device: str):
        @tf.function(input_signature=spec)
        def fn(*values):
            with tf.device(device):
                return build(row, args, consts, non_negative, list(values), chosen)
        return fn

    run = run_through_pass(traced(QCPU), arrays, dump)
    body = run.nodes
    reference = as_array(traced(CPU)(*arrays))
    return {
        "name": row["name"],
        "fired": run.fired,
        "pass_errors": run.pass_errors,
        "chosen": chosen,
        "ops": sorted(n.op for n in body),
        "devices": sorted({n.device.split("/")[-1] for n in body if n.device}),
        "fused_ops": [[s.decode() for s in n.attr["fused_ops"].list.s] for n in body if "fused_ops" in n.attr],
        "max_err": float(np.max(np.abs(run.output - reference))) if reference.size else 0.0,
        "scale": float(np.max(np.abs(reference))) if reference.size else 0.0,
    }


# ---- the INT8 rewrites (int8_rewrite.cc), one graph each ---------------------
# Each case: its fusion count key(s), the graph body, its input shape, and
# whether it runs under dynamic INT8. Static cases put an 8-bit QDQ node
# with a fixed range (FakeQuantWithMinMaxArgs, as int8flow.quantize saves)
# before the layer; their reference is stock TF's float QDQ graph on CPU.
int8_rng = np.random.default_rng(1)


def weights(*shape: int, scale: float = 0.25) -> np.ndarray:
    """Made once; a body makes its Const (tf.constant inside a tf.function is
    a Const node, where a captured tensor would be an argument)."""
    return int8_rng.standard_normal(shape).astype(np.float32) * scale


def qdq(t: tf.Tensor, low: float = -2.0, high: float = 2.0) -> tf.Tensor:
    return tf.quantization.fake_quant_with_min_max_args(t, low, high)


def stored_int8(values: np.ndarray) -> tf.Tensor:
    """Weights as int8flow.quantize stores them: a qint8 Const, then SCALED Dequantize."""
    return tf.quantization.dequantize(tf.constant(values, tf.qint8), -0.5, 0.5, mode="SCALED")


W_MM, B_MM, W_CONV, W_CONV2, B_CONV, W_DW, W_DW2 = (
    weights(32, 64), weights(64), weights(3, 3, 8, 8), weights(3, 3, 8, 8), weights(8), weights(3, 3, 8, 1),
    weights(3, 3, 8, 1))
W_NARROW = weights(32, 8)
W_STORED = int8_rng.integers(-127, 128, (32, 16)).astype(np.int8)
TABLE = int8_rng.integers(-127, 128, (50, 8)).astype(np.int8)
W_CONV3D = weights(3, 3, 3, 8, 8)


def on_qcpu(values: np.ndarray) -> tf.Tensor:
    """An int8 tensor a function captures (an argument, not a Const), as
    int8flow.quantize holds int8 weights: bitcast to qint8 before its Dequantize."""
    with tf.device("/device:QCPU:0"):
        return tf.constant(values)


W_CAPTURED, TABLE_CAPTURED = on_qcpu(W_STORED), on_qcpu(TABLE)
MATRIX, IMAGE, VOLUME = [4, 32], [2, 6, 6, 8], [2, 4, 6, 6, 8]
c = tf.constant


def conv(t: tf.Tensor, w: np.ndarray = W_CONV) -> tf.Tensor:
    return tf.nn.conv2d(t, c(w), 1, "SAME")


def depthwise(t: tf.Tensor, w: np.ndarray = W_DW) -> tf.Tensor:
    return tf.nn.depthwise_conv2d(t, c(w), [1, 1, 1, 1], "SAME")


def block(layer, t: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu(tf.nn.bias_add(layer(t), c(B_CONV)))


class Int8Case(NamedTuple):
    fired: dict[str, int]  # the fusion counts the pass makes of it
    ops: list[str]         # the compute ops of the graph it makes, sorted
    body: Callable[[tf.Tensor], tf.Tensor]
    shape: list[int]
    dynamic: bool          # under dynamic INT8, else static (a QDQ graph)


Q, QMM, QCONV, QDW = "_QcpuQuantize", "_QcpuQuantizedMatMul", "_QcpuQuantizedConv2D", \
    "_QcpuQuantizedDepthwiseConv2dNative"
INT8_CASES = {
    "dynamic MatMul": Int8Case({"INT8 dynamic MatMul": 1}, [Q, QMM], lambda t: tf.matmul(t, c(W_MM)), MATRIX, True),
    "dynamic fused MatMul": Int8Case(
        {"MatMul+BiasAdd+activation": 1, "INT8 dynamic _QcpuFusedMatMul": 1}, [Q, QMM],
        lambda t: tf.nn.relu(tf.nn.bias_add(tf.matmul(t, c(W_MM)), c(B_MM))), MATRIX, True),
    "dynamic Conv2D": Int8Case({"INT8 dynamic Conv2D": 1}, [Q, QCONV], lambda t: conv(t), IMAGE, True),
    "dynamic fused Conv2D": Int8Case({"Conv+BiasAdd+activation": 1, "INT8 dynamic _QcpuFusedConv2D": 1},
                                     [Q, QCONV], lambda t: block(conv, t), IMAGE, True),
    "dynamic fused Conv3D": Int8Case(
        {"Conv+BiasAdd+activation": 1, "INT8 dynamic _QcpuFusedConv3D": 1}, [Q, "_QcpuQuantizedConv3D"],
        lambda t: block(lambda v: tf.nn.conv3d(v, c(W_CONV3D), [1] * 5, "SAME"), t), VOLUME, True),
    # Too little work per input byte to pay for quantizing x per call: FP32.
    "dynamic depthwise stays FP32": Int8Case({"Conv+BiasAdd+activation": 1}, ["_QcpuFusedDepthwiseConv2dNative"],
                                             lambda t: block(depthwise, t), IMAGE, True),
    # Each input element feeds fewer than 64 multiply-adds (a narrow output;
    # a conv's kh * kw * channels over its stride): quantizing per call costs
    # more than the int8 product saves (docs/int8.md, "Dynamic INT8"): FP32.
    "dynamic MatMul to a narrow output stays FP32": Int8Case(
        {}, ["_QcpuMatMul"], lambda t: tf.matmul(t, c(W_NARROW)), MATRIX, True),
    "dynamic strided Conv2D stays FP32": Int8Case(
        {}, ["_QcpuConv2D"], lambda t: tf.nn.conv2d(t, c(W_CONV), 2, "SAME"),
        IMAGE, True),
    # Attention's Q.K^T and P.V (two activations): quantizing both per call
    # costs more than the int8 matmul saves (docs/int8.md, "Attention"): FP32.
    "dynamic BatchMatMulV2 of two activations stays FP32": Int8Case(
        {}, ["Reshape", "Reshape", "_QcpuBatchMatMulV2", "_QcpuMul"],
        lambda t: tf.matmul(tf.reshape(t, [2, 2, 32]), tf.reshape(t, [2, 2, 32]) * 2.0, transpose_b=True),
        MATRIX, True),
    "static MatMul": Int8Case({"INT8 static MatMul": 1}, [Q, QMM], lambda t: tf.matmul(qdq(t), c(W_MM)), MATRIX,
                              False),
    "static fused MatMul": Int8Case(
        {"MatMul+BiasAdd+activation": 1, "INT8 static _QcpuFusedMatMul": 1}, [Q, QMM],
        lambda t: tf.nn.relu(tf.nn.bias_add(tf.matmul(qdq(t), c(W_MM)), c(B_MM))), MATRIX, False),
    "static Conv2D": Int8Case({"INT8 static Conv2D": 1}, [Q, QCONV], lambda t: conv(qdq(t)), IMAGE, False),
    "static fused Conv2D": Int8Case({"Conv+BiasAdd+activation": 1, "INT8 static _QcpuFusedConv2D": 1},
                                    [Q, QCONV], lambda t: block(conv, qdq(t)), IMAGE, False),
    # Depthwise layers run INT8 chained to their neighbours only: the first
    # outputs int8 in the next one's QDQ range.
    "static depthwise, chained": Int8Case(
        {"INT8 static DepthwiseConv2dNative": 2, "INT8 chained output": 1}, [Q, QDW, QDW],
        lambda t: depthwise(qdq(depthwise(qdq(t)), -4.0, 4.0), W_DW2), IMAGE, False),
    "static fused depthwise, chained": Int8Case(
        {"Conv+BiasAdd+activation": 1, "INT8 static _QcpuFusedDepthwiseConv2dNative": 1, "INT8 static Conv2D": 1,
         "INT8 chained output": 1}, [Q, QCONV, QDW],
        lambda t: conv(qdq(block(depthwise, qdq(t)), 0.0, 6.0)), IMAGE, False),
    "static BatchMatMulV2 of stored int8": Int8Case(
        {"INT8 static BatchMatMulV2": 1}, ["Reshape", Q, QMM],
        lambda t: tf.raw_ops.BatchMatMulV2(x=qdq(tf.reshape(t, [2, 2, 32])), y=stored_int8(W_STORED)), MATRIX, False),
    "static MatMul of captured int8": Int8Case(
        {"INT8 static MatMul": 1}, [Q, QMM],
        lambda t: tf.matmul(qdq(t), tf.quantization.dequantize(tf.bitcast(W_CAPTURED, tf.qint8), -0.5, 0.5,
                                                               mode="SCALED")), MATRIX, False),
    # The rows' indices come from x (Abs, Mul, Cast, FloorMod of one column).
    "embedding of a captured int8 table": Int8Case(
        {"INT8 embedding": 1},
        ["FloorMod", "_QcpuAbs", "_QcpuCast", "_QcpuDequantize", "_QcpuGatherV2", "_QcpuMul", "_QcpuStridedSlice"],
        lambda t: tf.quantization.dequantize(tf.bitcast(
            tf.gather(TABLE_CAPTURED, tf.cast(tf.abs(t[:, 0]) * 10, tf.int32) % 50), tf.qint8), -1.0, 1.0,
            mode="SCALED"),
        MATRIX, False),
    "embedding": Int8Case(
        {"INT8 embedding": 1},
        ["FloorMod", "_QcpuAbs", "_QcpuCast", "_QcpuDequantize", "_QcpuGatherV2", "_QcpuMul", "_QcpuStridedSlice"],
        lambda t: tf.quantization.dequantize(
            tf.gather(c(TABLE, tf.qint8), tf.cast(tf.abs(t[:, 0]) * 10, tf.int32) % 50), -1.0, 1.0, mode="SCALED"),
        MATRIX, False),
    "MaxPool on int8": Int8Case(
        {"Conv+BiasAdd+activation": 1, "INT8 static _QcpuFusedConv2D": 1, "INT8 MaxPool": 1, "INT8 chained output": 1,
         "INT8 static Conv2D": 1}, ["_QcpuMaxPool", Q, QCONV, QCONV],
        lambda t: conv(qdq(tf.nn.max_pool2d(block(conv, qdq(t)), 2, 2, "VALID"), 0.0, 6.0), W_CONV2), IMAGE, False),
    "chained output": Int8Case({"INT8 static Conv2D": 2, "INT8 chained output": 1}, [Q, QCONV, QCONV],
                               lambda t: conv(qdq(conv(qdq(t)), -4.0, 4.0), W_CONV2), IMAGE, False),
}


# ---- the quantizable ops' table (ops/quantizable_ops.h), as Python reads it ---
# Each op int8flow._native.quantizable_ops() lists, in the form int8flow.quantize
# saves: a FakeQuant input, then the op on int8 weights stored per channel along
# the axis the row implies. As is and with its transpose attr it becomes INT8;
# with a refused attr set, weights of another rank or a depthwise multiplier of
# 2, it stays FP32.
TABLE_GRAPHS = {  # op: x's shape, the weights' (channel axis last, or 2 if depthwise), its INT8 op
    "MatMul": ([4, 32], [32, 16], QMM),
    "BatchMatMulV2": ([2, 2, 32], [32, 16], QMM),
    "Conv2D": (IMAGE, [3, 3, 8, 8], QCONV),
    "DepthwiseConv2dNative": (IMAGE, [3, 3, 8, 1], QDW),
    "Conv3D": (VOLUME, [3, 3, 3, 8, 8], "_QcpuQuantizedConv3D"),
}
table_rng = np.random.default_rng(2)


def stored_int8_along(values: np.ndarray | tf.Tensor, limits: np.ndarray, axis: int) -> tf.Tensor:
    """A Const of `values`, or the bitcast of a captured int8 tensor."""
    q = tf.bitcast(values, tf.qint8) if isinstance(values, tf.Tensor) else c(values, tf.qint8)
    return tf.quantization.dequantize(q, c(-limits), c(limits), mode="SCALED", axis=axis, narrow_range=True)


def swap_last(shape: list[int]) -> list[int]:
    return [*shape[:-2], shape[-1], shape[-2]]


def table_case(op: str, x_shape: list[int], w_shape: list[int], axis: int, attrs: dict,
               int8_op: str | None, captured: bool = False) -> Int8Case:
    values = table_rng.integers(-127, 128, w_shape).astype(np.int8)
    stored = on_qcpu(values) if captured else values  # made here: in the body it would be a Const
    limits = np.linspace(0.25, 0.5, w_shape[axis], dtype=np.float32)  # distinct per channel
    raw_op, op_def = getattr(tf.raw_ops, op), op_def_registry.get(op)
    x_name, w_name = (a.name for a in op_def.input_arg[:2])
    def body(t: tf.Tensor) -> tf.Tensor:
        return raw_op(**{x_name: qdq(t), w_name: stored_int8_along(stored, limits, axis)},
                      **OP_ATTRS.get(op, {}), **attrs)
    if int8_op is None:
        return Int8Case({}, ["Dequantize", "FakeQuantWithMinMaxArgs", f"_Qcpu{op}"], body, x_shape, False)
    return Int8Case({f"INT8 static {op}": 1}, [Q, int8_op], body, x_shape, False)


def table_cases(row: dict) -> dict[str, Int8Case]:
    op = row["op"]
    if op not in TABLE_GRAPHS:  # a new row: its case fails, saying what to add
        def missing(t: tf.Tensor) -> tf.Tensor:
            raise KeyError(f"no graph for the quantizable op {op}: add it to golden_graphs.TABLE_GRAPHS")
        return {f"table {op}": Int8Case({}, [], missing, [1], False)}
    x_shape, w_shape, int8_op = TABLE_GRAPHS[op]
    axis = 2 if row["depthwise"] else len(w_shape) - 1
    cases = {f"table {op}": table_case(op, x_shape, w_shape, axis, {}, int8_op),
             f"table {op}, captured int8": table_case(op, x_shape, w_shape, axis, {}, int8_op, captured=True)}
    if row["transpose_weights_attr"]:
        cases[f"table {op}, {row['transpose_weights_attr']}"] = table_case(
            op, x_shape, swap_last(w_shape), 0, {row["transpose_weights_attr"]: True}, int8_op)
    for attr in row["refused_attrs"]:
        cases[f"table {op}, {attr} stays FP32"] = table_case(
            op, swap_last(x_shape), w_shape, axis, {attr: True}, None)
    if row["depthwise"]:
        cases[f"table {op}, multiplier 2 stays FP32"] = table_case(
            op, x_shape, [*w_shape[:-1], 2], axis, {}, None)
    elif row["weight_rank"]:  # a batch of weights, one per batch of x
        cases[f"table {op}, rank-{row['weight_rank'] + 1} weights stay FP32"] = table_case(
            op, x_shape, [x_shape[0], *w_shape], len(w_shape), {}, None)
    return cases


for quantizable in int8flow._native.quantizable_ops():
    INT8_CASES.update(table_cases(quantizable))


def check_int8_case(name: str, dump: Path) -> dict:
    case = INT8_CASES[name]
    x = int8_rng.uniform(-2, 2, case.shape).astype(np.float32)
    int8flow._native.set_quantize_dynamic(case.dynamic)
    try:
        run = run_through_pass(tf.function(case.body), [x], dump)
    finally:  # a failing dynamic case must not leave the static ones dynamic
        int8flow._native.set_quantize_dynamic(False)
    with tf.device(CPU):
        reference = tf.function(case.body)(x).numpy()
    return {"name": name, "expected_fired": case.fired, "fired": run.fired, "pass_errors": run.pass_errors,
            "expected_ops": sorted(case.ops), "ops": sorted(n.op for n in run.nodes),
            "rel_err": float(np.max(np.abs(run.output - reference)) / max(float(np.max(np.abs(reference))), 1e-30))}


def main(out: str) -> None:
    dump = Path(os.environ["INT8FLOW_DUMP_GRAPHS"])
    table = json.loads(int8flow._native.fusion_table())
    rng = np.random.default_rng(0)
    results = []
    for row in table:
        try:
            results.append(check_row(row, dump, rng))
        except Exception as e:  # one row's failure must not hide the others
            results.append({"name": row["name"], "error": f"{type(e).__name__}: {e}"[:2000]})
    int8 = []
    for name in INT8_CASES:
        try:
            int8.append(check_int8_case(name, dump))
        except Exception as e:
            int8.append({"name": name, "error": f"{type(e).__name__}: {e}"[:2000]})
    Path(out).write_text(json.dumps({"table": table, "results": results, "int8": int8,
                                     "int8_path": int8flow.cpu_features()["int8_path"]}))


if __name__ == "__main__":
    main(sys.argv[1])
