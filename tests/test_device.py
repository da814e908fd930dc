"""The QCPU device as TensorFlow uses it: placement, copy counters, memory info."""
from __future__ import annotations

from conftest import run_json, run_python


def test_copies_through_tensorflow_are_counted(installed) -> None:
    r = run_json("""
        import json, numpy as np, tensorflow as tf, int8flow
        x = np.arange(1000, dtype="float32")          # 4000 bytes
        with tf.device("/CPU:0"):
            on_cpu = tf.constant(x) * 1.0
        int8flow.reset_stats()
        with tf.device("/QCPU:0"):
            on_qcpu = tf.identity(on_cpu)              # CPU -> QCPU
        after_htod = int8flow.stats()["copies"]
        back = on_qcpu.numpy()                          # QCPU -> host
        after_dtoh = int8flow.stats()["copies"]
        info = tf.config.experimental.get_memory_info("QCPU:0")
        int8flow.reset_stats()
        print(json.dumps({"device": on_qcpu.device, "same": bool((back == x).all()),
                          "htod": after_htod["htod"], "dtoh": after_dtoh["dtoh"],
                          "memory": info, "reset": int8flow.stats()["copies"]}))
        """)
    assert r["device"].endswith("device:QCPU:0") and r["same"]
    assert r["htod"]["count"] >= 1 and r["htod"]["bytes"] >= 4000
    assert r["dtoh"]["count"] >= 1 and r["dtoh"]["bytes"] >= 4000
    assert r["memory"]["current"] >= 4000 and r["memory"]["peak"] >= r["memory"]["current"]
    assert all(v == {"count": 0, "bytes": 0} for v in r["reset"].values())


def test_default_placement_is_qcpu(installed) -> None:
    result = run_python("""
        import tensorflow as tf
        v = tf.Variable([1.0, 2.0])
        print(v.device)
        """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("device:QCPU:0")


def test_openmp_workers_keep_spinning_unless_the_user_chose() -> None:
    # libgomp reads its wait policy once, as it loads; what it will use is
    # what the C environment holds then (os.environ does not see setenv).
    code = """
        import ctypes, json, tensorflow as tf, int8flow
        getenv = ctypes.CDLL(None).getenv
        getenv.restype = ctypes.c_char_p
        print(json.dumps({"said": int8flow.cpu_features()["openmp"],
                          "policy": (getenv(b"OMP_WAIT_POLICY") or b"").decode(),
                          "spin": (getenv(b"GOMP_SPINCOUNT") or b"").decode()}))
        """
    omp = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    r = run_json(code, unset=omp)
    assert r == {"said": "set by int8flow: OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=30000",
                 "policy": "ACTIVE", "spin": "30000"}
    r = run_json(code, unset=omp, OMP_WAIT_POLICY="PASSIVE")
    assert r["said"].startswith("kept:") and (r["policy"], r["spin"]) == ("PASSIVE", "")
