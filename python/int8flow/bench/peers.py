"""The peers int8flow is measured against: TFLite (LiteRT + XNNPACK), ONNX Runtime
and OpenVINO (FP32, its default precision, and INT8 by NNCF).

Each starts from the same Keras model and calibration batches as int8flow, at a
fixed batch size, and hands back runners that take and return float (or token
id) NumPy arrays, so their outputs compare directly with TensorFlow's.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]
T = TypeVar("T")


class Unavailable(Exception):
    """A variant cannot run here; str(e) is the one-line reason the table shows."""


@dataclass(frozen=True)
class Artifact:
    """What a variant serves from, which a process of its own can load alone
    (serving_memory.py): a `runtime` (saved_model, tflite, onnxruntime or
    openvino) and the file or folder; `options`: OpenVINO's compile config."""

    runtime: str
    path: Path
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "path": str(self.path), "options": self.options}


@dataclass
class Prepared:
    """A variant ready to time: `make_runner()` gives a runner per client thread.
    `precision` is what its matmuls and convolutions compute in (f32, int8, bf16,
    f16): the bench rates the row against this machine's peak for it."""

    make_runner: Callable[[], Runner]
    artifact_bytes: int
    precision: str = "f32"
    artifact: Artifact | None = None


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


def _peer(module: str) -> Any:
    """The peer's Python module, or Unavailable when the bench extra is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"{module} is not installed ({e}); pip install 'int8flow[bench]'") from e


def tflite_runner(path: Path, threads: int) -> Runner:
    """A LiteRT interpreter (XNNPACK by default) on the .tflite at `path`: a runner for one thread."""
    litert = _peer("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    output_index = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(input_detail["index"], x.astype(input_detail["dtype"], copy=False))
        interpreter.invoke()
        return interpreter.get_tensor(output_index).astype("float32")
    return run


def onnxruntime_runner(path: Path, threads: int) -> Runner:
    """An ONNX Runtime CPU session on the .onnx at `path`: a runner any thread may call (run() is thread-safe)."""
    ort = _peer("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda x: session.run(None, {input_name: x})[0].astype("float32")


def openvino_runner(compiled: Any) -> Runner:
    """An infer request of the compiled OpenVINO model: a runner for one thread."""
    request, output = compiled.create_infer_request(), compiled.output(0)
    return lambda x: request.infer({0: x})[output].astype("float32")


def prepare_tflite_int8(model, calibration: list[np.ndarray], batch: int, threads: int,
                        workdir: Path) -> Prepared:
    """Full-integer post-training quantization; float (or int32 id) input and output.

    Inputs and outputs stay float so the runner needs no rescaling; everything
    between is int8. Ops with no int8 kernel would fail the conversion rather
    than silently run in float, so such a model is reported, not hidden.
    """
    import tensorflow as tf

    _peer("ai_edge_litert.interpreter")  # missing: unavailable, before the conversion's minutes
    frozen = _frozen_serving_function(model, calibration[0])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c] for c in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = workdir / "model_int8.tflite"
    path.write_bytes(_step("TFLite int8 conversion", converter.convert))

    def make_runner() -> Runner:
        return tflite_runner(path, threads)

    _step("TFLite interpreter", make_runner)  # fail at prepare time, not while timing
    return Prepared(make_runner, path.stat().st_size, "int8", Artifact("tflite", path))


def prepare_onnxruntime_int8(model, calibration: list[np.ndarray], batch: int, threads: int,
                             workdir: Path) -> Prepared:
    """tf2onnx, then static QDQ quantization: u8 activations, per-channel s8 weights."""
    ort, tf2onnx = _peer("onnxruntime"), _peer("tf2onnx")
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
    runner = _step("ONNX Runtime session", lambda: onnxruntime_runner(int8_path, threads))
    return Prepared(lambda: runner, int8_path.stat().st_size, "int8", Artifact("onnxruntime", int8_path))


def prepare_openvino(precision: Literal["f32", "default", "int8"]) -> Callable[..., Prepared]:
    """OpenVINO's CPU plugin on the model converted by `ov.convert_model`.

    `precision` "f32" pins f32 inference (CPUs with bf16 would otherwise run it),
    "default" keeps OpenVINO's own choice (the row reports which it took), and
    "int8" quantizes with `nncf.quantize` on the calibration batches (the
    transformer preset for a model with attention) and runs the rest in f32.
    Threads and the latency hint are set as its benchmark_app sets them.
    """
    def prepare(model, calibration: list[np.ndarray], batch: int, threads: int, workdir: Path) -> Prepared:
        ov = _peer("openvino")
        frozen = _frozen_serving_function(model, calibration[0])
        converted = _step("OpenVINO conversion", lambda: ov.convert_model(frozen.graph.as_graph_def()))
        if precision == "int8":
            converted = _step("NNCF quantize", lambda: _nncf_int8(converted, model, calibration))
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        if precision != "default":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = _step("OpenVINO compile", lambda: ov.Core().compile_model(converted, "CPU", config))
        path = workdir / "model.xml"
        ov.save_model(converted, str(path), compress_to_fp16=False)
        # An int8 model's quantized layers run int8 whatever the hint says.
        ran_in = "int8" if precision == "int8" else compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        size = path.stat().st_size + path.with_suffix(".bin").stat().st_size
        return Prepared(lambda: openvino_runner(compiled), size, ran_in, Artifact("openvino", path, config))
    return prepare


def _nncf_int8(converted, model, calibration: list[np.ndarray]):
    nncf = _peer("nncf")
    attention = any(type(layer).__name__ == "MultiHeadAttention" for layer in model.layers)
    # subset_size counts samples (NNCF divides it by the batch size it sees): all of them.
    return nncf.quantize(converted, nncf.Dataset(calibration), subset_size=sum(len(c) for c in calibration),
                         model_type=nncf.ModelType.TRANSFORMER if attention else None)
