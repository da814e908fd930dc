"""`int8flow bench`: every variant in its own process, timed interleaved.

For each (model, batch) all variant workers are started and kept alive; then
timing rounds go A B C A B C ..., so machine drift hits every variant alike
and the ratios to the stock tf.function row from the same run hold.
"""
from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from int8flow.bench import report, roofline, serving_memory
from int8flow.bench.models import MODELS
from int8flow.bench.variants import REFERENCE, VARIANTS
from int8flow.bench.worker import MARKER
from int8flow.quantization.accuracy import agreement, cosines, rows

DEFAULT_MODELS = "resnet50,mobilenetv2,efficientnetb0,bert,mlp"
PREPARE_TIMEOUT_S = 900  # converting ResNet50 for a peer can take minutes on 2 cores
REQUEST_TIMEOUT_S = 600


@dataclass
class Settings:
    models: list[str]
    batches: list[int]
    variants: list[str]
    out: Path
    threads: int
    warmup: int
    rounds: int
    runs_per_round: int
    load_threads: int
    load_seconds: float
    serving_memory: bool = False


class _Defaults(TypedDict):
    """What --quick (or its absence) sets when no flag does."""

    rounds: int
    runs: int
    warmup: int
    load_threads: int
    load_seconds: float


class Worker:
    """A variant's process; requests and replies are JSON lines."""

    def __init__(self, config: dict[str, Any], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "int8flow.bench.worker", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None  # both PIPE
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stdout:
            if line.startswith(MARKER):
                self._replies.put(json.loads(line[len(MARKER):]))
        self._replies.put(None)  # the process ended

    def receive(self, timeout: float) -> dict[str, Any]:
        try:
            message = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.close()
            return {"error": f"no reply within {timeout:.0f} s"}
        if message is None:
            return {"error": f"worker exited (rc={self._proc.wait()}); see {self._log.name}"}
        return message

    def request(self, timeout: float = REQUEST_TIMEOUT_S, **message: Any) -> dict[str, Any]:
        try:
            self._stdin.write(json.dumps(message) + "\n")
            self._stdin.flush()
        except BrokenPipeError:
            return {"error": f"worker exited; see {self._log.name}"}
        return self.receive(timeout)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._log.close()


@dataclass
class Row:
    model: str
    batch: int
    variant: str
    status: str = "ok"  # ok | unavailable | error
    reason: str = ""
    latencies: list[float] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    artifact: dict[str, Any] | None = None  # what the variant serves from (peers.Artifact.as_json)


def latency_figures(latencies: list[float], batch: int) -> dict[str, float]:
    ms = np.asarray(latencies) * 1e3
    median = float(np.median(ms))
    return {"median_ms": median, "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
            "runs": len(ms), "throughput_per_s": batch * 1e3 / median}


def cosine_figures(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    cosine = cosines(rows(outputs), rows(reference))
    return {"cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min())}


def accuracy(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    return {**cosine_figures(outputs, reference), "top1_agreement": agreement(reference, outputs)}


def start_worker(row: Row, config: dict[str, Any], out: Path) -> Worker | None:
    """The row's variant in its own process once it is ready, or None, with the
    row saying why it cannot run. Its log is <out>/logs/<model>-b<batch>-<variant>.log."""
    name = f"{row.model}-b{row.batch}-{row.variant}"
    config = {**config, "model": row.model, "variant": row.variant, "batch": row.batch,
              "workdir": str(out / "work" / name)}
    worker = Worker(config, out / "logs" / f"{name}.log")
    ready = worker.receive(PREPARE_TIMEOUT_S)
    if ready.get("ready"):
        row.figures.update(prepare_s=ready["prepare_s"], artifact_bytes=ready["artifact_bytes"],
                           precision=ready["precision"])
        row.artifact = ready.get("artifact")
        return worker
    worker.close()
    row.status = "unavailable" if "unavailable" in ready else "error"
    row.reason = ready.get("unavailable") or ready.get("error", "")
    return None


def fetch_outputs(worker: Worker) -> dict[str, np.ndarray] | None:
    """The worker's outputs on each of its evaluation sets, by name; None when it failed."""
    answer = worker.request(cmd="outputs")
    if "path" not in answer:
        return None
    with np.load(answer["path"]) as saved:
        return {name: saved[name] for name in saved.files}


def stop_worker(worker: Worker, row: Row) -> None:
    """Ends the worker, recording its RSS now (serving) and its peak (conversion included)."""
    memory = worker.request(cmd="exit")
    row.figures.update(rss_bytes=memory.get("rss_bytes"), peak_rss_bytes=memory.get("peak_rss_bytes"))


def bench_group(model: str, batch: int, s: Settings, peaks: dict[str, float],
                progress: report.Progress) -> list[Row]:
    rows = {v: Row(model, batch, v) for v in s.variants}
    workers: dict[str, Worker] = {}
    macs = None
    try:
        for name, row in rows.items():
            progress.step(f"{model} b{batch} {name}: preparing")
            worker = start_worker(row, {"threads": s.threads, "warmup": s.warmup}, s.out)
            if worker is not None:
                workers[name] = worker
        if REFERENCE in workers:
            macs = workers[REFERENCE].request(cmd="macs").get("macs")
        for r in range(s.rounds):
            for name, worker in list(workers.items()):
                progress.step(f"{model} b{batch} {name}: round {r + 1}/{s.rounds}")
                answer = worker.request(cmd="time", runs=s.runs_per_round)
                if "error" in answer:
                    rows[name].status, rows[name].reason = "error", answer["error"]
                    workers.pop(name).close()
                else:
                    rows[name].latencies += answer["latencies"]
        outputs = {}
        for name, worker in workers.items():
            progress.step(f"{model} b{batch} {name}: outputs")
            if (evaluated := fetch_outputs(worker)) is not None:
                outputs[name] = evaluated["eval"]
            if s.load_threads > 0:
                progress.step(f"{model} b{batch} {name}: {s.load_threads} clients for {s.load_seconds:g} s")
                answer = worker.request(cmd="load", threads=s.load_threads, seconds=s.load_seconds)
                if "latencies" in answer:
                    ms = np.asarray(answer["latencies"]) * 1e3
                    rows[name].figures["load"] = {
                        "clients": s.load_threads, "seconds": answer["elapsed"],
                        "requests_per_s": len(ms) / answer["elapsed"],
                        "p50_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))}
            stop_worker(worker, rows[name])
    finally:
        for worker in workers.values():
            worker.close()
    if s.serving_memory:  # alone on the machine: every worker has ended
        for name, row in rows.items():
            if row.status == "ok" and row.artifact is not None:
                progress.step(f"{model} b{batch} {name}: serving memory")
                row.figures["serving"] = serving_memory.measure(
                    {"model": model, "batch": batch, "variant": name, "threads": s.threads,
                     "artifact": row.artifact}, s.out / "logs" / f"{model}-b{batch}-{name}-serving.log")

    reference = rows.get(REFERENCE)
    for row in rows.values():
        if row.status != "ok":
            continue
        row.figures.update(latency_figures(row.latencies, batch))
        if macs:
            row.figures.update(macs=macs, **roofline.rates(macs, row.figures["median_ms"],
                                                           row.figures["precision"], peaks))
        if reference and reference.status == "ok" and reference.latencies:
            row.figures["speedup_vs_reference"] = float(np.median(reference.latencies) / np.median(row.latencies))
        if REFERENCE in outputs and row.variant in outputs:
            row.figures.update(accuracy(outputs[row.variant], outputs[REFERENCE]))
    return list(rows.values())


def known_names(parser: argparse.ArgumentParser, names: str, known: Collection[str]) -> list[str]:
    """The comma-separated `names`, or the parser's usage error naming the unknown ones."""
    listed = names.split(",")
    unknown = [n for n in listed if n not in known]
    if unknown:
        parser.error(f"unknown {unknown}; choose from {', '.join(known)}")
    return listed


def with_reference(variants: list[str]) -> list[str]:
    """The variants, the reference first if they lack it: every ratio and accuracy figure needs it."""
    return variants if REFERENCE in variants else [REFERENCE, *variants]


def parse(argv: list[str] | None) -> Settings:
    p = argparse.ArgumentParser(prog="int8flow bench", description=__doc__.splitlines()[0],
                                epilog="Other modes, each with its own --help: --layers (INT8 layers against FP32), "
                                "--trained (accuracy on trained models), --soak (leaks and races), "
                                "--serve (load test of the Ray Serve endpoint).")
    p.add_argument("--models", default=None, help=f"comma-separated, from {', '.join(MODELS)} "
                   f"(default: {DEFAULT_MODELS}; with --quick: mlp)")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes (default: 1)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, from {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--out", default="results", help="output folder (default: results/)")
    p.add_argument("--threads", type=int, default=2, help="threads per variant (default: 2)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds")
    p.add_argument("--runs", type=int, default=None, help="timed runs per variant per round")
    p.add_argument("--load-threads", type=int, default=None, help="concurrent clients (0: no load test)")
    p.add_argument("--load-seconds", type=float, default=None, help="length of the load test")
    p.add_argument("--quick", action="store_true", help="few runs, mlp only unless --models: < 5 min")
    p.add_argument("--serving-memory", action="store_true",
                   help="also load each variant's saved artifact in a process of its own and report "
                   "what serving it holds (RSS), as a server would")
    a = p.parse_args(argv)
    quick: _Defaults = {"rounds": 3, "runs": 5, "warmup": 3, "load_threads": 2, "load_seconds": 2.0}
    full: _Defaults = {"rounds": 5, "runs": 10, "warmup": 10, "load_threads": 4, "load_seconds": 10.0}
    d = quick if a.quick else full
    models = known_names(p, a.models or ("mlp" if a.quick else DEFAULT_MODELS), MODELS)
    variants = with_reference(known_names(p, a.variants, VARIANTS))
    return Settings(models, [int(b) for b in a.batch.split(",")], variants, Path(a.out), a.threads,
                    d["warmup"], a.rounds or d["rounds"], a.runs or d["runs"],
                    d["load_threads"] if a.load_threads is None else a.load_threads,
                    a.load_seconds or d["load_seconds"], a.serving_memory)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--layers" in args:
        from int8flow.bench.layers import main as layers
        return layers(argv)
    if "--soak" in args:
        from int8flow.bench.soak import main as soak
        return soak(argv)
    if "--trained" in args:
        from int8flow.bench.trained_accuracy import main as trained_accuracy
        return trained_accuracy(argv)
    if "--serve" in args:
        from int8flow.bench.serve_load import main as serve_load
        return serve_load(argv)
    s = parse(argv)
    (s.out / "logs").mkdir(parents=True, exist_ok=True)
    steps_per_group = len(s.variants) * (2 + s.rounds + (s.load_threads > 0) + s.serving_memory)
    progress = report.Progress(1 + len(s.models) * len(s.batches) * steps_per_group)
    progress.step(f"this machine's peak GEMM rates on {s.threads} threads")
    peaks = roofline.measure_peaks(s.threads)
    rows = [row for m in s.models for b in s.batches for row in bench_group(m, b, s, peaks, progress)]
    progress.done()
    results = report.write(rows, s, s.out, peaks)
    print(report.table(results))
    print(f"\nresults: {s.out / 'results.json'}, chart: {s.out / 'speedup.png'}")
    return 0 if any(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
