"""Several models on one host under concurrent load (docs/serving.md, "Several models on one host").

    python benchmarks/multi_model.py --models mobilenetv2,mlp --seconds 20 --out multi.json

Each model is the bench's random-weight model (`int8flow.bench.models`) in
static INT8 (`int8flow.quantize`, 8 calibration batches), called at batch 1 by
one closed-loop client (the next request when the last is answered). Layouts:
- `shared`: one process holds every model, one client thread per model, all on
  the process's cores;
- `pinned`: `int8flow launch --instances K` (the cores split between them),
  instance i serving models i, i + K, ... (`--instances`, default one per
  model), one client per model.
In each layout the clients start together, once every model is quantized and
warm, and run for `--seconds`. Prints requests/s and p50/p99 ms per model and
the aggregate; `--out` writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

WARMUP_CALLS = 5


def prepare(name: str) -> Any:
    """`name`'s static INT8 model, warm, and a call of it at batch 1."""
    import int8flow
    from int8flow.bench.models import MODELS

    spec = MODELS[name]
    quantized = int8flow.quantize(spec.build(), np.concatenate([spec.make_inputs(1, s) for s in range(8)]),
                                  verbose=False)
    x = spec.make_inputs(1, 100)
    for _ in range(WARMUP_CALLS):
        quantized(x)
    return lambda: quantized(x)


def load(calls: dict[str, Any], ready: Path, peers: int, seconds: float) -> dict[str, Any]:
    """Marks this process ready, waits for `peers` processes in all, then runs
    one closed-loop client thread per model for `seconds`."""
    (ready / str(os.getpid())).touch()
    while len(list(ready.iterdir())) < peers:
        time.sleep(0.01)
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    end = time.perf_counter() + seconds

    def client(name: str) -> None:
        while time.perf_counter() < end:
            start = time.perf_counter()
            calls[name]()
            latencies[name].append(time.perf_counter() - start)
    threads = [threading.Thread(target=client, args=(name,)) for name in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {name: {"requests_per_s": len(ms) / seconds, "p50_ms": float(np.percentile(ms, 50)) * 1e3,
                   "p99_ms": float(np.percentile(ms, 99)) * 1e3} for name, ms in latencies.items()}


def worker(args: argparse.Namespace) -> int:
    names = args.models.split(",")
    if "INT8FLOW_INSTANCE" in os.environ:  # pinned: this instance's share of the models
        names = names[int(os.environ["INT8FLOW_INSTANCE"])::int(os.environ["INT8FLOW_INSTANCES"])]
    calls = {name: prepare(name) for name in names}
    print(json.dumps(load(calls, Path(args.ready), args.peers, args.seconds)), flush=True)
    return 0


def run_layout(layout: str, models: list[str], instances: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as ready:
        pinned = layout == "pinned"
        worker_command = [sys.executable, __file__, "--worker", "--models", ",".join(models), "--ready", ready,
                          "--peers", str(instances if pinned else 1), "--seconds", str(seconds)]
        command = ([sys.executable, "-m", "int8flow", "launch", "--instances", str(instances), "--"]
                   if pinned else []) + worker_command
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{layout} failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            figures.update(json.loads(line))
    figures["aggregate_requests_per_s"] = sum(f["requests_per_s"] for f in figures.values())
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenetv2,mlp", help="comma-separated names of int8flow.bench.models")
    parser.add_argument("--layouts", default="shared,pinned")
    parser.add_argument("--instances", type=int, default=None,
                        help="processes of the pinned layout (default: one per model)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--peers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    import int8flow

    cpu = int8flow.cpu_features()
    results = {"cpu": cpu["model"], "cores": cpu["cores"], "int8_path": cpu["int8_path"], "layouts": {}}
    models = args.models.split(",")
    instances = args.instances or len(models)
    if not 1 <= instances <= len(models):
        parser.error(f"--instances must be in [1, {len(models)}] for {len(models)} models")
    results["instances"] = instances
    for layout in args.layouts.split(","):
        results["layouts"][layout] = figures = run_layout(layout, models, instances, args.seconds)
        print(f"{layout:7} " + "  ".join(f"{m}: {figures[m]['requests_per_s']:.1f}/s p50 {figures[m]['p50_ms']:.1f} "
                                         f"p99 {figures[m]['p99_ms']:.1f} ms" for m in models)
              + f"  total {figures['aggregate_requests_per_s']:.1f}/s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
