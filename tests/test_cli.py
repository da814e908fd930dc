"""`int8flow doctor`, `demo` and `quantize`, as a user runs them."""
from __future__ import annotations

import subprocess
import sys

from conftest import SUBPROCESS_TIMEOUT, clean_env


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "int8flow", *args], env=clean_env(**env),
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def test_doctor_reports_an_active_device(installed) -> None:
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("/physical_device:QCPU:0", "oneDNN      3.", "AVX2", "status      OK",
                     "libint8flow_plugin.so", "TensorFlow  2.21", "bf16        "):
        assert expected in result.stdout, result.stdout
    # Off by default, whether or not the CPU could run it.
    bf16 = next(line for line in result.stdout.splitlines() if line.startswith("bf16"))
    assert "supported, off" in bf16 or "not supported here" in bf16, bf16


def test_doctor_fails_and_explains_when_inert(installed) -> None:
    result = run_cli("doctor", INT8FLOW_DISABLE="1")
    assert result.returncode == 1
    assert "INERT: disabled by INT8FLOW_DISABLE" in result.stdout


def test_demo_runs_a_keras_model_on_qcpu(installed) -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/physical_device:QCPU:0" in result.stdout
    assert "Keras predict on QCPU: output (8, 10)" in result.stdout


def test_quantize_writes_a_saved_model_and_refuses_bad_data(installed, tmp_path) -> None:
    from conftest import run_python

    made = run_python(f"""
        import numpy as np, keras
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
        model.save({str(tmp_path / "m.keras")!r})
        np.savez({str(tmp_path / "calib.npz")!r}, x=np.random.default_rng(0).standard_normal((32, 6)).astype("float32"))
        np.savez({str(tmp_path / "bad.npz")!r}, x=np.full((4, 6), np.nan, "float32"))
        """)
    assert made.returncode == 0, made.stderr[-2000:]
    out = tmp_path / "int8"
    result = run_cli("quantize", str(tmp_path / "m.keras"), "--data", str(tmp_path / "calib.npz"),
                     "--method", "percentile", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "saved_model.pb").is_file() and "int8" in result.stdout
    bad = run_cli("quantize", str(tmp_path / "m.keras"), "--data", str(tmp_path / "bad.npz"), "--out", str(out))
    assert bad.returncode == 2 and "NaN or Inf" in bad.stderr, bad.stderr[-2000:]
    missing = run_cli("quantize", str(tmp_path / "m.keras"), "--data", str(tmp_path / "calib.npz"),
                      "--key", "y", "--out", str(out))
    assert missing.returncode == 2 and "has no array 'y' (it has x)" in missing.stderr, missing.stderr[-2000:]


def test_quantize_takes_h5_and_saved_model_directories_with_named_inputs(installed, tmp_path) -> None:
    from conftest import run_python

    made = run_python(f"""
        import numpy as np, keras, tf_keras
        keras.utils.set_random_seed(0)
        ids, mask = keras.Input((6,), dtype="int32", name="ids"), keras.Input((6,), name="mask")
        h = keras.layers.Flatten()(keras.layers.Embedding(10, 4)(ids) * mask[..., None])
        model = keras.Model({{"ids": ids, "mask": mask}}, keras.layers.Dense(3, name="logits")(h))
        model.export({str(tmp_path / "saved")!r}, verbose=False)
        rng = np.random.default_rng(0)
        np.savez({str(tmp_path / "named.npz")!r}, ids=rng.integers(0, 10, (32, 6)).astype("int32"),
                 mask=np.ones((32, 6), "float32"))
        np.savez({str(tmp_path / "typo.npz")!r}, ids=np.zeros((4, 6), "int32"), msk=np.ones((4, 6), "float32"))
        h5 = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(8), tf_keras.layers.Dense(3)])
        h5.save({str(tmp_path / "m.h5")!r})
        np.savez({str(tmp_path / "one.npz")!r}, features=rng.standard_normal((32, 6)).astype("float32"))
        """)
    assert made.returncode == 0, made.stderr[-2000:]
    saved = run_cli("quantize", str(tmp_path / "saved"), "--data", str(tmp_path / "named.npz"), "--out",
                    str(tmp_path / "int8"), "--method", "kl", "--subset-size", "16", "--metric", "cosine",
                    "--ignore", "logits")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert "fp32: ignored_scope" in saved.stdout and (tmp_path / "int8" / "saved_model.pb").is_file(), saved.stdout
    h5 = run_cli("quantize", str(tmp_path / "m.h5"), "--data", str(tmp_path / "one.npz"), "--out",
                 str(tmp_path / "int8_h5"), "--quiet")
    assert h5.returncode == 0 and h5.stdout.startswith("INT8 SavedModel:"), h5.stdout + h5.stderr
    for args, message in [((str(tmp_path / "saved"), "--data", str(tmp_path / "typo.npz")), "no input 'msk'"),
                          ((str(tmp_path / "nothing.keras"), "--data", str(tmp_path / "one.npz")),
                           "no such file or SavedModel directory"),
                          ((str(tmp_path / "saved"), "--data", str(tmp_path / "named.npz"), "--signature-key", "x"),
                           "has no signature 'x'")]:
        bad = run_cli("quantize", *args, "--out", str(tmp_path / "bad"))
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and message in lines[-1] and lines[-1].startswith("int8flow quantize: "), bad.stderr
        assert "Traceback" not in bad.stderr, bad.stderr
