"""Golden GraphDef tests of the graph pass: one small graph per fusion table row,
built from the row itself, and what the pass made of it.

    INT8FLOW_DUMP_GRAPHS=DIR python golden_graphs.py OUT.json

The table comes from the plugin (int8flow._native.fusion_table()), so a new
row gets a graph with no edit here, and one this builder cannot make fails.
Each graph holds exactly the row's nodes: each node takes the first op the
row allows, its captures are function arguments of shapes that pass the
row's checks (Consts where a check needs a Const: paddings, axes, epsilon,
a Reshape's shape), and a capture that must be >= 0 comes from a Relu.
TF's own Grappler rewrites are off, so the pass sees that graph as built.
For each row the JSON records the pass's GraphDef out (from the dump), the
fusions it counted, and the result's largest difference from the same graph
on TF's CPU.
"""
from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path

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
    "MaxPool": {"ksize": [1, 3, 3, 1], "strides": [1, 1, 1, 1]},
    "Mean": {"keep_dims": True},
}
SPATIAL_PADDINGS = [[0, 0], [1, 1], [1, 1], [0, 0]]  # 6x6 -> 8x8, then 3x3 VALID -> 6x6


def output_shape(row: dict) -> list[int]:
    """The shape of the row's product: [1, 6, 6, C] for convs and pools, [3, C]
    else, or [1, C] where only AddN may add (it takes no broadcast: a per-channel
    vector is then [1, C] too)."""
    ops = {op for node in row["nodes"] for op in node["ops"][:1]}
    if ops & {"Conv2D", "MaxPool"}:
        return [1, 6, 6, C]
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
    for node in row["nodes"]:
        op = node["ops"][0]
        for position, spec in enumerate(node["inputs"]):
            if not spec.startswith("$") or spec in args or spec in consts:
                continue
            k = kinds.get(spec, set())
            if k & {"spatial_paddings"}:
                consts[spec] = np.array(SPATIAL_PADDINGS, np.int32)
            elif "last_axis" in k:
                consts[spec] = np.array([-1], np.int32)
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
            elif op == "MatMul":
                args[spec] = [3, C] if position == 0 else [C, C]
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
    kwargs.update({k: v for k, v in {**node["bool_attrs"], **node["string_attrs"]}.items() if k in attr_names})
    if op_def.input_arg[0].number_attr:  # AddN: one list input
        kwargs[input_names[0]] = inputs
    else:
        kwargs.update(zip(input_names, inputs))
    result = raw_op(**kwargs)
    return result[0] if isinstance(result, (tuple, list)) else result


def build(row: dict, args: dict, consts: dict, non_negative: set, values: list[tf.Tensor],
          chosen: dict[str, str]) -> tf.Tensor:
    """The row's nodes in order, each its first op that takes these shapes
    (AddN adds equal shapes only), recorded in `chosen`; returns the root's output."""
    tensors: dict[str, tf.Tensor] = {}
    for name, value in zip(sorted(args), values):
        tensors[name] = tf.nn.relu(value) if name in non_negative else value
    for name, value in consts.items():
        tensors[name] = tf.constant(value)
    for node in row["nodes"]:
        inputs = [tf.constant(float(s[1:])) if s.startswith("=") else tensors[s] for s in node["inputs"]]
        for i, op in enumerate(node["ops"]):
            try:
                tensors[node["label"]] = make_node(op, node, inputs)
                chosen[node["label"]] = op
                break
            except ValueError:  # shapes this op does not take
                if i + 1 == len(node["ops"]):
                    raise
    return tensors[row["nodes"][-1]["label"]]


def compute_nodes(graph: graph_pb2.GraphDef) -> list[graph_pb2.NodeDef]:
    plumbing = {"_Arg", "_Retval", "Const", "Identity", "NoOp"}
    return [n for n in graph.node if n.op not in plumbing]


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

    def changed(counts: str, before: dict) -> dict:
        after = int8flow.stats()[counts]
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}

    before_files = set(dump.glob("*_after.pb"))
    fusions, errors = int8flow.stats()["fusions"], int8flow.stats()["pass_errors"]
    got = traced(QCPU)(*arrays).numpy()
    fired, failed = changed("fusions", fusions), changed("pass_errors", errors)
    graphs = []
    for path in sorted(set(dump.glob("*_after.pb")) - before_files):
        graph = graph_pb2.GraphDef.FromString(path.read_bytes())
        graphs.append(compute_nodes(graph))
    # The function's body: the dumped graph with the most compute nodes.
    body = max(graphs, key=len, default=[])
    reference = traced(CPU)(*arrays).numpy()
    return {
        "name": row["name"],
        "fired": fired,
        "pass_errors": failed,
        "chosen": chosen,
        "ops": sorted(n.op for n in body),
        "devices": sorted({n.device.split("/")[-1] for n in body if n.device}),
        "fused_ops": [[s.decode() for s in n.attr["fused_ops"].list.s] for n in body if "fused_ops" in n.attr],
        "relu_inputs": sorted(non_negative),
        "max_err": float(np.max(np.abs(got - reference))) if got.size else 0.0,
        "scale": float(np.max(np.abs(reference))) if reference.size else 0.0,
    }


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
    Path(out).write_text(json.dumps({"table": table, "results": results}))


if __name__ == "__main__":
    main(sys.argv[1])
