"""Shared models under threads, and long runs: `int8flow bench --soak`'s checks
(int8flow/bench/soak.py), each in a fresh process, FP32 and dynamic INT8.
The bench runs the long form (10,000 calls per model); CI runs these."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import run_json
from int8flow.bench.soak import MAX_RSS_GROWTH, run_check

QUANTIZE = ["off", "dynamic"]
SOAK_CALLS = 10000  # the full soak: about 15 s per model here


def assert_ok(result: dict[str, Any]) -> None:
    assert "error" not in result, result["error"]
    assert result["ok"], result


@pytest.mark.parametrize("quantize", QUANTIZE)
def test_eight_threads_share_one_model(installed, quantize: str) -> None:
    # 8 threads x 500 calls: every result bit for bit the single-thread one,
    # no thread left running after the timeout.
    result = run_check("threads", ["cnn"], quantize, calls=500, threads=8, timeout_s=240)
    assert_ok(result)
    assert result["mismatches"] == 0 and result["hung_threads"] == 0


@pytest.mark.parametrize("quantize", QUANTIZE)
def test_two_models_at_once(installed, quantize: str) -> None:
    assert_ok(run_check("two_models", ["cnn", "mlp"], quantize, calls=200, threads=4, timeout_s=240))


@pytest.mark.parametrize("quantize", QUANTIZE)
def test_soak_holds_memory_and_caches_steady(installed, quantize: str) -> None:
    result = run_check("soak", ["mlp"], quantize, calls=SOAK_CALLS)
    assert_ok(result)
    assert result["rss_growth"] < MAX_RSS_GROWTH
    caches = result["caches_after"]
    assert caches == result["caches_before"]
    # The MLP's three big layers hold packed weights (FP32) or quantized and
    # packed s8 ones (INT8): caches that report nothing would be a bug too.
    kind = "packed_weights" if quantize == "off" else "quantized_weights"
    assert caches[kind]["entries"] >= 3 and caches[kind]["bytes"] > 2**20, caches
    assert caches["primitives"]["entries"] > 0, caches


def test_primitive_cache_is_bounded_when_shapes_never_repeat(installed) -> None:
    # Each kernel keeps at most 16 primitives (PrimitiveCache::kCapacity):
    # a server fed ever-new batch sizes must not grow without end.
    seen = run_json("""
        import json, numpy as np, tensorflow as tf, int8flow
        w = tf.constant(np.ones((8, 4), np.float32))
        f = tf.function(lambda x: tf.nn.relu(tf.matmul(x, w)),
                        input_signature=[tf.TensorSpec([None, 8], tf.float32)])
        seen = []
        for batch in range(1, 41):
            f(np.ones((batch, 8), np.float32))
            seen.append(int8flow.stats()["caches"]["primitives"]["entries"])
        print(json.dumps(seen))
        """)
    kernels = seen[0]  # after one shape, one primitive per kernel
    assert max(seen) == 16 * kernels and seen[-1] < max(seen), seen
