"""`int8flow bench --serve`: a load test of the Ray Serve endpoint (int8flow.serve), like an endpoint benchmark.

One local Ray runs the TF-Serving-style app of int8flow.serve once per
variant, each under its own route prefix on 127.0.0.1: stock TF (its
replica's environment has INT8FLOW_DISABLE=1), int8flow FP32 (the model's
SavedModel) and int8flow static INT8 (`int8flow.quantize`'s SavedModel, default
options). Each replica gets `--cores` cores. Closed-loop HTTP clients, each
sending one-sample predict requests and waiting for the answer, ramp 1, 2, 4,
... up to `--max-clients`. A step lasts `--step-seconds` (at most
`--step-requests` requests) per variant, the variants interleaved, `--rounds`
times; the ramp stops once no variant's throughput grew by SATURATION over the
step before. Per variant and step: requests/s, p50/p90/p99 latency (client
side: HTTP, JSON, batching and the model) and errors; `--price-per-hour` turns
each variant's peak throughput into a cost per million inferences. `--out`
gets serve.json, serve.md (the table) and serve.png (throughput and p99
against clients). The clients share the host with the server, as in any
single-host load test: their CPU time is the same for every variant.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from int8flow.bench import report
from int8flow.bench.models import MODELS
from int8flow.bench.runner import known_names

SERVE_VARIANTS = {  # name: (which SavedModel, the replica's environment)
    "stock-tf": ("fp32", {"INT8FLOW_DISABLE": "1"}),
    "int8flow-fp32": ("fp32", {}),
    "int8flow-int8-static": ("int8", {}),
}
SATURATION = 1.05  # a step that does not raise throughput by 5% ends the ramp
CALIBRATION_SAMPLES = 64
DISTINCT_BODIES = 8  # requests cycle through these inputs
REQUEST_TIMEOUT_S = 60.0


@dataclass
class ServeSettings:
    model: str
    variants: list[str]
    out: Path
    cores: int
    max_clients: int
    step_seconds: float
    step_requests: int
    rounds: int
    warmup_seconds: float
    price_per_hour: float | None


@dataclass
class Step:
    """One variant at one client count, pooled over the rounds."""

    variant: str
    clients: int
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def figures(self) -> dict[str, Any]:
        ms = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {"variant": self.variant, "clients": self.clients, "requests": self.requests, "errors": self.errors,
                "requests_per_s": self.requests_per_s,
                "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
                "p99_ms": float(np.percentile(ms, 99)), "first_error": self.first_error}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def save_models(model_name: str, folder: Path) -> dict[str, Path]:
    """The model's FP32 SavedModel and its static INT8 one, in `folder`."""
    import int8flow

    spec = MODELS[model_name]
    model = spec.build()
    paths = {"fp32": folder / "fp32", "int8": folder / "int8"}
    for path in paths.values():
        shutil.rmtree(path, ignore_errors=True)
    model.export(str(paths["fp32"]), format="tf_saved_model", verbose=False)
    int8flow.quantize(model, spec.make_inputs(CALIBRATION_SAMPLES, 1), verbose=False).save(paths["int8"])
    return paths


def request_bodies(model_name: str) -> list[bytes]:
    """TF Serving predict bodies of one sample each (row format)."""
    spec = MODELS[model_name]
    return [json.dumps({"instances": spec.make_inputs(1, 100 + i).tolist()}).encode()
            for i in range(DISTINCT_BODIES)]


