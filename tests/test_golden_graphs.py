"""GraphDef in, GraphDef out: for every row of the pass's fusion table, the
graph golden_graphs.py builds from that row becomes exactly the row's
replacement op, and computes what TF's CPU computes. One test per row, the
rows read from the installed plugin: a new row is tested without an edit here.
Likewise one test per INT8 rewrite case (golden_graphs.INT8_CASES)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUBPROCESS_TIMEOUT, clean_env, run_python

SCRIPT = Path(__file__).parent / "golden_graphs.py"


def case_names() -> dict[str, list[str]]:
    """The table's row names and the INT8 cases, at collection; one failing id
    each when the plugin cannot say."""
    result = run_python(f"""
        import json, sys
        sys.path.insert(0, {str(SCRIPT.parent)!r})
        import golden_graphs, int8flow
        print(json.dumps({{"rows": [r["name"] for r in json.loads(int8flow._native.fusion_table())],
                          "int8": list(golden_graphs.INT8_CASES)}}))
    """)
    if result.returncode != 0 or not result.stdout.strip():
        return {"rows": ["<no fusion table: is int8flow installed?>"], "int8": ["<no INT8 cases>"]}
    names = json.loads(result.stdout.strip().splitlines()[-1])
    return {kind: found or [f"<no {kind}>"] for kind, found in names.items()}


CASES = case_names()


@pytest.fixture(scope="module")
def golden(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("golden")
    (tmp / "dump").mkdir()
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp / "golden.json")],
                            env=clean_env(INT8FLOW_DUMP_GRAPHS=str(tmp / "dump")),
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads((tmp / "golden.json").read_text())
    return {"rows": {row["name"]: row for row in data["table"]},
            "results": {r["name"]: r for r in data["results"]},
            "int8": {r["name"]: r for r in data["int8"]}, "int8_path": data["int8_path"]}


def expected_ops(row: dict, chosen: dict[str, str]) -> list[str]:
    """The replacement's op ("@label" is the op chosen for that node), the
    row's Reshape or Squeeze after it where it says, and the Relus the builder
    put before captures that must be >= 0."""
    def expand(spec: str) -> str:
        head, _, label = spec.partition("@")
        return head + chosen[label] if label else spec
    kept = [c["capture"] for c in row["checks"] if c["kind"] == "non_negative"]
    after = [chosen[row["reshape_after"]]] if row["reshape_after"] else []
    ops = [expand(row["op"])] + after + ["Relu"] * len(kept)
    return sorted(ops)


def private(op: str) -> str:
    """QCPU nodes end as their private twins (ops/op_names.h); TF's own
    kernels for every device serve the shape ops."""
    return op if op.startswith("_Qcpu") or op in ("Reshape", "Squeeze") else "_Qcpu" + op


@pytest.mark.parametrize("name", CASES["rows"])
def test_row_becomes_its_fused_op(golden: dict, name: str) -> None:
    assert name in golden["rows"], f"no such row: {name}"
    row, r = golden["rows"][name], golden["results"][name]
    assert "error" not in r, r["error"]
    assert not r["pass_errors"], r["pass_errors"]
    # Exactly this row fired, once ("result handed to host" is the result's Identity).
    assert {k: v for k, v in r["fired"].items() if k != "result handed to host"} == {name: 1}, r["fired"]
    assert r["ops"] == sorted(private(op) for op in expected_ops(row, r["chosen"])), r
    assert r["devices"] == ["device:QCPU:0"], r["devices"]
    expanded = [r["chosen"].get(op[1:], op) if op.startswith("@") else op for op in row["fused_ops"]]
    # Nothing fused: an empty list where the op has the attr (no pass error
    # above says every required attr is set).
    assert r["fused_ops"] == [expanded] if expanded else r["fused_ops"] in ([], [[]]), r["fused_ops"]
    # The same float32 sums in other orders (K <= 36 products here).
    assert r["max_err"] <= 1e-5 * (r["scale"] + 1), (r["max_err"], r["scale"])


@pytest.mark.parametrize("name", CASES["int8"])
def test_int8_rewrite_makes_its_ops(golden: dict, name: str) -> None:
    assert name in golden["int8"], f"no such case: {name}"
    r = golden["int8"][name]
    assert "error" not in r, r["error"]
    assert not r["pass_errors"], r["pass_errors"]
    assert r["fired"] == r["expected_fired"], r
    assert r["ops"] == r["expected_ops"], r
    # Against the same graph in float (static: stock TF's QDQ graph), as a
    # fraction of the output's largest: per-channel s8 weights (1/254 of a
    # channel's largest with VNNI or AMX, 1/126 on the 7-bit AVX2 path), the
    # u8 input's rounding and a chained int8 output's; K <= 72, random signs.
    # Measured on an AMD EPYC (Zen 5): at most 1.4% on its VNNI path, 2.2%
    # with ONEDNN_MAX_CPU_ISA=AVX2.
    bound = 0.05 if golden["int8_path"] == "avx2" else 0.03
    assert r["rel_err"] <= bound, (r["rel_err"], golden["int8_path"])


def test_python_activation_names_are_the_kernels(golden: dict) -> None:
    # int8flow.ops names fused activations by op, as the pass and kernels do;
    # the C++ side is the source (kernels' activation table, published in the
    # fusion table's activation nodes): every Python name must be one of them.
    from int8flow.ops import ACTIVATIONS

    rows = golden["rows"].values()
    fused = {op for row in rows for node in row["nodes"] if node["label"] == "activation" for op in node["ops"]}
    assert fused and set(ACTIVATIONS.values()) <= fused, sorted(set(ACTIVATIONS.values()) - fused)
