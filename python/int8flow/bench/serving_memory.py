"""`int8flow bench --serving-memory`: what serving a variant's saved artifact
holds in a process of its own, as a server would load it.

A worker's RSS includes building the Keras model and converting it (the FP32
weights, a quantizer's or converter's graphs). Here a fresh process loads only
the artifact the variant saved (`peers.Artifact`: a SavedModel, a .tflite, an
.onnx or an OpenVINO IR) with the variant's environment and threads, answers
CALLS calls on the bench's input, and reports its RSS: before the runtime is
imported, once the artifact is loaded, after serving, and the peak. A stock-TF
variant loads its SavedModel with INT8FLOW_DISABLE=1, as its worker ran.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from int8flow.bench import peers
from int8flow.bench.worker import MARKER, configure_environment, reply, resident_bytes, run_child

CALLS = 20
TIMEOUT_S = 600


def measure(config: dict[str, Any], log_path: Path) -> dict[str, Any]:
    """Runs the measuring process for one row's artifact (`config`: model,
    batch, variant, threads, artifact); its figures, or {"error": why}."""
    with open(log_path, "w") as log:
        try:
            done = subprocess.run([sys.executable, "-m", "int8flow.bench.serving_memory", json.dumps(config)],
                                  stdout=subprocess.PIPE, stderr=log, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"error": f"serving memory: over {TIMEOUT_S} s; see {log_path}"}
    replies = [json.loads(line[len(MARKER):]) for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if not replies or "error" in replies[-1]:
        why = replies[-1]["error"] if replies else f"rc={done.returncode}"
        return {"error": f"serving memory: {why}; see {log_path}"}
    return replies[-1]


def _runner(artifact: dict[str, Any], threads: int) -> Any:
    """A callable on one NumPy batch, from the artifact alone, made as the bench's runners are."""
    runtime, path, options = artifact["runtime"], artifact["path"], artifact.get("options", {})
    if runtime == "saved_model":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        signature = tf.saved_model.load(path).signatures["serving_default"]
        (key,) = signature.structured_input_signature[1]
        return lambda x: signature(**{key: tf.constant(x)})
    if runtime == "tflite":
        return peers.tflite_runner(Path(path), threads)
    if runtime == "onnxruntime":
        return peers.onnxruntime_runner(Path(path), threads)
    if runtime == "openvino":
        import openvino as ov  # type: ignore[import-untyped]

        return peers.openvino_runner(ov.Core().compile_model(path, "CPU", options))
    raise ValueError(f"unknown runtime {runtime!r}")


def main(config: dict[str, Any]) -> None:
    configure_environment(config)
    from int8flow.bench.models import MODELS

    runtime = config["artifact"]["runtime"]
    x = MODELS[config["model"]].make_inputs(config["batch"], 0)
    before = resident_bytes()
    run = _runner(config["artifact"], config["threads"])
    loaded = resident_bytes()
    if runtime == "saved_model":  # what QCPU ran, so a fallback cannot pass for the variant's figure
        import int8flow

        int8flow.record_op_stats(True)
    for _ in range(CALLS):
        run(x)
    figures: dict[str, Any] = {"runtime": runtime, "tensorflow_imported": "tensorflow" in sys.modules,
                               "before_load_bytes": before, "loaded_bytes": loaded,
                               "rss_bytes": resident_bytes(), "peak_rss_bytes": resident_bytes("VmHWM")}
    if runtime == "saved_model":
        ops = int8flow.stats()["ops"].values()
        figures.update(qcpu_active=int8flow.is_loaded(),
                       compute_ms={p: sum(op[f"{p}_ms"] for op in ops) for p in ("int8", "bf16", "fp32")})
    reply(**figures)


if __name__ == "__main__":
    run_child(main)
