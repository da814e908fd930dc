"""`int8flow bench --soak`: long runs and shared models under threads, for leaks,
unbounded caches, races and deadlocks.

Each check runs in its own process, once in FP32 and once in dynamic INT8
(INT8FLOW_QUANTIZE=dynamic, set before TensorFlow is imported):
- `soak`: CALLS inferences at batch 1, one model. RSS and `int8flow.stats()["caches"]`
  are read once warm-up is over and again at the end: RSS may grow < 2%, and
  the caches must not change.
- `threads`: THREADS threads share one tf.function and call it CALLS_PER_THREAD
  times each, cycling through distinct inputs. Every result must equal, bit for
  bit, the single-thread result for its input, and no thread may still be
  running after the timeout (a deadlock).
- `two_models`: the same with two models at once, each thread alternating.
The process exits 1 when any check fails, so the long form is a gate too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from int8flow.bench.worker import MARKER, reply, resident_bytes

MAX_RSS_GROWTH = 0.02
DISTINCT_INPUTS = 4


def run_check(check: str, models: list[str], quantize: str, calls: int,
              threads: int = 8, timeout_s: float = 600.0) -> dict[str, Any]:
    """Runs one check in a fresh process and returns its figures, with `ok`."""
    config = {"check": check, "models": models, "quantize": quantize, "calls": calls,
              "threads": threads, "timeout_s": timeout_s}
    env = {k: v for k, v in os.environ.items() if not k.startswith("INT8FLOW_")}
    env.update(INT8FLOW_QUANTIZE=quantize, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        done = subprocess.run([sys.executable, "-m", "int8flow.bench.soak", "--child", json.dumps(config)],
                              env=env, capture_output=True, text=True, timeout=timeout_s + 120)
    except subprocess.TimeoutExpired:
        return {**config, "ok": False, "error": "the process did not finish: hung"}
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        return {**config, "ok": False, "error": f"rc={done.returncode}: {done.stderr[-2000:]}"}
    return {**config, **json.loads(lines[-1][len(MARKER):])}


# ---- in the child process -----------------------------------------------------

def _prepare(names: list[str]) -> list[tuple[Any, list[Any]]]:
    """(a tf.function of the model, its distinct batch-1 inputs) per model name."""
    import tensorflow as tf

    from int8flow.bench.models import MODELS

    prepared = []
    for name in names:
        spec = MODELS[name]
        model = spec.build()
        call = tf.function(lambda x, m=model: m(x, training=False))
        prepared.append((call, [tf.constant(spec.make_inputs(1, seed)) for seed in range(DISTINCT_INPUTS)]))
    return prepared


def _soak(call: Any, inputs: list[Any], calls: int) -> dict[str, Any]:
    import int8flow

    warmup = max(200, calls // 10)
    for i in range(warmup):
        call(inputs[i % len(inputs)])
    rss_before, caches_before = resident_bytes(), int8flow.stats()["caches"]
    start = time.perf_counter()
    for i in range(calls):
        call(inputs[i % len(inputs)])
    seconds = time.perf_counter() - start
    rss_after, caches_after = resident_bytes(), int8flow.stats()["caches"]
    growth = rss_after / rss_before - 1
    return {"warmup": warmup, "seconds": seconds, "rss_before": rss_before, "rss_after": rss_after,
            "rss_growth": growth, "caches_before": caches_before, "caches_after": caches_after,
            "ok": growth < MAX_RSS_GROWTH and caches_after == caches_before}


def _threads(prepared: list[tuple[Any, list[Any]]], threads: int, calls: int,
             timeout_s: float) -> dict[str, Any]:
    import numpy as np

    expected = [[call(x).numpy() for x in inputs] for call, inputs in prepared]
    mismatches = [0] * threads
    errors: list[str] = []

    def client(t: int) -> None:
        try:
            for c in range(calls):
                m = (t + c) % len(prepared)
                k = (t * 3 + c) % DISTINCT_INPUTS
                call, inputs = prepared[m]
                if not np.array_equal(call(inputs[k]).numpy(), expected[m][k]):
                    mismatches[t] += 1
        except Exception as e:  # noqa: BLE001 (reported, and fails the check)
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    pool = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    deadline = start + timeout_s
    for thread in pool:
        thread.join(max(0.0, deadline - time.perf_counter()))
    hung = sum(thread.is_alive() for thread in pool)
    return {"seconds": time.perf_counter() - start, "mismatches": sum(mismatches), "hung_threads": hung,
            "errors": errors[:5], "ok": hung == 0 and not errors and not any(mismatches)}


def _child(config: dict[str, Any]) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    prepared = _prepare(config["models"])
    if config["check"] == "soak":
        result = _soak(*prepared[0], config["calls"])
    else:
        result = _threads(prepared, config["threads"], config["calls"], config["timeout_s"])
    reply(**result)
    os._exit(0)  # a hung thread must not keep the process alive


# ---- the command --------------------------------------------------------------

def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def _row(r: dict[str, Any]) -> str:
    what = f"{r['check']:<10} {'+'.join(r['models']):<10} {r['quantize']:<8}"
    if "error" in r:
        return f"{what} FAILED: {r['error'][:300]}"
    if r["check"] == "soak":
        caches = r["caches_after"].values()
        detail = (f"{r['calls']} calls: RSS {_mib(r['rss_before'])} -> {_mib(r['rss_after'])} MiB "
                  f"({100 * r['rss_growth']:+.2f}%), caches {sum(c['entries'] for c in caches)} entries "
                  f"{sum(c['bytes'] for c in caches) / 1024:.0f} KiB"
                  f"{'' if r['caches_after'] == r['caches_before'] else ' (changed)'}")
    else:
        detail = (f"{r['threads']} threads x {r['calls']} calls in {r['seconds']:.1f} s: "
                  f"{r['mismatches']} mismatches, {r['hung_threads']} hung, {len(r['errors'])} errors")
    return f"{what} {detail}  {'ok' if r['ok'] else 'FAILED'}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="int8flow bench --soak", description=__doc__.splitlines()[0])
    p.add_argument("--soak", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--models", default="cnn,mlp", help="soak each; threads share the first, "
                   "two_models the first two (default: cnn,mlp)")
    p.add_argument("--calls", type=int, default=10000, help="soak inferences (default: 10000)")
    p.add_argument("--threads", type=int, default=8, help="threads sharing a model (default: 8)")
    p.add_argument("--calls-per-thread", type=int, default=500, help="(default: 500)")
    p.add_argument("--out", default="results", help="folder for soak.json (default: results/)")
    a = p.parse_args(argv)
    if a.child:
        _child(json.loads(a.child))
    models = a.models.split(",")
    results = []
    for quantize in ("off", "dynamic"):
        runs = [("soak", [m], a.calls) for m in models] + [("threads", models[:1], a.calls_per_thread)]
        if len(models) > 1:
            runs.append(("two_models", models[:2], a.calls_per_thread))
        for check, names, calls in runs:
            results.append(run_check(check, names, quantize, calls, a.threads))
            print(_row(results[-1]), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
