"""Python wrappers for int8flow's INT8 ops on QCPU.

TF keeps ops that a plugin registers out of `tf.raw_ops`, so these call them by
name, in graphs (`tf.function`) and eagerly. A quantized tensor `q` stands for
`scale * (q - zero_point)`. Weights are s8, symmetric, one scale per output
channel (`quantize_weights`); activations u8 (asymmetric) or s8.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

ACTIVATIONS = {"relu": "Relu", "relu6": "Relu6", "elu": "Elu", "leaky_relu": "LeakyRelu",
               "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "_QcpuGeluExact",
               "gelu_tanh": "_QcpuGeluTanh", "swish": "_QcpuSwish"}


def quantize_weights(w: np.ndarray, reduce_range: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (last axis) symmetric s8 weights and their float32 scales.

    `reduce_range` uses 7 bits ([-63, 63]), as ONNX Runtime does for u8·s8 on CPUs
    without VNNI. A channel of zeros gets scale 0 (its weights stay 0).
    """
    w = np.asarray(w, np.float32)
    levels = 63.0 if reduce_range else 127.0
    scales = (np.abs(w.reshape(-1, w.shape[-1])).max(axis=0) / levels).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
    return np.clip(np.round(w / safe), -levels, levels).astype(np.int8), scales


def quantize(x: Any, dtype: Any = "uint8", scale: float | None = None,
             zero_point: int = 0) -> tuple[Any, Any, Any]:
    """`(q, scale, zero_point)`: x in u8/s8. With no `scale`, the range is x's own,
    found per call (u8 asymmetric, s8 symmetric). NaN becomes the zero point and ±Inf
    saturates, except that a per-call range over NaN or ±Inf gives scale NaN, which
    `dequantize` and the quantized ops turn into all-NaN outputs."""
    import tensorflow as tf

    attrs = {"T": tf.as_dtype(dtype)}
    if scale is not None:
        attrs.update(mode="static", static_scale=float(scale), static_zero_point=int(zero_point))
    return tuple(_run("_QcpuQuantize", [x], attrs))


def dequantize(q: Any, scale: Any, zero_point: Any) -> Any:
    """Float32 `scale * (q - zero_point)`."""
    import tensorflow as tf

    return _run("_QcpuDequantize", [q, tf.cast(scale, tf.float32), tf.cast(zero_point, tf.int32)], {})[0]


def quantized_matmul(a: Any, b: np.ndarray | Any, a_scale: Any, a_zero_point: Any, b_scales: Any,
                     *, transpose_b: bool = False, **fused: Any) -> Any:
    """`dequant(a) @ dequant(b)` on int8 engines, then the `fused` ops (see `_quantized`).

    `a`: u8/s8 [..., K]; `b`: s8 [K, N] ([N, K] with `transpose_b`).
    """
    return _quantized("_QcpuQuantizedMatMul", a, b, a_scale, a_zero_point, b_scales,
                      {"transpose_b": transpose_b}, **fused)


def quantized_batch_matmul(x: Any, y: Any, x_scale: Any, x_zero_point: Any, y_scales: Any, *,
                           adj_x: bool = False, adj_y: bool = False, **fused: Any) -> Any:
    """BatchMatMulV2 of u8/s8 `x` [..., M, K] and s8 `y` [..., K, N] (batch dims
    broadcast; `adj_*` transposes), then the `fused` ops (see `_quantized`). For
    attention, quantize `y` per call: `quantize(k, "int8")`."""
    return _quantized("_QcpuQuantizedBatchMatMul", x, y, x_scale, x_zero_point, y_scales,
                      {"adj_x": adj_x, "adj_y": adj_y}, **fused)


def quantized_conv2d(x: Any, filter: np.ndarray | Any, x_scale: Any, x_zero_point: Any,
                     filter_scales: Any, *, strides: int | Sequence[int] = 1, padding: str = "SAME",
                     dilations: int | Sequence[int] = 1, depthwise: bool = False, **fused: Any) -> Any:
    """An NHWC convolution (depthwise with `depthwise`) of u8/s8 `x` with s8 `filter`
    (TF's layout), then the `fused` ops (see `_quantized`)."""
    def four(v: int | Sequence[int]) -> list[int]:
        return [1, v, v, 1] if isinstance(v, int) else [1, *v, 1]
    op = "_QcpuQuantizedDepthwiseConv2dNative" if depthwise else "_QcpuQuantizedConv2D"
    return _quantized(op, x, filter, x_scale, x_zero_point, filter_scales,
                      {"strides": four(strides), "padding": padding, "dilations": four(dilations)},
                      **fused)


