"""The benchmark harness keeps working: `int8flow bench --quick` on the MLP.

Nothing here asserts speed (speed claims come from full runs on a quiet
machine, see docs/benchmarks.md); it checks that every variant ran in its own
process or said why it could not, and that the outputs are complete.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import clean_env
from int8flow.bench.runner import accuracy, latency_figures


@pytest.fixture(scope="module")
def quick_run(installed, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, "-m", "int8flow", "bench", "--quick", "--models", "mlp",
         "--load-seconds", "1", "--out", str(out)],
        env=clean_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / "speedup.png").stat().st_size > 10_000
    return json.loads((out / "results.json").read_text()), result.stdout


def rows_by_variant(results: dict) -> dict[str, dict]:
    return {row["variant"]: row for row in results["rows"]}


def test_every_variant_ran_or_says_why(quick_run) -> None:
    results, _ = quick_run
    rows = rows_by_variant(results)
    assert set(rows) == {"tf-predict", "tf-function", "int8flow-predict", "int8flow-fp32",
                         "int8flow-fp32-opstats", "int8flow-bf16", "int8flow-int8-dynamic", "int8flow-int8-static",
                         "tflite-int8",
                         "onnxruntime-int8", "openvino-fp32", "openvino-default", "openvino-int8"}
    for row in rows.values():
        assert row["status"] in ("ok", "unavailable"), row
        assert row["status"] == "ok" or row["reason"], row
    # The test extra installs every peer, and the MLP converts for each.
    for name in ("tf-function", "tf-predict", "int8flow-fp32", "int8flow-fp32-opstats",
                 "int8flow-predict", "openvino-fp32", "openvino-default", "openvino-int8"):
        assert rows[name]["status"] == "ok", rows[name]


def test_measured_rows_have_every_figure(quick_run) -> None:
    results, table = quick_run
    for row in results["rows"]:
        if row["status"] != "ok":
            continue
        f = row["figures"]
        for key in ("median_ms", "p90_ms", "p99_ms", "throughput_per_s", "speedup_vs_reference",
                    "cosine_mean", "top1_agreement", "rss_bytes", "peak_rss_bytes", "artifact_bytes",
                    "load", "precision", "gflops"):
            assert key in f, (row["variant"], key)
        assert f["runs"] == 15 and f["load"]["requests_per_s"] > 0
        assert f["macs"] == MLP_MACS and f["gflops"] == pytest.approx(2e-6 * MLP_MACS / f["median_ms"])
        if f["precision"] in results["peak_gflops"]:
            assert 0 < f["percent_of_peak"] < 150, row  # a batch-1 MLP is far from peak, never far above
        assert row["variant"] in table
    assert results["machine"]["cores"] >= 1 and "tensorflow-cpu" in results["versions"]
    assert results["peak_gflops"]["f32"] > 1 and results["peak_gflops"]["int8"] > 1
    assert "openvino" in results["versions"] and "nncf" in results["versions"]


def test_fp32_variants_agree_with_the_reference(quick_run) -> None:
    rows = rows_by_variant(quick_run[0])
    for name in ("tf-predict", "int8flow-fp32", "int8flow-fp32-opstats", "int8flow-predict", "openvino-fp32"):
        assert rows[name]["figures"]["precision"] == "f32"
        assert rows[name]["figures"]["cosine_min"] > 0.99999
        assert rows[name]["figures"]["top1_agreement"] == 1.0
    assert rows["tf-function"]["figures"]["speedup_vs_reference"] == 1.0
    for name in ("int8flow-int8-dynamic", "int8flow-int8-static", "openvino-int8"):
        assert rows[name]["figures"]["precision"] == "int8"
        assert rows[name]["figures"]["cosine_min"] > 0.99, rows[name]
    bf16 = rows["int8flow-bf16"]  # on CPUs with native bf16 only
    assert bf16["status"] == "ok" or "no native bf16" in bf16["reason"], bf16
    if bf16["status"] == "ok":
        assert bf16["figures"]["precision"] == "bf16" and bf16["figures"]["cosine_min"] > 0.999, bf16


def test_a_missing_peer_is_unavailable_with_the_install_hint() -> None:
    """A peer whose package is not installed is a row that says how to get it, not a crash."""
    from int8flow.bench.peers import Unavailable, _peer

    with pytest.raises(Unavailable, match=r"no_such_peer_module is not installed.*int8flow\[bench\]"):
        _peer("no_such_peer_module")


# The bench MLP, per sample: 784 -> 1024 -> 1024 -> 512 -> 10.
MLP_MACS = 784 * 1024 + 1024 * 1024 + 1024 * 512 + 512 * 10


def test_macs_are_counted_from_the_graph() -> None:
    """count_macs on models whose multiply-accumulates are known by hand: dense,
    convolution, strided and depthwise convolution, and attention's einsums."""
    import keras
    import tensorflow as tf

    from int8flow.bench.models import mlp, small_cnn
    from int8flow.bench.roofline import count_macs, rates

    assert count_macs(mlp(), np.zeros((3, 784), "float32")) == 3 * MLP_MACS
    # Conv 3x3/2 to 16x16x16, depthwise 3x3, conv 1x1, dense 16->64 and 64->10.
    cnn = 16 * 16 * 16 * 27 + 16 * 16 * 16 * 9 + 16 * 16 * 16 * 16 + 16 * 64 + 64 * 10
    assert count_macs(small_cnn(), np.zeros((2, 32, 32, 3), "float32")) == 2 * cnn
    x = keras.Input((5, 8))
    attention = keras.Model(x, keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x))
    # Q, K, V and output projections (5 x 8 x 8 each), scores and context (2 heads x 5 x 5 x 4 each).
    assert count_macs(attention, np.zeros((1, 5, 8), "float32")) == 4 * 5 * 8 * 8 + 2 * 2 * 5 * 5 * 4
    kept_rows = keras.layers.Lambda(lambda t: tf.matmul(tf.boolean_mask(t[0], t[0, :, 0] > 0), tf.ones([8, 2])))
    unknown_rows = keras.Model(x, kept_rows(x))  # how many rows a mask keeps is known only when it runs
    assert count_macs(unknown_rows, np.zeros((1, 5, 8), "float32")) is None  # no figure rather than a wrong one
    assert rates(10**9, 1000.0, "int8", {"f32": 4.0, "int8": 8.0}) == {"gflops": 2.0, "percent_of_peak": 25.0}
    assert rates(10**9, 1000.0, "bf16", {"f32": 4.0}) == {"gflops": 2.0}