def run_step(port: int, path: str, bodies: list[bytes], clients: int, seconds: float, max_requests: int,
             step: Step) -> None:
    """`clients` closed-loop clients on keep-alive connections for `seconds`
    or `max_requests` requests in all, whichever ends first; adds to `step`."""
    lock = threading.Lock()
    budget = [max_requests]
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        sent = index
        try:
            while time.monotonic() < deadline:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                start = time.perf_counter()
                try:
                    connection.request("POST", path, bodies[sent % len(bodies)],
                                       {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    answer = response.read()
                    ok, error = response.status == 200, f"HTTP {response.status}: {answer[:200]!r}"
                except (OSError, http.client.HTTPException) as e:
                    connection.close()
                    ok, error = False, f"{type(e).__name__}: {e}"
                elapsed_ms = (time.perf_counter() - start) * 1e3
                sent += clients
                with lock:
                    if ok:
                        step.requests += 1
                        step.latencies_ms.append(elapsed_ms)
                    else:
                        step.errors += 1
                        step.first_error = step.first_error or error
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + REQUEST_TIMEOUT_S)
    step.seconds += time.monotonic() - start


def client_counts(max_clients: int) -> list[int]:
    """1, 2, 4, ... and `max_clients` itself."""
    counts = [1]
    while counts[-1] * 2 < max_clients:
        counts.append(counts[-1] * 2)
    return sorted({*counts, max_clients})


def saturated(steps: dict[tuple[str, int], Step], variants: list[str], before: int, now: int) -> bool:
    """No variant's throughput grew by SATURATION from `before` clients to `now`."""
    return all(steps[v, now].requests_per_s < SATURATION * steps[v, before].requests_per_s for v in variants)


def load_test(s: ServeSettings, port: int, progress: report.Progress) -> list[Step]:
    bodies = request_bodies(s.model)
    routes = {v: f"/{v}/v1/models/{s.model}:predict" for v in s.variants}
    for v in s.variants:  # every batch size the replicas will see, before anything counts
        progress.step(f"warm-up {v}")
        run_step(port, routes[v], bodies, s.max_clients, s.warmup_seconds, 10**9, Step(v, s.max_clients))
    steps: dict[tuple[str, int], Step] = {}
    counts = client_counts(s.max_clients)
    for i, clients in enumerate(counts):
        for _ in range(s.rounds):
            for v in s.variants:
                progress.step(f"{v}, {clients} clients")
                step = steps.setdefault((v, clients), Step(v, clients))
                run_step(port, routes[v], bodies, clients, s.step_seconds, s.step_requests, step)
        if i and saturated(steps, s.variants, counts[i - 1], clients):
            break
    return list(steps.values())


def serve_variants(s: ServeSettings, paths: dict[str, Path], port: int) -> dict[str, dict[str, Any]]:
    """Starts Serve on 127.0.0.1:`port` with one app per variant, routed at /<variant>;
    returns what each variant's replica runs on (`int8flow.serve`'s `runtime()`)."""
    import ray
    from ray import serve

    import int8flow.serve

    # Each replica reserves `cores` of Ray's CPUs, all at once; the OS cores are shared.
    ray.init(num_cpus=s.cores * len(s.variants), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    replicas = {}
    for v in s.variants:
        model, env = SERVE_VARIANTS[v]
        handle = serve.run(int8flow.serve.app({s.model: paths[model]}, num_cpus=s.cores, env=env), name=v,
                           route_prefix=f"/{v}")
        replicas[v] = handle.runtime.remote().result()
    return replicas


def wrong_runtimes(replicas: dict[str, dict[str, Any]]) -> list[str]:
    """Replicas not on the device their variant's environment asks for: on QCPU unless INT8FLOW_DISABLE is set."""
    return [f"{v}: QCPU {'active' if r['qcpu_active'] else 'inactive (' + r['reason'] + ')'}"
            for v, r in replicas.items() if r["qcpu_active"] == ("INT8FLOW_DISABLE" in SERVE_VARIANTS[v][1])]


def summary(steps: list[Step], s: ServeSettings) -> dict[str, Any]:
    """Each variant's peak throughput, its p99 there, and the cost per million inferences at that peak."""
    peaks = {}
    for v in s.variants:
        best = max((st.figures() for st in steps if st.variant == v), key=lambda f: f["requests_per_s"])
        cost = (s.price_per_hour / (best["requests_per_s"] * 3600) * 1e6
                if s.price_per_hour is not None and best["requests_per_s"] > 0 else None)
        peaks[v] = {"peak_requests_per_s": best["requests_per_s"], "at_clients": best["clients"],
                    "p99_ms_at_peak": best["p99_ms"], "cost_per_million": cost}
    return peaks


def table(results: dict[str, Any]) -> str:
    s = results["settings"]
    price = s["price_per_hour"]
    lines = [f"{report.machine_line(results['machine'])}; model {s['model']}, batch-1 requests, "
             f"{s['cores']} cores per replica, {s['rounds']} rounds of {s['step_seconds']} s per step; replicas: "
             + ", ".join(f"{v} QCPU {'on' if r['qcpu_active'] else 'off'}, {r['threads']} threads"
                         for v, r in results["replicas"].items()), "",
             "| variant | clients | requests/s | p50 ms | p90 ms | p99 ms | requests | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in results["steps"]:
        lines.append(f"| {f['variant']} | {f['clients']} | {f['requests_per_s']:.1f} | {f['p50_ms']:.1f} | "
                     f"{f['p90_ms']:.1f} | {f['p99_ms']:.1f} | {f['requests']} | {f['errors']} |")
    lines += ["", f"| variant | peak requests/s | at clients | p99 ms there | cost per million"
              f"{f' at ${price}/hour' if price is not None else ''} |", "|---|---:|---:|---:|---:|"]
    for v, p in results["peaks"].items():
        cost = "-" if p["cost_per_million"] is None else f"${p['cost_per_million']:.3f}"
        lines.append(f"| {v} | {p['peak_requests_per_s']:.1f} | {p['at_clients']} | {p['p99_ms_at_peak']:.1f} | "
                     f"{cost} |")
    errors = [f"{f['variant']} at {f['clients']} clients: {f['first_error']}" for f in results["steps"] if f["errors"]]
    return "\n".join(lines + [f"\nfirst error, {e}" for e in errors])


def chart(results: dict[str, Any], path: Path) -> None:
    """Throughput and p99 latency against concurrent clients, a line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (throughput, p99) = plt.subplots(1, 2, figsize=(10, 4))
    for v in results["peaks"]:
        mine = [f for f in results["steps"] if f["variant"] == v]
        clients = [f["clients"] for f in mine]
        throughput.plot(clients, [f["requests_per_s"] for f in mine], marker="o", label=v)
        p99.plot(clients, [f["p99_ms"] for f in mine], marker="o", label=v)
    for ax, label in ((throughput, "requests/s"), (p99, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    throughput.legend(fontsize=8)
    fig.suptitle(f"int8flow bench --serve: {results['settings']['model']}, {results['machine']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str] | None) -> ServeSettings:
    p = argparse.ArgumentParser(prog="int8flow bench --serve", description=__doc__.splitlines()[0])
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, choices=list(MODELS),
                   help="the model served (default: bert; with --quick: mlp)")
    p.add_argument("--variants", default=",".join(SERVE_VARIANTS),
                   help=f"comma-separated, from {', '.join(SERVE_VARIANTS)} (default: all)")
    p.add_argument("--out", default="results", help="output folder (default: results/)")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                   help="cores per replica: its OMP_NUM_THREADS (default: all)")
    p.add_argument("--max-clients", type=int, default=None, help="the ramp's last step (default: 16)")
    p.add_argument("--step-seconds", type=float, default=None, help="length of a step (default: 5)")
    p.add_argument("--step-requests", type=int, default=2000, help="requests per step at most (default: 2000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per step (default: 2)")
    p.add_argument("--price-per-hour", type=float, default=None,
                   help="the host's price, for the cost per million inferences")
    p.add_argument("--quick", action="store_true", help="mlp unless --model, up to 4 clients, short steps")
    a = p.parse_args(argv)
    quick, full = {"max_clients": 4, "step_seconds": 1.5, "rounds": 1}, {"max_clients": 16, "step_seconds": 5.0,
                                                                          "rounds": 2}
    d = quick if a.quick else full
    model = a.model or ("mlp" if a.quick else "bert")
    for name, value in (("--cores", a.cores), ("--max-clients", a.max_clients), ("--rounds", a.rounds),
                        ("--step-requests", a.step_requests)):
        if value is not None and value < 1:
            p.error(f"{name} must be at least 1")
    return ServeSettings(model, known_names(p, a.variants, SERVE_VARIANTS), Path(a.out), a.cores,
                         a.max_clients or int(d["max_clients"]), a.step_seconds or float(d["step_seconds"]),
                         a.step_requests, a.rounds or int(d["rounds"]), float(d["step_seconds"]), a.price_per_hour)


def main(argv: list[str] | None = None) -> int:
    s = parse(argv)
    try:
        import ray
        from ray import serve
    except ImportError:
        print("int8flow bench --serve needs Ray Serve: pip install 'int8flow[ray]'", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    s.out.mkdir(parents=True, exist_ok=True)
    progress = report.Progress(1 + len(s.variants) * (1 + s.rounds * len(client_counts(s.max_clients))))
    progress.step(f"saving {s.model} as FP32 and static INT8 SavedModels")
    paths = save_models(s.model, s.out / "serve_models")
    port = _free_port()
    try:
        replicas = serve_variants(s, paths, port)
        steps = load_test(s, port, progress)
    finally:
        serve.shutdown()
        ray.shutdown()
    progress.done()
    results = {**report.header(s), "replicas": replicas, "steps": [st.figures() for st in steps],
               "peaks": summary(steps, s)}
    (s.out / "serve.json").write_text(json.dumps(results, indent=2))
    text = table(results)
    (s.out / "serve.md").write_text(text + "\n")
    chart(results, s.out / "serve.png")
    print(text)
    print(f"\nresults: {s.out / 'serve.json'}, {s.out / 'serve.md'}, chart: {s.out / 'serve.png'}")
    wrong = wrong_runtimes(replicas)
    for line in wrong:
        print(f"replica on the wrong device: {line}", file=sys.stderr)
    return 0 if all(st.requests for st in steps) and not wrong else 1
