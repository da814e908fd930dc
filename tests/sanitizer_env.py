"""int8flow built with INT8FLOW_SANITIZE (ASan + UBSan), in a Python environment
of its own; test_sanitizers.py runs the kernel, INT8 and fuzz checks in it.

    python tests/sanitizer_env.py DIR            # builds and sets up DIR
    DIR/python tests/kernel_checks.py out.json   # any script, sanitized
    DIR/python -m pytest tests/test_faults.py    # any test file, subprocesses included

DIR/venv is a venv whose site-packages links every entry of this interpreter's
site-packages but int8flow and tensorflow-plugins, which come from the
sanitized build: with the normal plugin on sys.path too, TF would load both
and the second would go inert.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pybind11

ROOT = Path(__file__).parents[1]
SITE = Path(sysconfig.get_path("platlib"))
OURS = {"int8flow", "tensorflow-plugins"}
# CMakeLists.txt's sanitizer flags are GCC's (clang links no ASan runtime into shared libraries).
CXX = "g++"
# An ASan error, a UBSan one ("file:line:col: runtime error: ..."), or a sanitizer's own failure.
REPORT = re.compile(r"ERROR: \w*Sanitizer|runtime error: |Sanitizer: CHECK failed")


def gcc_file(name: str) -> str:
    return subprocess.run([CXX, f"-print-file-name={name}"], check=True,
                          capture_output=True, text=True).stdout.strip()


def sanitizer_env(venv: Path) -> dict[str, str]:
    return {
        # Python is not linked with libasan, so it must be loaded first; and
        # libstdc++ at once with it, or ASan's __cxa_throw interceptor finds no
        # real __cxa_throw and aborts at the first C++ throw (one happens
        # inside matplotlib during `import tensorflow`).
        "LD_PRELOAD": f"{gcc_file('libasan.so')}:{gcc_file('libstdc++.so')}",
        # ASan's dlopen interceptor makes glibc search libasan's RUNPATH, not the
        # caller's, so the runtime's dlopen("libdnnl.so.3") needs venv/lib here.
        "LD_LIBRARY_PATH": str(venv / "lib"),
        # No leak checks: Python and TF keep their allocations at exit by design.
        # Stack use after return and static initialisation order: free here.
        "ASAN_OPTIONS": "detect_leaks=0:detect_stack_use_after_return=1:check_initialization_order=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }


def build(build_dir: Path, site: Path) -> None:
    """Configures, compiles and installs the four libraries into `site`."""
    env = {**os.environ, "PATH": sysconfig.get_path("scripts") + os.pathsep + os.environ["PATH"]}
    # -O1 -g1: a quicker build than -O3, with the line tables reports need for file:line.
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
                    "-DINT8FLOW_SANITIZE=ON", f"-DCMAKE_CXX_COMPILER={CXX}",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG",
                    f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"],
                   env=env, check=True)
    subprocess.run(["cmake", "--build", str(build_dir), "-j2"], env=env, check=True)
    subprocess.run(["cmake", "--install", str(build_dir), "--prefix", str(site)], env=env, check=True)


def make_env(root: Path) -> Path:
    """Builds into root/build, sets up root/venv and writes root/python: that
    venv's interpreter with the sanitizer runtime and options. Returns it."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True)
    platlib = "import sysconfig; print(sysconfig.get_path('platlib'))"
    site = Path(subprocess.run([venv / "bin" / "python", "-c", platlib], check=True,
                               capture_output=True, text=True).stdout.strip())
    for entry in SITE.iterdir():
        if entry.name not in OURS:
            (site / entry.name).symlink_to(entry)
    # The libraries' RUNPATH $ORIGIN/../../.. (the venv's lib/) finds libdnnl.so.3.
    for lib in (Path(sys.prefix) / "lib").glob("libdnnl.so*"):
        (venv / "lib" / lib.name).symlink_to(lib)
    build(root / "build", site)
    shutil.copytree(ROOT / "python" / "int8flow", site / "int8flow", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    python = root / "python"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sanitizer_env(venv).items())
    python.write_text(f'#!/bin/sh\nexec env {exports} {shlex.quote(str(venv / "bin" / "python"))} "$@"\n')
    python.chmod(0o755)
    return python


def sanitizer_reports(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if REPORT.search(line)]


if __name__ == "__main__":
    print(make_env(Path(sys.argv[1]).resolve()))
