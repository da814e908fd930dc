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


def test_tensors_a_restore_reads_on_the_cpu_go_back_to_the_os() -> None:
    # A restore reads each value on the CPU and copies it to its QCPU variable;
    # TF's own CPU pool would keep all of them for ever (tf_cpu_allocator.cc).
    code = """
        import ctypes, json, tempfile, tensorflow as tf, int8flow
        getenv = ctypes.CDLL(None).getenv
        getenv.restype = ctypes.c_char_p
        def rss_mib():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) >> 10 for line in status if line.startswith("VmRSS"))
        variables = [tf.Variable(tf.zeros((1024, 1024))) for _ in range(32)]  # 128 MiB
        checkpoint = tf.train.Checkpoint(v=variables)
        before = rss_mib()
        checkpoint.read(checkpoint.write(tempfile.mkdtemp() + "/ckpt"))
        print(json.dumps({"grew_mib": rss_mib() - before, "device": variables[0].device,
                          "said": int8flow.load_state()["tf_cpu_allocator"],
                          "variable": (getenv(b"TF_ONEDNN_USE_SYSTEM_ALLOCATOR") or b"").decode()}))
        """
    allocator = ("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
    r = run_json(code, unset=allocator)
    assert r["device"].endswith("device:QCPU:0") and r["variable"] == "1"
    assert r["said"].startswith("malloc, set by int8flow") and r["grew_mib"] < 32, r
    kept = run_json(code, unset=allocator, TF_ONEDNN_USE_SYSTEM_ALLOCATOR="0")
    assert kept["said"].startswith("kept:") and kept["variable"] == "0"
    assert kept["grew_mib"] > 100, kept  # TF's pool: what the default avoids
    stock = run_json(code, unset=allocator, INT8FLOW_DISABLE="1")
    assert stock["said"] == "" and stock["variable"] == "" and "CPU" in stock["device"]
