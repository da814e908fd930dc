"""The fast linters, as tests so that CI's one `pytest` runs them: ruff on the
Python, mypy on the package, clang-format on csrc/. Their settings are in
pyproject.toml and .clang-format; each takes seconds, well under TIMEOUT_S."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The venv's own tools (the `test` extra installs them), not whatever is on PATH.
BIN = Path(sys.executable).parent
TIMEOUT_S = 120
MAX_OUTPUT = 20_000  # characters of the tool's output a failure shows


def run_tool(name: str, *args: str) -> None:
    """Runs `name` from the venv in the repository root; it must exit 0 (else the
    test fails showing its output)."""
    exe = shutil.which(name, path=str(BIN))
    if exe is None:
        pytest.skip(f"{name} is not installed in {BIN} (pip install '.[test]')")
    command = f"{name} {' '.join(args)}"
    try:
        result = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} took over {TIMEOUT_S} s", pytrace=False)
    output = (result.stdout + result.stderr).strip()
    if len(output) > MAX_OUTPUT:
        output = output[:MAX_OUTPUT] + f"\n... ({len(output) - MAX_OUTPUT} more characters)"
    if result.returncode != 0:
        pytest.fail(f"{command} exited {result.returncode}:\n{output}", pytrace=False)


def test_ruff() -> None:
    # Nothing to cache: ruff checks everything in well under a second.
    run_tool("ruff", "check", "--no-cache", "python", "tests", "benchmarks")


def test_mypy(tmp_path: Path) -> None:
    # A fresh cache each time: mypy's incremental cache can miss a module that
    # appeared since the last run (a new .pyi) and report stale errors.
    run_tool("mypy", "--cache-dir", str(tmp_path / "mypy_cache"), "python/int8flow")


def test_clang_format() -> None:
    sources = sorted(str(p.relative_to(ROOT)) for pattern in ("*.cc", "*.h") for p in (ROOT / "csrc").rglob(pattern))
    assert sources, "no C++ sources under csrc/"
    run_tool("clang-format", "--dry-run", "--Werror", "--style=file", *sources)
