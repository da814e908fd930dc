"""`int8flow doctor` and `int8flow demo`, as a user runs them."""
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
                     "libint8flow_plugin.so", "TensorFlow  2.21"):
        assert expected in result.stdout, result.stdout


def test_doctor_fails_and_explains_when_inert(installed) -> None:
    result = run_cli("doctor", INT8FLOW_DISABLE="1")
    assert result.returncode == 1
    assert "INERT: disabled by INT8FLOW_DISABLE" in result.stdout


def test_demo_runs_a_keras_model_on_qcpu(installed) -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/physical_device:QCPU:0" in result.stdout
    assert "Keras predict on QCPU: output (8, 10)" in result.stdout
