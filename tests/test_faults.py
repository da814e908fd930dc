"""Whatever goes wrong inside the plugin, `import tensorflow` and Keras keep working.

Each fault is injected in a fresh interpreter through INT8FLOW_TEST_FAULT (or
a real bad setting). The process must not abort; QCPU goes inert with exactly
one warning saying why; a small model still runs, on CPU, correctly.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import SITE, int8flow_lines, run_json_and_log, run_python

SMALL_MODEL = """
import json, numpy as np, tensorflow as tf, keras, int8flow
rng = np.random.default_rng(0)
w, x = rng.standard_normal((6, 3)).astype("float32"), rng.standard_normal((4, 6)).astype("float32")
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, use_bias=False)])
model.set_weights([w])
got = model.predict(x, verbose=0)
print(json.dumps({
    "devices": [d.device_type for d in tf.config.list_physical_devices()],
    "state": int8flow.load_state(),
    "max_error": float(np.max(np.abs(got - x @ w))),
}))
"""


def run_small_model(**env: str) -> tuple[dict, list[str]]:
    report, log = run_json_and_log(SMALL_MODEL, **env)
    assert report["max_error"] < 1e-5
    return report, int8flow_lines(log)


@pytest.mark.parametrize("fault, reason", [
    ("onednn_missing", "oneDNN cannot be used"),
    ("core_missing", "cannot load the int8flow core"),
    ("onednn_self_test", "injected failure (INT8FLOW_TEST_FAULT=onednn_self_test)"),
    ("no_avx2", "lacks AVX2"),
    ("device_init", "initialisation failed: injected failure"),
    ("graph_init", "graph pass not registered"),
    ("tf_version_mismatch", "built for TensorFlow 2.21.x but this is TensorFlow 2.99"),
])
def test_fault_goes_inert_with_one_warning(installed, fault: str, reason: str) -> None:
    report, lines = run_small_model(INT8FLOW_TEST_FAULT=fault)
    assert "QCPU" not in report["devices"] and "CPU" in report["devices"]
    assert report["state"]["initialized"] and not report["state"]["active"]
    assert reason in report["state"]["reason"]
    assert len(lines) == 1 and reason in lines[0], lines


def test_kernel_init_failure_keeps_qcpu_with_ops_on_cpu(installed) -> None:
    # Without its kernels QCPU still holds tensors; every op runs on CPU.
    report, lines = run_small_model(INT8FLOW_TEST_FAULT="kernel_init")
    assert "QCPU" in report["devices"] and report["state"]["active"]
    assert any("QCPU kernels not registered" in line for line in lines), lines


def test_graph_pass_failure_hands_back_the_graph(installed) -> None:
    # The pass throws on every graph (as an .at() out of range would): each
    # call still runs on QCPU with the graph as TF gave it, minus XLA (Keras'
    # predict compiles with XLA, which has no QCPU device), said once and
    # counted, with nothing fused.
    r, log = run_json_and_log("""
        import json, numpy as np, tensorflow as tf, keras, int8flow
        rng = np.random.default_rng(0)
        w, x = rng.standard_normal((6, 3)).astype("float32"), rng.standard_normal((4, 6)).astype("float32")
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="relu")])
        model.set_weights([w, np.zeros(3, np.float32)])
        int8flow.record_op_stats(True)
        got = model.predict(x, verbose=0)
        s = int8flow.stats()
        print(json.dumps({"err": float(np.abs(got - np.maximum(x @ w, 0)).max()), "ops": sorted(s["ops"]),
                          "errors": s["pass_errors"], "fusions": s["fusions"]}))
    """, INT8FLOW_TEST_FAULT="graph_pass")
    assert r["err"] < 1e-5 and "MatMul" in r["ops"], r  # unfused, on QCPU
    assert r["fusions"] == {} and list(r["errors"]) == ["injected failure (INT8FLOW_TEST_FAULT=graph_pass)"], r
    said = [line for line in int8flow_lines(log) if "graph pass failed" in line]
    assert len(said) == 1, log[-3000:]


def test_disable_is_silent_and_inert(installed) -> None:
    report, lines = run_small_model(INT8FLOW_DISABLE="1")
    assert "QCPU" not in report["devices"]
    assert report["state"]["reason"] == "disabled by INT8FLOW_DISABLE"
    assert lines == []


def test_settings_set_after_importing_int8flow_still_count(installed) -> None:
    # The bench's workers import int8flow, then set INT8FLOW_DISABLE, then
    # import TF: the settings must be read at TF's import, not int8flow's.
    result = run_python("""
        import os, int8flow
        os.environ["INT8FLOW_DISABLE"] = "1"
        import tensorflow as tf
        print(int8flow.load_state()["reason"], int8flow.is_loaded())
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "disabled by INT8FLOW_DISABLE False"


