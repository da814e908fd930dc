"""Shared helpers: most tests run TensorFlow in a fresh subprocess, because the
plugin is loaded once per process at `import tensorflow` and each test needs
its own environment (faults, INT8FLOW_DISABLE, limits)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

SITE = Path(sysconfig.get_path("platlib"))
PLUGIN = SITE / "tensorflow-plugins" / "libint8flow_plugin.so"
PACKAGE = SITE / "int8flow"
# Every subprocess must finish in this many seconds: a hang is a failure.
SUBPROCESS_TIMEOUT = 300


def clean_env(unset: tuple[str, ...] = (), **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INT8FLOW_") and k not in unset}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(overrides)
    return env


def run_python(code: str, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a new interpreter with INT8FLOW_* taken only from `env`
    and without the variables named in `unset`."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=clean_env(unset, **env), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )


def run_json(code: str, unset: tuple[str, ...] = (), **env: str) -> Any:
    """Runs `code` as run_python does; it must exit 0 and print one JSON object
    as its last stdout line, which is returned (an object or a list)."""
    return run_json_and_log(code, unset, **env)[0]


def run_json_and_log(code: str, unset: tuple[str, ...] = (), **env: str) -> tuple[Any, str]:
    """run_json, and the process's stderr (for its warnings)."""
    result = run_python(code, unset, **env)
    assert result.returncode == 0, f"process died (rc={result.returncode}):\n{result.stderr[-4000:]}"
    lines = result.stdout.strip().splitlines()
    assert lines, f"no JSON line on stdout:\n{result.stderr[-4000:]}"
    return json.loads(lines[-1]), result.stderr


def int8flow_lines(stderr: str) -> list[str]:
    """The lines the plugin wrote (it prefixes every one with 'int8flow: ')."""
    return [line for line in stderr.splitlines() if line.startswith("int8flow: ")]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true",
                     help="long profiles: thousands of fuzzed graphs instead of CI's few dozen")


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))


@pytest.fixture(scope="session")
def installed() -> Path:
    if not PLUGIN.is_file():
        pytest.fail(f"{PLUGIN} is missing: install int8flow first (see README)")
    return PLUGIN
