"""Peak memory of `int8flow.quantize` on a bench model (docs/int8.md, "Memory").

    /usr/bin/time -v python benchmarks/quantize_memory.py bert12

Builds the model, quantizes it on 8 calibration inputs (as the suite's
random-weight test does) and prints, as JSON, the FP32 weights' size, the
process's peak RSS (getrusage's, the figure `/usr/bin/time -v` reports as
"Maximum resident set size") after building, after quantize and after the
quantized model's first call (which instantiates its graph), and the goal:
3x the FP32 weights + 1 GB.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="bert12")
    parser.add_argument("--method", default="percentile", choices=["minmax", "percentile", "kl"])
    args = parser.parse_args()

    import int8flow
    from int8flow.bench.models import MODELS

    spec = MODELS[args.model]
    model = spec.build()
    weights = int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in model.weights))
    built = peak_rss_bytes()
    start = time.perf_counter()
    quantized = int8flow.quantize(model, spec.make_inputs(8, 0), args.method, verbose=False)
    seconds = time.perf_counter() - start
    after = peak_rss_bytes()
    quantized(spec.make_inputs(1, 1))
    called = peak_rss_bytes()
    goal = 3 * weights + 2**30
    print(json.dumps({"model": args.model, "method": args.method, "fp32_weights_bytes": weights,
                      "peak_rss_built_bytes": built, "peak_rss_quantize_bytes": after,
                      "peak_rss_first_call_bytes": called,
                      "quantize_seconds": round(seconds, 1), "peak_over_weights": round(called / weights, 2),
                      "goal_bytes": goal, "within_goal": called <= goal,
                      "cpu": int8flow.cpu_features()["model"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
