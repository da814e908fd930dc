"""The SP_StreamExecutor, called directly the way TF calls it (no TF runtime)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tensorflow as tf

from conftest import PACKAGE, clean_env

HARNESS = Path(__file__).parent / "native" / "stream_executor_harness.cc"
CSRC = Path(__file__).parents[1] / "csrc"


def build_harness(out_dir: Path) -> Path:
    binary = out_dir / "stream_executor_harness"
    tf_lib = tf.sysconfig.get_lib()
    defines = [f for f in tf.sysconfig.get_compile_flags() if f.startswith("-D")]
    subprocess.run(
        ["g++", "-std=c++17", "-O1", "-g", str(HARNESS), f"-I{CSRC}",
         f"-I{tf.sysconfig.get_include()}", *defines, f"-L{tf_lib}",
         "-l:libtensorflow_framework.so.2", f"-L{PACKAGE}", "-l:libint8flow_runtime.so",
         f"-Wl,-rpath,{tf_lib}", f"-Wl,-rpath,{PACKAGE}", "-ldl", "-pthread", "-o", str(binary)],
        check=True,
    )
    return binary


def run_harness(binary: Path, plugin: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), str(plugin), *args], env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_harness(tmp_path_factory.mktemp("harness"))


def test_stream_executor_contract(installed: Path, harness: Path) -> None:
    result = run_harness(harness, installed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


def test_memory_limit_is_reported_and_kept(installed: Path, harness: Path) -> None:
    result = run_harness(harness, installed, "64", INT8FLOW_MEMORY_LIMIT_MB="64")
    assert result.returncode == 0, result.stdout + result.stderr
