"""The INT8 peers int8flow is measured against: TFLite (LiteRT + XNNPACK) and ONNX Runtime.

Both start from the same Keras model and calibration batches as int8flow, at a
fixed batch size, and hand back runners that take and return float (or token
id) NumPy arrays, so their outputs compare directly with TensorFlow's.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]
T = TypeVar("T")


class Unavailable(Exception):
    """A variant cannot run here; str(e) is the one-line reason the table shows."""


@dataclass
class Prepared:
    """A variant ready to time: `make_runner()` gives a runner per client thread."""

    make_runner: Callable[[], Runner]
    artifact_bytes: int


def _frozen_serving_function(model, example: np.ndarray):
    """The model at a fixed input shape, its variables folded into constants.

    Keras 3 keeps weights (and layer state such as Normalization's mean) in
    resource variables: TFLite's int8 calibrator cannot read them and tf2onnx
    turns some into extra graph inputs, so both converters get a frozen graph.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec(example.shape, tf.as_dtype(example.dtype), name="x")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return convert_variables_to_constants_v2(serve.get_concrete_function())


def _step(what: str, action: Callable[[], T]) -> T:
    """Runs one conversion step; any failure becomes Unavailable naming the step."""
    try:
        return action()
    except Exception as e:  # a peer's converter can fail in any way; report, don't crash
        first_line = (str(e).strip().splitlines() or [""])[0][:200]
        raise Unavailable(f"{what} failed: {type(e).__name__}: {first_line}") from e


def prepare_tflite_int8(model, calibration: list[np.ndarray], batch: int, threads: int,
                        workdir: Path) -> Prepared:
    """Full-integer post-training quantization; float (or int32 id) input and output.

    Inputs and outputs stay float so the runner needs no rescaling; everything
    between is int8. Ops with no int8 kernel would fail the conversion rather
    than silently run in float, so such a model is reported, not hidden.
    """
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    frozen = _frozen_serving_function(model, calibration[0])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c] for c in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = workdir / "model_int8.tflite"
    path.write_bytes(_step("TFLite int8 conversion", converter.convert))

    def make_runner() -> Runner:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)  # XNNPACK by default
        interpreter.allocate_tensors()
        (input_detail,) = interpreter.get_input_details()
        output_index = interpreter.get_output_details()[0]["index"]

        def run(x: np.ndarray) -> np.ndarray:
            interpreter.set_tensor(input_detail["index"], x.astype(input_detail["dtype"], copy=False))
            interpreter.invoke()
            return interpreter.get_tensor(output_index).astype("float32")
        return run

    _step("TFLite interpreter", make_runner)  # fail at prepare time, not while timing
    return Prepared(make_runner, path.stat().st_size)


def prepare_onnxruntime_int8(model, calibration: list[np.ndarray], batch: int, threads: int,
                             workdir: Path) -> Prepared:
    """tf2onnx, then static QDQ quantization: u8 activations, per-channel s8 weights."""
    import onnxruntime as ort
    import tf2onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    frozen = _frozen_serving_function(model, calibration[0])
    float_path, int8_path = workdir / "model_fp32.onnx", workdir / "model_int8.onnx"
    _step("tf2onnx conversion", lambda: tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
        output_names=[t.name for t in frozen.outputs], opset=17, output_path=str(float_path)))
    # tf2onnx can write a model ONNX Runtime rejects (Keras' exact gelu uses
    # Erfc, which ONNX lacks): loading it is part of the conversion step.
    float_session = _step("tf2onnx conversion", lambda: ort.InferenceSession(
        str(float_path), providers=["CPUExecutionProvider"]))
    input_name = float_session.get_inputs()[0].name

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return {input_name: b} if (b := next(self._batches, None)) is not None else None

    _step("ONNX Runtime quantize_static", lambda: quantize_static(
        str(float_path), str(int8_path), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = _step("ONNX Runtime session", lambda: ort.InferenceSession(
        str(int8_path), options, providers=["CPUExecutionProvider"]))

    def make_runner() -> Runner:  # one session serves every thread: run() is thread-safe
        return lambda x: session.run(None, {input_name: x})[0].astype("float32")

    return Prepared(make_runner, int8_path.stat().st_size)