def test_accuracy_and_latency_arithmetic() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert accuracy(ref, ref) == {"cosine_mean": 1.0, "cosine_min": 1.0, "top1_agreement": 1.0}
    flipped = accuracy(ref[:, ::-1].copy(), ref)
    assert flipped["top1_agreement"] == 0.0 and flipped["cosine_min"] == 0.0
    figures = latency_figures([0.001] * 9 + [0.011], batch=4)
    assert figures["median_ms"] == pytest.approx(1.0) and figures["p99_ms"] > 9
    assert figures["throughput_per_s"] == pytest.approx(4000.0)


def test_outputs_in_batches_runs_fixed_batches_and_trained_figures() -> None:
    """The peers take one batch size: a short last batch is padded and cut. A
    classifier's figures say how far it is from the reference's answers."""
    from int8flow.bench.trained_accuracy import trained_figures
    from int8flow.bench.worker import outputs_in_batches

    def runner(x: np.ndarray) -> np.ndarray:
        assert len(x) == 4
        return np.stack([x[:, 0], -x[:, 0]], 1)

    x = np.arange(10, dtype="float32")[:, None] - 4.5
    outputs = outputs_in_batches(runner, x, 4)
    assert outputs.shape == (10, 2) and np.array_equal(outputs[:, 0], x[:, 0])
    labels = (x[:, 0] > 0).astype("int64")  # the reference's answers are all wrong, the flipped ones all right
    flipped = {"eval": outputs[:, ::-1], "test": outputs[:, ::-1]}
    figures = trained_figures(flipped, {"eval": outputs, "test": outputs}, labels, embedding=False)
    assert figures["top1_agreement"] == 0.0 and figures["cosine_min"] == pytest.approx(-1.0)
    assert figures["test_accuracy"] == 1.0 and figures["accuracy_drop"] == -1.0


