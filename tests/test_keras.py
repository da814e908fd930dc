"""Unchanged Keras 3 code gives stock TensorFlow's numbers with the plugin present."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SUBPROCESS_TIMEOUT, clean_env, int8flow_lines

WORKLOAD = Path(__file__).parent / "keras_workload.py"
MODES = ("predict", "call", "tf_function", "keras_export", "saved_model")


def run_workload(out: Path, **env: str) -> tuple[dict[str, np.ndarray], str]:
    result = subprocess.run([sys.executable, str(WORKLOAD), str(out)], env=clean_env(**env),
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(np.load(out)), result.stderr


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    outputs, _ = run_workload(tmp_path_factory.mktemp("stock") / "out.npz", INT8FLOW_DISABLE="1")
    return outputs


@pytest.fixture(scope="module")
def plugin_run(installed: Path, tmp_path_factory: pytest.TempPathFactory):
    return run_workload(tmp_path_factory.mktemp("plugin") / "out.npz")


def test_stock_run_has_no_qcpu(stock: dict[str, np.ndarray]) -> None:
    assert int(stock["qcpu"]) == 0 and not bool(stock["active"])


def test_plugin_run_is_on_qcpu(plugin_run) -> None:
    outputs, stderr = plugin_run
    assert int(outputs["qcpu"]) == 1 and bool(outputs["active"])
    # predict's XLA request met QCPU and was skipped, with one notice.
    notices = [line for line in int8flow_lines(stderr) if "XLA" in line]
    assert len(notices) == 1, int8flow_lines(stderr)


@pytest.mark.parametrize("mode", MODES)
def test_same_numbers_as_stock(mode: str, stock: dict[str, np.ndarray], plugin_run) -> None:
    outputs, _ = plugin_run
    # A NaN in both would compare equal: the workload must give numbers.
    assert np.isfinite(stock[mode]).all() and np.isfinite(outputs[mode]).all()
    # QCPU's oneDNN kernels and stock TF (XLA in predict) sum in different
    # orders: FP32 rounding only (docs/kernels.md gives each op's bound).
    np.testing.assert_allclose(outputs[mode], stock[mode], rtol=1e-5, atol=1e-6)
    assert outputs[mode].shape == (4, 5)
