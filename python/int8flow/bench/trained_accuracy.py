"""`int8flow bench --trained`: each variant's accuracy on models trained on real data.

Each variant's answers on the models of trained.py, against stock TF's FP32
`tf.function` on the same weights. The models train once per run, in one
stock-TF process, and save their weights to <out>/trained/. Each variant then
runs in its own worker process, as in the speed bench (worker.py): it rebuilds
the model from those weights, calibrates on the first CALIBRATION_SAMPLES
training samples, in batches of BATCH, and returns its outputs on the
evaluation and test sets. masked_encoder's pooled embedding is a model of its
own here, `masked_encoder_embedding`, judged by cosine and nearest neighbours
instead of classes. Nothing is timed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from int8flow.bench import report
from int8flow.bench.runner import (Row, accuracy, cosine_figures, fetch_outputs, known_names, start_worker,
                                   stop_worker, with_reference)
from int8flow.bench.trained import TRAINED, neighbours_kept
from int8flow.bench.variants import REFERENCE, VARIANTS
from int8flow.bench.worker import MARKER, configure_environment, reply

# The variants whose answers can differ from FP32's, and FP32 on QCPU beside them.
TRAINED_VARIANTS = (REFERENCE, "int8flow-fp32", "int8flow-bf16", "int8flow-int8-dynamic", "int8flow-int8-static",
                    "tflite-int8", "onnxruntime-int8", "openvino-int8")
BATCH = 64  # the peers run at a fixed batch size
CALIBRATION_SAMPLES = 512  # 8 batches, as many as the speed bench calibrates on
EMBEDDING = "masked_encoder_embedding"
TRAIN_TIMEOUT_S = 1200  # the three models take about 3 minutes on 2 cores


@dataclass(frozen=True)
class BenchModel:
    name: str  # the table's model column
    trained: str  # the TRAINED model whose weights it runs
    embedding: bool  # masked_encoder's embedding: judged by cosine and neighbours, no classes


def bench_models(trained_names: list[str]) -> list[BenchModel]:
    models = []
    for name in trained_names:
        models.append(BenchModel(name, name, False))
        if name == "masked_encoder":
            models.append(BenchModel(EMBEDDING, name, True))
    return models


@dataclass
class TrainedSettings:
    models: list[str]
    variants: list[str]
    out: Path
    threads: int
    batch: int = BATCH
    calibration_samples: int = CALIBRATION_SAMPLES


def train_models(names: list[str], folder: Path, threads: int) -> dict[str, str]:
    """Trains each model once, in a process of its own on stock TF, saving
    <folder>/<name>.weights.h5; returns the models that failed, with why."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"models": names, "folder": str(folder), "threads": threads}
    with open(folder / "train.log", "w") as log:
        try:
            done = subprocess.run([sys.executable, "-m", "int8flow.bench.trained_accuracy", json.dumps(config)],
                                  stdout=subprocess.PIPE, stderr=log, text=True, timeout=TRAIN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return dict.fromkeys(names, f"training took over {TRAIN_TIMEOUT_S} s")
    replies = [line[len(MARKER):] for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not replies:
        return dict.fromkeys(names, f"training failed (rc={done.returncode}); see {folder / 'train.log'}")
    return json.loads(replies[-1])["failed"]


def _train_child(config: dict[str, Any]) -> None:
    """In the training process: stock TF, as the reference row runs, so the weights owe nothing to int8flow."""
    configure_environment({"variant": REFERENCE, "threads": config["threads"]})
    from int8flow.bench import trained

    failed = {}
    for name in config["models"]:
        try:
            spec = trained.TRAINED[name]
            trained.train(spec, spec.data()).save_weights(str(Path(config["folder"]) / f"{name}.weights.h5"))
        except Exception:  # one model's failure is its rows' note, not the run's end
            traceback.print_exc()
            failed[name] = traceback.format_exc().strip().splitlines()[-1][:200]
    reply(failed=failed)


def trained_figures(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], labels: np.ndarray,
                    embedding: bool) -> dict[str, float]:
    """A variant's figures against the reference's outputs: cosine on the
    evaluation set, and top-1 agreement there and test accuracy (a classifier)
    or the clear nearest neighbours kept (an embedding)."""
    if embedding:
        return {**cosine_figures(outputs["eval"], reference["eval"]),
                "neighbours_kept": neighbours_kept(reference["eval"], outputs["eval"])}
    test_accuracy = float(np.mean(outputs["test"].argmax(-1) == labels))
    reference_accuracy = float(np.mean(reference["test"].argmax(-1) == labels))
    return {**accuracy(outputs["eval"], reference["eval"]), "test_accuracy": test_accuracy,
            "accuracy_drop": reference_accuracy - test_accuracy}


def bench_model(model: BenchModel, weights: Path, s: TrainedSettings, progress: report.Progress) -> list[Row]:
    """Each variant of one model, one worker at a time (nothing is timed, so none waits for the others)."""
    rows = {v: Row(model.name, s.batch, v) for v in s.variants}
    config = {"threads": s.threads, "warmup": 1, "trained": model.trained, "embedding": model.embedding,
              "weights": str(weights), "calibration_samples": s.calibration_samples}
    outputs = {}
    for variant, row in rows.items():
        progress.step(f"{model.name} {variant}")
        worker = start_worker(row, config, s.out)
        if worker is None:
            continue
        try:
            evaluated = fetch_outputs(worker)
            if evaluated is None:
                row.status, row.reason = "error", f"no outputs; see {worker.log_path}"
            else:
                outputs[variant] = evaluated
                stop_worker(worker, row)
        finally:
            worker.close()
    if REFERENCE not in outputs:
        for row in rows.values():
            if row.status == "ok":
                row.status, row.reason = "error", "no reference outputs to compare with"
        return list(rows.values())
    labels = TRAINED[model.trained].data().y_test
    for variant, evaluated in outputs.items():
        rows[variant].figures.update(trained_figures(evaluated, outputs[REFERENCE], labels, model.embedding))
    return list(rows.values())


def failed_rows(model: BenchModel, s: TrainedSettings, reason: str) -> list[Row]:
    return [Row(model.name, s.batch, v, "error", f"training failed: {reason}") for v in s.variants]


def parse(argv: list[str] | None) -> TrainedSettings:
    p = argparse.ArgumentParser(prog="int8flow bench --trained", description=__doc__.splitlines()[0])
    p.add_argument("--trained", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--models", default=",".join(TRAINED),
                   help=f"comma-separated, from {', '.join(TRAINED)} (default: all; masked_encoder adds "
                   f"{EMBEDDING})")
    p.add_argument("--variants", default=",".join(TRAINED_VARIANTS),
                   help=f"comma-separated, from {', '.join(VARIANTS)} (default: {', '.join(TRAINED_VARIANTS)})")
    p.add_argument("--out", default="results", help="output folder (default: results/)")
    p.add_argument("--threads", type=int, default=2, help="threads per variant (default: 2)")
    a = p.parse_args(argv)
    return TrainedSettings(known_names(p, a.models, TRAINED), with_reference(known_names(p, a.variants, VARIANTS)),
                           Path(a.out), a.threads)


def main(argv: list[str] | None = None) -> int:
    s = parse(argv)
    (s.out / "logs").mkdir(parents=True, exist_ok=True)
    models = bench_models(s.models)
    progress = report.Progress(1 + len(models) * len(s.variants))
    progress.step(f"training {', '.join(s.models)}")
    folder = s.out / "trained"
    failed = train_models(s.models, folder, s.threads)
    rows = []
    for model in models:
        if model.trained in failed:
            rows += failed_rows(model, s, failed[model.trained])
        else:
            rows += bench_model(model, folder / f"{model.trained}.weights.h5", s, progress)
    progress.done()
    results = report.write_trained(rows, s, s.out)
    print(report.trained_table(results))
    print(f"\nresults: {s.out / 'trained.json'}, {s.out / 'trained.md'}")
    return 0 if any(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":  # the training process (train_models)
    _train_child(json.loads(sys.argv[1]))
