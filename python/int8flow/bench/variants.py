"""The benchmark variants: what each one runs and whether it needs the plugin.

Each variant turns a Keras model into `Prepared` runners inside its own worker
process (see worker.py), so plugin and no-plugin runs never share a process.
"""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from int8flow.bench.peers import (Artifact, Prepared, Unavailable, prepare_onnxruntime_int8, prepare_openvino,
                                  prepare_tflite_int8)

if TYPE_CHECKING:
    import keras  # annotations only: importing keras imports TensorFlow

REFERENCE = "tf-function"  # every ratio and accuracy figure is relative to this row

PrepareFn = Callable[["keras.Model", list[np.ndarray], int, int, Path], Prepared]


@dataclass(frozen=True)
class Variant:
    name: str
    plugin: bool  # False: the worker runs with INT8FLOW_DISABLE=1 (stock TensorFlow)
    prepare: PrepareFn
    description: str
    env: dict[str, str] = field(default_factory=dict)  # set before TensorFlow is imported


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _saved_model(model: keras.Model, workdir: Path) -> Artifact:
    """The model as Keras exports it for serving: what an FP32 server loads."""
    path = workdir / "saved_model"
    shutil.rmtree(path, ignore_errors=True)
    model.export(str(path), format="tf_saved_model", verbose=False)
    return Artifact("saved_model", path)


def _tf_function(model, calibration, batch, threads, workdir) -> Prepared:
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), jit_compile=False)
    artifact = _saved_model(model, workdir)
    return Prepared(lambda: (lambda x: call(x).numpy()), _folder_bytes(artifact.path), artifact=artifact)


def _keras_predict(model, calibration, batch, threads, workdir) -> Prepared:
    # Keras' default jit_compile="auto": XLA on stock CPU, skipped on QCPU.
    artifact = _saved_model(model, workdir)
    return Prepared(lambda: (lambda x: model.predict(x, batch_size=batch, verbose=0)),
                    _folder_bytes(artifact.path), artifact=artifact)


def _needs_plugin(prepare: PrepareFn) -> PrepareFn:
    def prepare_on_qcpu(model, calibration, batch, threads, workdir) -> Prepared:
        import int8flow

        if not int8flow.is_loaded():
            raise Unavailable(f"QCPU is not active: {int8flow.load_state()['reason'] or 'plugin not loaded'}")
        return prepare(model, calibration, batch, threads, workdir)
    return prepare_on_qcpu


def _recording_op_stats(prepare: PrepareFn) -> PrepareFn:
    # Every kernel records its op stats: next to int8flow-fp32 (where each pays
    # one atomic load), this bounds what profiling support costs when off.
    def prepare_recording(model, calibration, batch, threads, workdir) -> Prepared:
        import int8flow

        int8flow.record_op_stats(True)
        return prepare(model, calibration, batch, threads, workdir)
    return prepare_recording


def _computes_in(precision: str, prepare: PrepareFn) -> PrepareFn:
    # The same tf.function, its matmuls and convolutions run in `precision` by the
    # variant's environment (INT8FLOW_QUANTIZE=dynamic, INT8FLOW_PRECISION=bf16).
    def prepare_in_precision(model, calibration, batch, threads, workdir) -> Prepared:
        import int8flow

        if precision == "bf16" and not int8flow.bf16_enabled():
            raise Unavailable(f"no native bf16 in oneDNN's {int8flow.cpu_features()['onednn_isa']} ISA here")
        return dataclasses.replace(prepare(model, calibration, batch, threads, workdir), precision=precision)
    return prepare_in_precision


def _static_int8(model, calibration, batch, threads, workdir) -> Prepared:
    import int8flow

    # quantize's defaults: what a user gets, and what the accuracy tests hold to.
    quantized = int8flow.quantize(model, np.concatenate(calibration), verbose=False)
    path = workdir / "saved_model_int8"
    shutil.rmtree(path, ignore_errors=True)
    quantized.save(path)  # the artifact: a QDQ SavedModel
    return Prepared(lambda: (lambda x: quantized(x).numpy()), _folder_bytes(path), "int8",
                    Artifact("saved_model", path))


VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("tf-predict", False, _keras_predict, "stock TF, Keras predict (auto-XLA)"),
    Variant(REFERENCE, False, _tf_function, "stock TF, tf.function without XLA (the reference)"),
    Variant("int8flow-predict", True, _needs_plugin(_keras_predict), "int8flow FP32, Keras predict"),
    Variant("int8flow-fp32", True, _needs_plugin(_tf_function), "int8flow FP32, tf.function"),
    Variant("int8flow-fp32-opstats", True, _needs_plugin(_recording_op_stats(_tf_function)),
            "int8flow FP32, tf.function, recording op stats"),
    Variant("int8flow-bf16", True, _needs_plugin(_computes_in("bf16", _tf_function)),
            "int8flow bf16 matmuls and convolutions (INT8FLOW_PRECISION=bf16), tf.function",
            {"INT8FLOW_PRECISION": "bf16"}),
    Variant("int8flow-int8-dynamic", True, _needs_plugin(_computes_in("int8", _tf_function)),
            "int8flow INT8, dynamic activation ranges (INT8FLOW_QUANTIZE=dynamic), tf.function",
            {"INT8FLOW_QUANTIZE": "dynamic"}),
    Variant("int8flow-int8-static", True, _needs_plugin(_static_int8),
            "int8flow INT8, calibrated (int8flow.quantize, default options), its QDQ graph"),
    Variant("tflite-int8", False, prepare_tflite_int8, "TFLite full-integer INT8, LiteRT + XNNPACK"),
    Variant("onnxruntime-int8", False, prepare_onnxruntime_int8, "ONNX Runtime INT8 (tf2onnx, QDQ)"),
    Variant("openvino-fp32", False, prepare_openvino("f32"), "OpenVINO CPU, f32 inference precision"),
    Variant("openvino-default", False, prepare_openvino("default"),
            "OpenVINO CPU, its default precision (bf16 where the CPU has it)"),
    Variant("openvino-int8", False, prepare_openvino("int8"), "OpenVINO CPU, INT8 by NNCF post-training quantize"),
]}
