"""One benchmark variant in its own process, driven over stdin/stdout.

    python -m int8flow.bench.worker '{"model": ..., "variant": ..., ...}'

The worker builds the model (a random-weight one of models.py, or with
`trained` in the config one of trained.py from the weights the bench saved),
prepares the variant, warms it up and replies `ready` (or `unavailable` with
the reason). Then it answers requests, one JSON object per line: `time` (k
timed runs), `load` (N threads for T seconds), `outputs` (the outputs on each
evaluation set into an .npz) and `exit` (RSS now, and peak). Replies are
lines starting with MARKER, so library chatter on stdout is ignored.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np  # annotations only: the worker imports it after configuring the environment

MARKER = "@@int8flow-bench "
CALIBRATION_SEEDS = range(100, 108)
EVAL_SEEDS = range(1000, 1008)


def configure_environment(config: dict[str, Any]) -> None:
    """Set before TensorFlow is imported: plugin on/off and thread counts."""
    from int8flow.bench.variants import VARIANTS

    variant = VARIANTS[config["variant"]]
    if not variant.plugin:
        os.environ["INT8FLOW_DISABLE"] = "1"
    os.environ.update(variant.env)
    os.environ["OMP_NUM_THREADS"] = str(config["threads"])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def resident_bytes(field: str = "VmRSS") -> int:
    """RSS now: what serving holds, without the conversion's transient peak
    (`field` "VmHWM": the peak so far, which the kernel keeps in step with it)."""
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith(f"{field}:"))
    return int(kib) * 1024


def reply(**message: Any) -> None:
    sys.stdout.write(MARKER + json.dumps(message) + "\n")
    sys.stdout.flush()


def run_child(main: Callable[[dict[str, Any]], None]) -> None:
    """A bench child process: `main` on the JSON config in argv[1]; a failure is
    replied to the parent in one line, its traceback left in the log (stderr)."""
    try:
        main(json.loads(sys.argv[1]))
    except Exception:
        traceback.print_exc()
        reply(error=traceback.format_exc().strip().splitlines()[-1])
        sys.exit(1)


@dataclass
class Workload:
    """What a worker runs: the model, its timing input, its calibration batches
    and the named input sets whose outputs `outputs` returns (made when asked
    and dropped after, so they don't count in the RSS of serving)."""

    model: Any
    x: np.ndarray
    calibration: list[np.ndarray]
    evaluation: Callable[[], dict[str, np.ndarray]]


def random_weights_workload(config: dict[str, Any]) -> Workload:
    import numpy as np

    from int8flow.bench.models import MODELS

    spec, batch = MODELS[config["model"]], config["batch"]
    return Workload(spec.build(), spec.make_inputs(batch, 0),
                    [spec.make_inputs(batch, seed) for seed in CALIBRATION_SEEDS],
                    lambda: {"eval": np.concatenate([spec.make_inputs(batch, seed) for seed in EVAL_SEEDS])})


def trained_workload(config: dict[str, Any]) -> Workload:
    """A model of trained.py with the weights the bench trained once for every
    variant, calibrated on the first `calibration_samples` training samples
    (whole batches of them, where the training set is smaller)."""
    import numpy as np

    from int8flow.bench import trained

    spec, batch = trained.TRAINED[config["trained"]], config["batch"]
    data = spec.data()
    model = trained.rebuild(spec, data, config["weights"])
    if config["embedding"]:
        model = trained.embedding_model(model)
    samples = min(config["calibration_samples"], len(data.x_train)) // batch * batch
    calibration = np.split(data.x_train[:samples], samples // batch)
    return Workload(model, data.x_eval[:batch], calibration, lambda: {"eval": data.x_eval, "test": data.x_test})


def outputs_in_batches(runner, x: np.ndarray, batch: int) -> np.ndarray:
    """The runner's float outputs for every sample of `x`, `batch` at a time.
    The peers run at a fixed batch size, so a short last batch is padded with
    copies of its first sample (real data, which keeps the activation ranges
    that dynamic INT8 finds per call close to the real samples') and cut."""
    import numpy as np

    parts = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[:1], batch - len(chunk), 0)])
        parts.append(np.asarray(runner(padded), "float32")[:len(chunk)])
    return np.concatenate(parts)


def timed_runs(runner, x, runs: int) -> list[float]:
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(x)
        latencies.append(time.perf_counter() - start)
    return latencies


def load(prepared, x, threads: int, seconds: float) -> dict[str, Any]:
    """N client threads, each with its own runner, calling back to back for T seconds."""
    runners = [prepared.make_runner() for _ in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            runners[i](x)
            latencies[i].append(time.perf_counter() - start)

    pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    merged = [lat for per_thread in latencies for lat in per_thread]
    return {"latencies": merged, "elapsed": elapsed}


def main(config: dict[str, Any]) -> None:
    configure_environment(config)
    import numpy as np
    import tensorflow as tf

    from int8flow.bench.peers import Unavailable
    from int8flow.bench.variants import VARIANTS

    tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    batch = config["batch"]
    workdir = Path(config["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    work = trained_workload(config) if "trained" in config else random_weights_workload(config)
    start = time.perf_counter()
    try:
        prepared = VARIANTS[config["variant"]].prepare(work.model, work.calibration, batch, config["threads"],
                                                       workdir)
    except Unavailable as why:
        reply(unavailable=str(why))
        return
    runner = prepared.make_runner()
    timed_runs(runner, work.x, config["warmup"])
    reply(ready=True, prepare_s=time.perf_counter() - start, artifact_bytes=prepared.artifact_bytes,
          precision=prepared.precision, artifact=prepared.artifact and prepared.artifact.as_json())

    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "time":
            reply(latencies=timed_runs(runner, work.x, request["runs"]))
        elif request["cmd"] == "load":
            reply(**load(prepared, work.x, request["threads"], request["seconds"]))
        elif request["cmd"] == "macs":
            from int8flow.bench.roofline import count_macs
            reply(macs=count_macs(work.model, work.x))
        elif request["cmd"] == "outputs":
            path = workdir / "outputs.npz"
            np.savez(path, allow_pickle=False, **{name: outputs_in_batches(runner, inputs, batch)
                                                  for name, inputs in work.evaluation().items()})
            reply(path=str(path))
        elif request["cmd"] == "exit":
            reply(rss_bytes=resident_bytes(),
                  peak_rss_bytes=resident_bytes("VmHWM"))
            return


if __name__ == "__main__":
    run_child(main)
