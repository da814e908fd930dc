"""The kernel, INT8 and fuzz checks against int8flow built with AddressSanitizer
and UBSan (sanitizer_env.py): any sanitizer report fails. The build takes 2 to 3
minutes on 2 cores, the checks about 1.5 more."""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import SUBPROCESS_TIMEOUT, clean_env
from sanitizer_env import make_env, sanitizer_reports
from test_int8 import BAD_INPUT, DYNAMIC_MODEL

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_env(tmp_path_factory.mktemp("sanitized"))


def run_sanitized(python: Path, *args: str, timeout: int = SUBPROCESS_TIMEOUT,
                  **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(python), *args], env=clean_env(**env),
                            capture_output=True, text=True, timeout=timeout)
    reports = sanitizer_reports(result.stderr)
    if reports:
        first = result.stderr.index(reports[0])
        pytest.fail(f"{len(reports)} sanitizer report(s):\n{result.stderr[first:first + 8000]}")
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_loads_the_sanitized_plugin(python: Path) -> None:
    # Guards the rest: checks that ran on TF's CPU or the normal build prove nothing.
    result = run_sanitized(python, "-c", "import json, tensorflow, int8flow\n"
                                         "print(json.dumps(int8flow.load_state()))")
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["active"], state
    assert Path(state["plugin_path"]).is_relative_to(python.parent), state["plugin_path"]


@pytest.mark.parametrize("script, env", [
    ("kernel_checks.py", {}),
    ("int8_checks.py", {}),
    ("int8_checks.py", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),  # the 7-bit weights path
])
def test_checks(python: Path, tmp_path: Path, script: str, env: dict[str, str]) -> None:
    out = tmp_path / "out.json"
    run_sanitized(python, str(TESTS / script), str(out), **env)
    results = json.loads(out.read_text())["results"]
    assert results and all(r["device"].endswith("QCPU:0") for r in results)
    assert not [r["name"] for r in results if not r["ok"]]


def test_int8_bad_input(python: Path) -> None:
    result = run_sanitized(python, "-c", textwrap.dedent(BAD_INPUT))
    assert " | " in result.stdout and "NO ERROR" not in result.stdout, result.stdout  # test_int8 counts them


def test_dynamic_int8_model(python: Path) -> None:
    result = run_sanitized(python, "-c", textwrap.dedent(DYNAMIC_MODEL), INT8FLOW_QUANTIZE="dynamic")
    r = json.loads(result.stdout.strip().splitlines()[-1])
    assert "INT8 dynamic _QcpuFusedMatMul" in r["fusions"] and r["cos_after"] >= 0.999, r


def test_fuzzed_graphs(python: Path) -> None:
    result = run_sanitized(python, str(TESTS / "fuzz_graphs.py"), "100", timeout=600)
    assert "fusions" in result.stdout
