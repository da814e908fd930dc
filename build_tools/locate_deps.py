"""Print CMake `set()` lines locating TensorFlow and oneDNN for the build.

TensorFlow's flags come from tf.sysconfig, as TF documents for plugins.
oneDNN comes from the onednn-devel-cpu-gomp wheel, which puts its headers and
libdnnl.so into the environment prefix (include/, lib/) rather than a package.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import sys
from pathlib import Path


def cmake_set(name: str, value: str) -> str:
    return f'set({name} "{value}")'


def tensorflow_lines() -> list[str]:
    os.environ["INT8FLOW_DISABLE"] = "1"  # never load an installed int8flow here
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    flags = tf.sysconfig.get_compile_flags()
    defines = [f[2:] for f in flags if f.startswith("-D")]
    major, minor = tf.__version__.split(".")[:2]
    return [
        cmake_set("TF_INCLUDE_DIR", tf.sysconfig.get_include()),
        cmake_set("TF_LIB_DIR", tf.sysconfig.get_lib()),
        cmake_set("TF_DEFINES", ";".join(defines)),
        cmake_set("TF_VERSION", tf.__version__),
        cmake_set("TF_MAJOR_MINOR", f"{major}.{minor}"),
    ]


def onednn_lines() -> list[str]:
    files = []
    for dist in ("onednn-devel-cpu-gomp", "onednn-cpu-gomp"):  # headers; library
        try:
            files += md.files(dist) or []
        except md.PackageNotFoundError:
            sys.exit(f"{dist} is not installed (a build requirement of int8flow)")
    header = next((f for f in files if f.name == "dnnl.hpp"), None)
    library = next((f for f in files if f.name == "libdnnl.so"), None)
    if header is None or library is None:
        sys.exit("onednn-devel-cpu-gomp provides no dnnl.hpp or libdnnl.so")
    include_dir = Path(header.locate()).resolve().parent
    if include_dir.name == "dnnl":  # include/oneapi/dnnl/dnnl.hpp
        include_dir = include_dir.parent.parent
    return [
        cmake_set("DNNL_INCLUDE_DIR", str(include_dir)),
        cmake_set("DNNL_LIBRARY", str(Path(library.locate()).resolve())),
    ]


if __name__ == "__main__":
    print("\n".join(tensorflow_lines() + onednn_lines()))
