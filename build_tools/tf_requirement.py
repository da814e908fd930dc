"""scikit-build-core metadata provider: int8flow's runtime dependencies.

TensorFlow 2.21 ships as two PyPI distributions, `tensorflow` and
`tensorflow-cpu`, that install the same `tensorflow` package. Requiring one
by name would make pip install it beside the other, and the two would
overwrite each other's files. So the requirement names the distribution the
target environment already has, and `tensorflow-cpu` (no CUDA wheels; this is
a CPU plugin) when it has neither. INT8FLOW_TF_DIST overrides the choice.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import site
import sysconfig
from collections.abc import Mapping
from typing import Any

TF_SPEC = ">=2.21,<2.22"  # the core links TF's C++ protobuf: one minor only
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel")
DEFAULT_DIST = "tensorflow-cpu"
ALWAYS = ["onednn-cpu-gomp==2023.2.0", "numpy"]


def _target_site_dirs() -> list[str]:
    # pip builds in an isolated environment, but the interpreter is the
    # target's, so its sysconfig paths still name the target site-packages.
    dirs = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    if site.ENABLE_USER_SITE:
        dirs.add(site.getusersitepackages())
    return [d for d in dirs if d and os.path.isdir(d)]


def installed_tensorflow() -> str | None:
    for dist in md.distributions(path=_target_site_dirs()):
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in TF_DISTRIBUTIONS:
            return name
    return None


def dynamic_metadata(field: str, settings: Mapping[str, Any] | None = None) -> list[str]:
    if field != "dependencies":
        raise ValueError(f"tf_requirement provides 'dependencies', not {field!r}")
    dist = os.environ.get("INT8FLOW_TF_DIST") or installed_tensorflow() or DEFAULT_DIST
    return [f"{dist}{TF_SPEC}", *ALWAYS]