def test_healthy_plugin_is_active(installed) -> None:
    report, lines = run_small_model()
    assert "QCPU" in report["devices"] and report["state"]["active"]
    assert all("XLA" in line for line in lines), lines


@pytest.mark.parametrize("env, needle", [
    ({"INT8FLOW_DISABLE": "maybe"}, "INT8FLOW_DISABLE='maybe' is not a boolean"),
    ({"INT8FLOW_MEMORY_LIMIT_MB": "-5"}, "INT8FLOW_MEMORY_LIMIT_MB='-5' is not a positive"),
    ({"INT8FLOW_MEMORY_LIMIT_MB": "lots"}, "INT8FLOW_MEMORY_LIMIT_MB='lots' is not a positive"),
    ({"INT8FLOW_FUSION": "sometimes"}, "INT8FLOW_FUSION='sometimes' is not a boolean"),
])
def test_bad_setting_warns_once_and_uses_default(installed, env: dict, needle: str) -> None:
    report, lines = run_small_model(**env)
    assert "QCPU" in report["devices"] and report["state"]["active"]
    assert sum(needle in line for line in lines) == 1, lines


def test_memory_limit_gives_a_clean_tf_error(installed) -> None:
    # TF reports a failed copy destination as it does for GPUs: an
    # InternalError naming the uninitialised tensor; QCPU's BFC allocator
    # logs the OOM. Either way a Python exception, not a crash.
    result = run_python("""
        import tensorflow as tf
        big = tf.zeros([100 * 2**20 // 4])          # 100 MiB, made on CPU
        try:
            with tf.device("/QCPU:0"):
                tf.identity(big)                    # must be copied onto QCPU
        except (tf.errors.ResourceExhaustedError, tf.errors.InternalError) as e:
            print("refused:", type(e).__name__, e.message[:200])
        with tf.device("/QCPU:0"):
            small = tf.identity(tf.ones([1000]))    # the device still works after it
        print("after:", float(tf.reduce_sum(small)))
        """, INT8FLOW_MEMORY_LIMIT_MB="64", TF_CPP_MIN_LOG_LEVEL="0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused:" in result.stdout and "after: 1000.0" in result.stdout
    assert "ran out of memory" in result.stderr and "Limit:                        64.00MiB" in result.stderr


# ---- loading faults: the plugin reached twice, or found without oneDNN -------

LIST_DEVICES = """
import json, numpy as np, tensorflow as tf, keras, int8flow
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
model.predict(np.ones((1, 3), "float32"), verbose=0)
print(json.dumps({"devices": [d.device_type for d in tf.config.list_physical_devices()],
                  "state": int8flow.load_state()}))
"""


def run_with_pythonpath(path: Path) -> tuple[dict, list[str]]:
    report, log = run_json_and_log(LIST_DEVICES, PYTHONPATH=str(path))
    return report, int8flow_lines(log)


def test_site_packages_reached_twice_does_not_abort(installed, tmp_path: Path) -> None:
    # TF issue #55497: TF 2.21 still loads a plugin once per path string and
    # aborts on the second platform registration. A symlink named like a
    # site-packages folder on PYTHONPATH reproduces it (as a venv's lib64 does).
    alias = tmp_path / "site-packages"
    alias.symlink_to(SITE)
    report, lines = run_with_pythonpath(alias)
    assert report["devices"].count("QCPU") == 1 and report["state"]["active"]
    assert len(lines) == 2 and "second time" in lines[0] and "provides QCPU" in lines[0], lines


def test_second_install_is_inert_not_fatal(installed, tmp_path: Path) -> None:
    # A copy of the plugin in another site-packages, with no libdnnl.so.3 in
    # its <prefix>/lib. TF walks site-packages folders in set order (it varies
    # with the hash seed), so either copy may load first: the venv's goes
    # active, or the copy goes inert for want of oneDNN (a real load failure).
    # Either way the second load stays inert, and nothing aborts.
    copy = tmp_path / "lib" / "python3" / "site-packages"
    for folder in ("tensorflow-plugins", "int8flow"):
        shutil.copytree(SITE / folder, copy / folder)
    report, lines = run_with_pythonpath(copy)
    duplicate = [line for line in lines if "second time" in line]
    assert len(duplicate) == 1, lines
    if report["state"]["active"]:
        assert report["devices"].count("QCPU") == 1 and "provides QCPU" in duplicate[0]
    else:
        assert "QCPU" not in report["devices"] and "inert too" in duplicate[0]
        assert "libdnnl.so.3" in report["state"]["reason"]