def test_trained_accuracy_table_has_a_row_per_variant(installed, tmp_path: Path) -> None:
    """`int8flow bench --trained` on the small tabular MLP: trained once, every
    accuracy variant in its own worker; each ran or says why, int8flow's rows
    ran, and the markdown table names the CPU and its int8 path."""
    from int8flow.bench.trained_accuracy import TRAINED_VARIANTS

    result = subprocess.run(
        [sys.executable, "-m", "int8flow", "bench", "--trained", "--models", "tabular_mlp", "--out", str(tmp_path)],
        env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "trained" / "tabular_mlp.weights.h5").is_file()
    results = json.loads((tmp_path / "trained.json").read_text())
    rows = rows_by_variant(results)
    assert list(rows) == list(TRAINED_VARIANTS) and {r["model"] for r in rows.values()} == {"tabular_mlp"}
    for row in rows.values():
        assert row["status"] == "ok" or row["reason"], row
        if row["status"] == "ok":
            f = row["figures"]
            assert 0.0 <= f["top1_agreement"] <= 1.0 and 0.0 <= f["test_accuracy"] <= 1.0, row
            assert -1.0 - 1e-9 <= f["cosine_min"] <= f["cosine_mean"] <= 1.0 + 1e-9, row
    for name in ("tf-function", "int8flow-fp32", "int8flow-int8-dynamic", "int8flow-int8-static"):
        assert rows[name]["status"] == "ok", rows[name]
    assert rows["tf-function"]["figures"]["accuracy_drop"] == 0.0
    assert rows["tf-function"]["figures"]["test_accuracy"] > 0.75  # the model learned something
    table = (tmp_path / "trained.md").read_text()
    machine = results["machine"]
    assert machine["cpu"] in table and f"int8 path {machine['int8_path']}" in table
    assert sum(line.startswith("| tabular_mlp | ") for line in table.splitlines()) == len(TRAINED_VARIANTS)