def _quantized(op: str, x: Any, w: Any, x_scale: Any, x_zero_point: Any, w_scales: Any,
               attrs: dict[str, Any], *, bias: Any = None, scale: Any = None, addend: Any = None,
               activation: str | None = None, out_dtype: Any = "float32", out_scale: float = 1.0,
               out_zero_point: int = 0) -> Any:
    """Fused ops, in order: `bias` (a vector per output channel), `scale` (a vector:
    a folded BatchNorm), `addend` (shaped like the result: a float tensor, or an
    int8 one as `(q, scale, zero_point)` with Python numbers for its scale and zero
    point), `activation` (a key of ACTIVATIONS). `out_dtype` uint8/int8
    requantizes the result with `out_scale` and `out_zero_point`."""
    import tensorflow as tf

    fused_ops, args, addend_attrs = [], [], {}
    for kind, value in (("BiasAdd", bias), ("Scale", scale), ("Add", addend)):
        if value is None:
            continue
        fused_ops.append(kind)
        if kind == "Add" and isinstance(value, tuple):
            q, q_scale, q_zero_point = value
            args.append(tf.convert_to_tensor(q))
            addend_attrs = {"addend_scale": float(q_scale), "addend_zero_point": int(q_zero_point)}
        else:
            args.append(tf.cast(value, tf.float32))
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        fused_ops.append(ACTIVATIONS[activation])
    attrs = dict(attrs, fused_ops=fused_ops, Tout=tf.as_dtype(out_dtype), out_scale=float(out_scale),
                 out_zero_point=int(out_zero_point), **addend_attrs)
    inputs = [x, tf.convert_to_tensor(w, tf.int8), tf.cast(x_scale, tf.float32),
              tf.cast(x_zero_point, tf.int32), tf.cast(w_scales, tf.float32), args]
    return _run(op, inputs, attrs)[0]


def _run(op_type: str, inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    """Runs our op `op_type`: in the graph being built, or eagerly."""
    import tensorflow as tf
    from tensorflow.python.eager import context, execute
    from tensorflow.python.framework import op_def_library, op_def_registry

    op_def = op_def_registry.get(op_type)
    if op_def is None:
        import int8flow
        raise RuntimeError(f"{op_type} is not registered: the int8flow plugin is not active "
                           f"({int8flow.load_state().get('reason') or 'TensorFlow has not loaded it'})")
    keywords = {a.name: v for a, v in zip(op_def.input_arg, inputs)}
    keywords["name"] = op_type.lstrip("_")  # a node name may not start with "_"
    for attr in op_def.attr:  # _apply_op_helper wants every non-inferred attr spelled out
        if attr.name not in attrs and attr.HasField("default_value") and attr.type != "type":
            attrs[attr.name] = _python_value(attr.default_value)
    if not tf.executing_eagerly():
        return list(op_def_library._apply_op_helper(op_type, **keywords, **attrs)[2].outputs)
    # Eagerly: let a scratch graph infer the type attrs, then execute with them.
    flat = [tf.convert_to_tensor(t) for x in inputs for t in (x if isinstance(x, list) else [x])]
    with tf.Graph().as_default():
        placeholders = iter([tf.compat.v1.placeholder(t.dtype, t.shape) for t in flat])
        graph_keywords = {k: ([next(placeholders) for _ in v] if isinstance(v, list) else
                              next(placeholders) if k != "name" else v) for k, v in keywords.items()}
        node = op_def_library._apply_op_helper(op_type, **graph_keywords, **attrs)[2]
        flat_attrs: list[Any] = []
        for name in node.node_def.attr:
            value = node.get_attr(name)
            flat_attrs += [name, value.as_datatype_enum if isinstance(value, tf.DType) else value]
        num_outputs = len(node.outputs)
    return list(execute.execute(op_type.encode(), num_outputs, flat, tuple(flat_attrs), context.context()))


def _python_value(value: Any) -> Any:
    """An AttrValue default as _apply_op_helper takes it."""
    kind = value.WhichOneof("value")
    if kind == "list":
        return list(value.list.s) or list(value.list.i) or list(value.list.f)
    return getattr(value, kind)
