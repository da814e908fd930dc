"""Whole models that QCPU covers end to end: no op falls back to CPU, so the
only copies at steady state are the inputs in and the outputs out."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import run_python


def test_mlp_runs_wholly_on_qcpu(installed: Path) -> None:
    result = run_python("""
        import json
        import numpy as np, tensorflow as tf, int8flow
        from int8flow.bench.models import MODELS

        spec = MODELS["mlp"]
        model, x = spec.build(), spec.make_inputs(4, 0)
        on_qcpu = tf.function(model)
        @tf.function
        def on_cpu(t):
            with tf.device("/device:CPU:0"):
                return model(t)
        reference = on_cpu(x).numpy()
        on_qcpu(x)  # trace, optimize, warm up
        int8flow.reset_stats()
        outputs = [on_qcpu(x).numpy() for _ in range(3)]
        stats = int8flow.stats()
        print(json.dumps({
            "copies": stats["copies"], "fusions": stats["fusions"],
            "in_bytes": x.nbytes, "out_bytes": reference.nbytes,
            "max_err": max(float(np.abs(o - reference).max()) for o in outputs),
            "scale": float(np.abs(reference).max()),
        }))
    """)
    assert result.returncode == 0, result.stderr[-4000:]
    r = json.loads(result.stdout.strip().splitlines()[-1])
    # 3 calls: one input copied in and one output copied out each, nothing else.
    assert r["copies"]["htod"] == {"count": 3, "bytes": 3 * r["in_bytes"]}, r
    assert r["copies"]["dtoh"] == {"count": 3, "bytes": 3 * r["out_bytes"]}, r
    assert r["copies"]["dtod"]["count"] == 0, r
    # All four Dense layers fused: relu, gelu (collapsed first), relu, none.
    assert r["fusions"].get("gelu (erf)") == 1, r
    assert r["fusions"].get("MatMul+BiasAdd+activation") == 3, r
    assert r["fusions"].get("MatMul+BiasAdd") == 1, r
    # Four layers of K <= 1024 float32 dot products, against Eigen's order.
    assert r["max_err"] <= 1e-4 * r["scale"], r