def test_layer_benchmark_runs_every_column(installed, tmp_path: Path) -> None:
    """`int8flow bench --layers`: one BERT and one MobileNetV2 layer, all six
    columns timed (TF's own int8 ops where this TF has them), GOPS reported."""
    out = tmp_path / "layers.json"
    result = subprocess.run(
        [sys.executable, "-m", "int8flow", "bench", "--layers", "--models", "bert-base,mobilenetv2",
         "--batches", "1", "--rounds", "1", "--min-seconds", "0.001", "--out", str(out)],
        env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["cpu"]["int8_path"] in ("amx", "vnni", "avx2")
    assert len(data["rows"]) == 7, [r["layer"] for r in data["rows"]]
    # TF's own quantized ops have kernels only where TF's CPU runs oneDNN (by
    # default on CPUs with AVX-512 VNNI, BF16 or AMX): elsewhere, as on an
    # AVX2-only EPYC, the bench shows tf_int8 as n/a.
    columns = {"int8", "int8_u8", "int8_relu", "f32", "tf_f32"} | ({"tf_int8"} if data["tf_onednn"] else set())
    for row in data["rows"]:
        assert set(row["ms"]) == columns, row
        assert all(v > 0 for v in row["gops"].values()), row


@pytest.mark.parametrize("mode, names", [([], ["embedding_pooling", "layer_norm_dense"]),
                                         (["--fit"], ["mlp_classifier", "embedding_pooling"])])
def test_keras_layer_benchmark_prints_a_row_per_model(installed, mode: list[str], names: list[str]) -> None:
    """benchmarks/keras_layers.py: one round of two models, each side in its own
    process; calls, or fit epochs (a classifier's loss and an MSE one)."""
    script = Path(__file__).parents[1] / "benchmarks" / "keras_layers.py"
    result = subprocess.run([sys.executable, str(script), *mode, "--models", ",".join(names),
                             "--rounds", "1", "--batch", "2"],
                            env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [r[0].strip() for r in rows] == names, result.stdout
    for _, ours, stock, ratio in rows:
        assert float(ours) > 0 and float(stock) > 0
        # The ratio is of the unrounded medians; the columns are rounded to 0.01 ms.
        assert abs(float(ratio) - float(stock) / float(ours)) <= 0.1 * float(ratio) + 0.01, rows


def test_op_benchmark_prints_a_row_per_op(installed) -> None:
    """benchmarks/ops_vs_tf.py: each op on QCPU and on TF's CPU in one process,
    where the QCPU side ran (a Transpose on QCPU; a TopK, which has no QCPU
    kernel, copied across), and a bad option refused."""
    script = Path(__file__).parents[1] / "benchmarks" / "ops_vs_tf.py"
    result = subprocess.run([sys.executable, str(script), "--ops", "transpose_heads,top_k", "--elements", "8192",
                             "--rounds", "1"], env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {r[0].strip(): r for r in (line.split("|")[1:-1] for line in result.stdout.splitlines()
                                      if line.startswith("| ") and " us " not in line)}
    assert set(rows) == {"transpose_heads", "top_k"}, result.stdout
    assert rows["transpose_heads"][4].strip() == "QCPU" and rows["top_k"][4].strip().startswith("copies"), rows
    for _, qcpu, cpu, ratio, _ in rows.values():
        assert float(qcpu) > 0 and float(cpu) > 0 and float(ratio) > 0, rows
    bad = subprocess.run([sys.executable, str(script), "--ops", "nonesuch"], env=clean_env(), capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and "unknown ops ['nonesuch']" in bad.stderr, bad.stderr[-2000:]


def test_native_layer_benchmark_builds_and_checks_its_outputs(tmp_path: Path) -> None:
    """benchmarks/native/onednn_layers, for hosts without TF: built against the
    venv's oneDNN, fed native_shapes() lines, each int8 output checked
    against f32 (cosine column `ok`); a malformed line is refused."""
    from int8flow.bench.layers import LAYERS, native_shapes

    repo = Path(__file__).resolve().parent.parent
    binary = tmp_path / "onednn_layers"
    subprocess.run(["bash", str(repo / "benchmarks/native/build.sh"), str(binary), sys.prefix],
                   check=True, timeout=300)
    lines = native_shapes([1, 16]).splitlines()
    assert len(lines) == 2 * len(LAYERS)
    picked = [line for line in lines if " 1 " in line and ("fc" in line or "depthwise" in line)]
    kinds = {line.split()[0] for line in picked}
    assert kinds == {"matmul", "depthwise"}, picked
    env = clean_env(OMP_NUM_THREADS="2")
    run = subprocess.run([str(binary), "1", "0.1"], input="\n".join(picked), env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [r for r in run.stdout.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == len(picked) and all("| ok |" in r for r in rows), run.stdout
    bad = subprocess.run([str(binary)], input="conv resnet50 x 1 56 56", env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "bad line" in bad.stderr


def test_serving_memory_is_measured_in_a_process_that_loaded_only_the_artifact(installed, tmp_path: Path) -> None:
    # --serving-memory: each variant's saved artifact is loaded and served by a
    # process of its own, which ran nothing else (no Keras model, no quantize).
    result = subprocess.run(
        [sys.executable, "-m", "int8flow", "bench", "--quick", "--models", "mlp", "--rounds", "1", "--runs", "2",
         "--load-threads", "0", "--variants", "tf-function,int8flow-int8-static,tflite-int8", "--serving-memory",
         "--out", str(tmp_path)], env=clean_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = rows_by_variant(json.loads((tmp_path / "results.json").read_text()))
    serving = {name: row["figures"]["serving"] for name, row in rows.items()}
    for name, runtime in {"tf-function": "saved_model", "int8flow-int8-static": "saved_model",
                          "tflite-int8": "tflite"}.items():
        s = serving[name]
        assert s["runtime"] == runtime, (name, s)
        assert 0 < s["before_load_bytes"] < s["loaded_bytes"] <= s["peak_rss_bytes"], (name, s)
        assert s["before_load_bytes"] < s["rss_bytes"] <= s["peak_rss_bytes"], (name, s)
        assert s["tensorflow_imported"] == (runtime == "saved_model"), (name, s)
    # The stock row served without QCPU; the INT8 one on QCPU's int8 kernels.
    assert not serving["tf-function"]["qcpu_active"], serving["tf-function"]
    assert sum(serving["tf-function"]["compute_ms"].values()) == 0, serving["tf-function"]
    assert serving["int8flow-int8-static"]["qcpu_active"], serving["int8flow-int8-static"]
    assert serving["int8flow-int8-static"]["compute_ms"]["int8"] > 0, serving["int8flow-int8-static"]
    # TFLite's runtime alone is a fraction of TensorFlow's.
    assert serving["tflite-int8"]["rss_bytes"] < serving["tf-function"]["before_load_bytes"] + \
        0.5 * (serving["tf-function"]["rss_bytes"] - serving["tf-function"]["before_load_bytes"]), serving
    assert " serve" in result.stdout, result.stdout[-2000:]
