"""What `pip install` put where, and what each library exports."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PACKAGE, run_python

ENTRY_POINTS = {"SE_InitPlugin", "TF_InitKernel", "TF_InitGraph", "TF_InitProfiler"}


def exported(library: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(library)], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def runpath(library: Path) -> str:
    out = subprocess.run(["readelf", "-d", str(library)], check=True,
                         capture_output=True, text=True).stdout
    return next((line for line in out.splitlines() if "RUNPATH" in line), "")


def test_plugin_exports_only_entry_points(installed: Path) -> None:
    symbols = exported(installed)
    assert symbols <= ENTRY_POINTS, symbols - ENTRY_POINTS
    assert {"SE_InitPlugin", "TF_InitGraph", "TF_InitKernel"} <= symbols


def test_core_exports_only_its_table(installed: Path) -> None:
    assert exported(PACKAGE / "libint8flow_core.so") == {"int8flow_core_api"}


def test_no_library_exports_onednn_or_protobuf(installed: Path) -> None:
    for library in [installed, *PACKAGE.glob("*.so")]:
        leaked = {s for s in exported(library) if "dnnl" in s or "google" in s or "tensorflow" in s}
        assert not leaked, f"{library.name} exports {sorted(leaked)[:5]}"


def test_runtime_exports_only_int8flow_symbols(installed: Path) -> None:
    symbols = exported(PACKAGE / "libint8flow_runtime.so")
    assert symbols and all("int8flow" in s for s in symbols), symbols


def test_rpaths_find_tensorflow_and_onednn_in_venv_and_user_installs(installed: Path) -> None:
    # site-packages/tensorflow-plugins -> ../int8flow, ../tensorflow; libdnnl.so.3 in <prefix>/lib.
    assert "$ORIGIN/../int8flow" in runpath(installed)
    assert "$ORIGIN/../tensorflow" in runpath(installed)
    assert "$ORIGIN/../../.." in runpath(PACKAGE / "libint8flow_core.so")
    assert "$ORIGIN/../../.." in runpath(PACKAGE / "libint8flow_runtime.so")


def test_native_module_works_without_tensorflow(installed: Path) -> None:
    result = run_python("""
        import sys, int8flow
        assert "tensorflow" not in sys.modules
        cpu = int8flow.cpu_features()
        assert cpu["cores"] >= 1 and cpu["flags"]["avx2"] in (True, False)
        assert cpu["onednn_version"].startswith("3."), cpu
        assert int8flow.stats()["copies"]["htod"]["count"] == 0
        assert int8flow.is_loaded() is False
        assert "tensorflow" not in sys.modules
        print("ok", int8flow.__version__)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok 0.")


def load_tf_requirement():
    path = Path(__file__).parents[1] / "build_tools" / "tf_requirement.py"
    spec = importlib.util.spec_from_file_location("tf_requirement", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("installed_dist, expected", [
    ("tensorflow", "tensorflow>=2.21,<2.22"),
    ("tensorflow_cpu", "tensorflow-cpu>=2.21,<2.22"),
    (None, "tensorflow-cpu>=2.21,<2.22"),
])
def test_dependency_names_the_tensorflow_already_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed_dist: str | None,
        expected: str) -> None:
    provider = load_tf_requirement()
    if installed_dist:
        info = tmp_path / f"{installed_dist}-2.21.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {installed_dist}\nVersion: 2.21.0\n")
    monkeypatch.setattr(provider, "_target_site_dirs", lambda: [str(tmp_path)])
    monkeypatch.delenv("INT8FLOW_TF_DIST", raising=False)
    deps = provider.dynamic_metadata("dependencies")
    assert deps[0] == expected
    assert "onednn-cpu-gomp==2023.2.0" in deps


def test_dependency_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INT8FLOW_TF_DIST", "tensorflow")
    assert load_tf_requirement().dynamic_metadata("dependencies")[0] == "tensorflow>=2.21,<2.22"


def test_installed_metadata_did_not_add_a_second_tensorflow() -> None:
    import importlib.metadata as md

    requires = md.requires("int8flow") or []
    tf_requirements = [r for r in requires if r.startswith("tensorflow")]
    assert len(tf_requirements) == 1
    name = tf_requirements[0].split(">")[0].split("=")[0].split("<")[0]
    md.distribution(name)  # the distribution it names is the one installed here


def test_pip_build_sees_the_target_environments_tensorflow(tmp_path: Path) -> None:
    # End to end through pip's isolated build: in a venv whose only TF is a
    # `tensorflow` distribution, int8flow must require `tensorflow`, not add
    # `tensorflow-cpu` beside it.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_dir = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              check=True, capture_output=True, text=True).stdout.strip()
    info = Path(site_dir) / "tensorflow-2.21.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorflow\nVersion: 2.21.0\n")
    (info / "RECORD").write_text("")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "--no-deps", "--report", str(report),
         str(Path(__file__).parents[1])], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    (install,) = json.loads(report.read_text())["install"]
    requires = [r for r in install["metadata"]["requires_dist"] if "extra" not in r]
    assert "tensorflow<2.22,>=2.21" in requires and not any("tensorflow-cpu" in r for r in requires)
