"""Cores for serving and scale-out (issue 25): the plugin sizes oneDNN's OpenMP
team to the smallest of the CPU affinity mask, OMP_NUM_THREADS and
TF_NUM_INTRAOP_THREADS, checked in the libgomp the process really loaded, and
`int8flow launch` runs pinned instances on disjoint cores, forwards signals
and exits with the first failure's code; Spark scores a DataFrame through
`int8flow.spark.make_predict_fn` as the model does when called directly."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SUBPROCESS_TIMEOUT, clean_env, run_json
from int8flow.launch import parse_cpu_list, partition

CORES = len(os.sched_getaffinity(0))
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")

# One oneDNN call on QCPU, so that its libgomp is loaded, then what each
# loaded libgomp will give a new team, beside what int8flow reports. Launched
# instances share one stdout pipe, so the line goes out in a single write.
THREADS_PROBE = """
import ctypes, json, os, tensorflow as tf, int8flow
with tf.device("/device:QCPU:0"):
    tf.matmul(tf.ones((64, 64)), tf.ones((64, 64)))
gomps = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line})
cpu = int8flow.cpu_features()
line = json.dumps({"loaded": int8flow.is_loaded(), "threads": cpu["threads"], "rule": cpu["threads_rule"],
                   "omp": [ctypes.CDLL(g, mode=os.RTLD_NOLOAD).omp_get_max_threads() for g in gomps],
                   "affinity": sorted(os.sched_getaffinity(0)), "instance": os.environ.get("INT8FLOW_INSTANCE"),
                   "instances": os.environ.get("INT8FLOW_INSTANCES")})
os.write(1, (line + "\\n").encode())  # one write under PIPE_BUF: whole, whatever the other instance writes
"""


@pytest.mark.parametrize("env, threads, rule", [
    ({}, CORES, "CPU affinity mask"),
    ({"OMP_NUM_THREADS": "64"}, CORES, "(OMP_NUM_THREADS=64 lowered)"),
    ({"OMP_NUM_THREADS": "not a number"}, CORES, "CPU affinity mask"),
    ({"OMP_NUM_THREADS": "1"}, 1, "OMP_NUM_THREADS=1"),
    ({"TF_NUM_INTRAOP_THREADS": "1"}, 1, "TF_NUM_INTRAOP_THREADS=1"),
], ids=["affinity", "omp-above-cores", "omp-bogus", "omp", "tf-intra-op"])
def test_openmp_team_is_the_smallest_limit(installed: Path, env: dict[str, str], threads: int, rule: str) -> None:
    r = run_json(THREADS_PROBE, unset=THREAD_VARIABLES, **env)
    assert r["loaded"], r
    assert r["threads"] == threads and rule in r["rule"], r
    assert r["omp"] and all(n == threads for n in r["omp"]), r  # what libgomp itself will use


def launcher(*args: str) -> list[str]:
    return [sys.executable, "-m", "int8flow", "launch", *args]


@pytest.mark.skipif(CORES < 2, reason="two instances need two cores")
def test_launch_pins_each_instance_to_its_own_cores(installed: Path) -> None:
    result = subprocess.run(launcher("--instances", "2", "--", sys.executable, "-c", textwrap.dedent(THREADS_PROBE)),
                            env=clean_env(THREAD_VARIABLES), capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    children = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(c["instance"] for c in children) == ["0", "1"], result.stdout
    share = CORES // 2
    for child in children:
        assert child["instances"] == "2" and len(child["affinity"]) == share, child
        assert child["threads"] == share and all(n == share for n in child["omp"]), child
    assert not set(children[0]["affinity"]) & set(children[1]["affinity"]), children


@pytest.mark.skipif(CORES < 2, reason="two instances need two cores")
def test_launch_stops_the_others_and_exits_with_the_first_failure() -> None:
    script = "import os, sys, time\nif os.environ['INT8FLOW_INSTANCE'] == '0': sys.exit(3)\ntime.sleep(120)"
    start = time.monotonic()
    result = subprocess.run(launcher("--instances", "2", "--", sys.executable, "-c", script),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result
    assert time.monotonic() - start < 30  # the sleeper was stopped, not waited for


@pytest.mark.skipif(CORES < 2, reason="two instances need two cores")
def test_launch_forwards_sigterm_to_every_instance(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        mark = os.path.join({str(tmp_path)!r}, os.environ["INT8FLOW_INSTANCE"])
        def stop(signum, frame):
            open(mark + ".stopped", "w").close()
            sys.exit(7)
        signal.signal(signal.SIGTERM, stop)
        open(mark + ".ready", "w").close()
        time.sleep(120)
        """)
    process = subprocess.Popen(launcher("--instances", "2", "--", sys.executable, "-c", script))
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.ready"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 7
    finally:
        process.kill()
    assert sorted(p.name for p in tmp_path.glob("*.stopped")) == ["0.stopped", "1.stopped"]


def test_launch_refuses_what_it_cannot_do() -> None:
    for args, message in [(("--instances", str(CORES + 1), "--", "true"), f"need at least {CORES + 1} cores"),
                          (("--instances", "1"), "no command to launch"),
                          (("--instances", "0", "--", "true"), "at least 1")]:
        result = subprocess.run(launcher(*args), capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    missing = subprocess.run(launcher("--instances", "1", "--", "no-such-command-here"), capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 127 and "cannot start no-such-command-here" in missing.stderr, missing


def test_partition_of_cores() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    eight = list(range(8))
    assert partition(eight, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert partition(eight, 2, 3) == [[0, 1, 2], [3, 4, 5]]
    nodes = [{0, 1, 2, 3}, {4, 5, 6, 7}]
    assert partition(eight, 2, 3, nodes) == [[0, 1, 2], [4, 5, 6]]  # none spans the two nodes
    assert partition([1, 2, 5, 6], 2, None, nodes) == [[1, 2], [5, 6]]  # only the cores this process has
    with pytest.raises(ValueError, match="per NUMA node"):
        partition(eight, 3, 3, nodes)
    with pytest.raises(ValueError, match="need 9 cores"):
        partition(eight, 3, 3)
    with pytest.raises(ValueError, match="at least 1"):
        partition(eight, 0)


# The scored models, trained on nothing, and 200 rows: 8 features in, 3 out;
# and `pair`, two named inputs (the features and 2 more) to two named outputs,
# saved as quantize's INT8 output at out/pair.
SMALL_MODEL = """
import json, os, numpy as np, tensorflow as tf, keras, int8flow
out = os.environ["OUT"]
keras.utils.set_random_seed(0)
with tf.device("/CPU:0"):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(3)])
    inputs = {"features": keras.Input((8,), name="features"), "scale": keras.Input((2,), name="scale")}
    joined = keras.layers.Concatenate()([inputs["features"], inputs["scale"]])
    hidden = keras.layers.Dense(32, activation="relu")(joined)
    pair = keras.Model(inputs, {"scores": keras.layers.Dense(3, name="scores")(hidden),
                                "norm": keras.layers.Dense(1, name="norm")(hidden)})
x = np.random.default_rng(0).standard_normal((200, 8)).astype("float32")
x2 = np.random.default_rng(1).standard_normal((200, 2)).astype("float32")
int8flow.quantize(pair, {"features": x[:64], "scale": x2[:64]}, verbose=False).save(out + "/pair")
PAIR = {"input_names": ["features", "scale"], "output_names": ["scores", "norm"]}

def pair_error(got, want):
    # The largest difference over both outputs, relative to each output's scale.
    return max(float(np.abs(np.asarray(got[k], np.float32) - want[k]).max() / np.abs(want[k]).max()) for k in want)
"""

# Spark local[2] scores a DataFrame column through predict_batch_udf, for an
# FP32 export and a quantize output, against the same model called directly;
# its Python workers take OMP_NUM_THREADS=spark.task.cpus from PySpark.
SPARK_SCORING = SMALL_MODEL + """
import pandas as pd, int8flow.spark
from pyspark.ml.functions import predict_batch_udf
from pyspark.sql import SparkSession
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import ArrayType, FloatType
model.export(out + "/fp32", format="tf_saved_model", verbose=False)
int8flow.quantize(model, x[:64], verbose=False).save(out + "/int8")
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1").getOrCreate())
df = spark.createDataFrame([(i, row.tolist()) for i, row in enumerate(x)], ["id", "features"]).repartition(2)
result = {"errors": {}}
int8flow.record_op_stats(True)
for name in ("fp32", "int8"):
    direct = int8flow.spark.make_predict_fn(out + "/" + name)()(x)
    score = predict_batch_udf(int8flow.spark.make_predict_fn(out + "/" + name), return_type=ArrayType(FloatType()),
                              batch_size=32, input_tensor_shapes=[[8]])
    rows = df.withColumn("p", score("features")).orderBy("id").collect()
    scored = np.array([r["p"] for r in rows], np.float32)
    result[name] = float(np.abs(scored - direct).max() / np.abs(direct).max())
    result[name + "_rows"] = len(rows)
# Two feature columns to two outputs, a struct column.
from pyspark.sql.types import StructField, StructType
pair_direct = int8flow.spark.make_predict_fn(out + "/pair", **PAIR)()(x, x2)
pair_df = spark.createDataFrame([(i, a.tolist(), b.tolist()) for i, (a, b) in enumerate(zip(x, x2))],
                                ["id", "features", "scale"]).repartition(2)
two_arrays = StructType([StructField(k, ArrayType(FloatType())) for k in PAIR["output_names"]])
pair_score = predict_batch_udf(int8flow.spark.make_predict_fn(out + "/pair", **PAIR), return_type=two_arrays,
                               batch_size=32, input_tensor_shapes=[[8], [2]])
pair_rows = pair_df.withColumn("p", pair_score("features", "scale")).orderBy("id").collect()
result["pair"] = pair_error({k: [r["p"][k] for r in pair_rows] for k in PAIR["output_names"]}, pair_direct)
result["qcpu_ops"] = sorted(int8flow.stats()["ops"])

@pandas_udf("int")
def worker_threads(ids: pd.Series) -> pd.Series:
    import int8flow
    return pd.Series([int8flow.cpu_features()["threads"]] * len(ids))
result["worker_threads"] = sorted({r[0] for r in df.select(worker_threads("id")).collect()})
spark.stop()
for case, call in {"signature": lambda: int8flow.spark.make_predict_fn(out + "/fp32", signature_key="nope")(),
                   "columns": lambda: int8flow.spark.make_predict_fn(out + "/fp32")()(x, x),
                   "output": lambda: int8flow.spark.make_predict_fn(out + "/fp32", output_names=["nope"])()}.items():
    try:
        call()
        result["errors"][case] = "no error"
    except ValueError as e:
        result["errors"][case] = str(e)
print(json.dumps(result))
"""


def test_spark_predict_batch_udf_scores_like_direct_calls(installed: Path, tmp_path: Path) -> None:
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if "JAVA_HOME" in os.environ \
        else shutil.which("java")
    assert java, "Spark needs Java 17 or newer: java on PATH or JAVA_HOME (docs/serving.md)"
    r = run_json(SPARK_SCORING, unset=THREAD_VARIABLES, OUT=str(tmp_path))
    assert r["fp32_rows"] == r["int8_rows"] == 200, r
    assert r["fp32"] < 1e-5 and r["int8"] < 1e-5, r  # of the output's scale: batching moves no answer
    assert r["pair"] < 1e-5, r  # two input columns, two outputs
    assert {"_QcpuFusedMatMul", "_QcpuQuantizedMatMul"} <= set(r["qcpu_ops"]), r["qcpu_ops"]
    assert r["worker_threads"] == [1], r  # spark.task.cpus, through OMP_NUM_THREADS
    assert "has no signature 'nope'" in r["errors"]["signature"], r["errors"]
    assert "takes 1 inputs" in r["errors"]["columns"], r["errors"]
    assert "no output ['nope']" in r["errors"]["output"], r["errors"]


# A local Ray (2 CPUs): Ray Data's actor pool scores with int8flow.ray.Predictor
# as the model does when called directly; an actor of num_cpus=1 runs 1 thread.
RAY_DATA_SCORING = SMALL_MODEL + """
import ray, ray.data, int8flow.ray
int8flow.quantize(model, x[:64], verbose=False).save(out + "/int8")
direct = int8flow.ray.Predictor(out + "/int8")({"data": x})["predictions"]
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
ds = ray.data.from_numpy(x)
# One actor of one CPU: the other CPU stays for Ray Data's own tasks (two
# actors would hold both, and the read could never run).
scored = ds.map_batches(int8flow.ray.Predictor, fn_constructor_kwargs={"saved_model_dir": out + "/int8"},
                        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1, batch_size=32,
                        batch_format="numpy").take_all()
rows = {tuple(r["data"].tolist()): r["predictions"] for r in scored}
got = np.stack([rows[tuple(row.tolist())] for row in x])

# Two columns into the two named inputs, a column per output.
pair_args = {"saved_model_dir": out + "/pair", "input_columns": ["a", "b"], **PAIR}
pair_direct = int8flow.ray.Predictor(**pair_args)({"a": x, "b": x2})
pair_scored = ray.data.from_items([{"id": i, "a": a, "b": b} for i, (a, b) in enumerate(zip(x, x2))]).map_batches(
    int8flow.ray.Predictor, fn_constructor_kwargs=pair_args, compute=ray.data.ActorPoolStrategy(size=1),
    num_cpus=1, batch_size=32, batch_format="numpy").take_all()
pair_scored.sort(key=lambda r: r["id"])
pair = pair_error({k: [r[k] for r in pair_scored] for k in PAIR["output_names"]},
                  {k: pair_direct[k] for k in PAIR["output_names"]})

def threads(batch):
    import int8flow
    return {"threads": np.full(len(batch["data"]), int8flow.cpu_features()["threads"])}
worker_threads = sorted({int(r["threads"]) for r in ds.map_batches(threads, num_cpus=1, batch_format="numpy")
                         .take_all()})
ray.shutdown()
try:
    int8flow.ray.Predictor(out + "/int8")({"a": x, "b": x})
    bad = "no error"
except ValueError as e:
    bad = str(e)
print(json.dumps({"rows": len(scored), "error": float(np.abs(got - direct).max() / np.abs(direct).max()),
                  "pair_rows": len(pair_scored), "pair": pair, "worker_threads": worker_threads, "bad": bad}))
"""


def test_ray_data_map_batches_scores_like_direct_calls(installed: Path, tmp_path: Path) -> None:
    r = run_json(RAY_DATA_SCORING, unset=THREAD_VARIABLES, OUT=str(tmp_path))
    assert r["rows"] == 200 and r["error"] < 1e-5, r
    assert r["pair_rows"] == 200 and r["pair"] < 1e-5, r  # two input columns, a column per output
    assert r["worker_threads"] == [1], r  # num_cpus, through the OMP_NUM_THREADS Ray sets
    assert "name them with input_columns" in r["bad"], r


def test_tf_serving_requests_are_parsed_as_tf_serving_does() -> None:
    from int8flow.serve import BadRequest, parse_predict_request, predict_response

    assert parse_predict_request({"instances": [[1, 2], [3, 4]]}, ["x"]) == ({"x": [[1, 2], [3, 4]]}, True)
    assert parse_predict_request({"instances": [{"a": 1, "b": 2}]}, ["a", "b"]) == ({"a": [1], "b": [2]}, True)
    assert parse_predict_request({"inputs": {"a": [1], "b": [2]}}, ["a", "b"]) == ({"a": [1], "b": [2]}, False)
    assert parse_predict_request({"inputs": [[1.0]]}, ["x"]) == ({"x": [[1.0]]}, False)
    for body, message in [([1], "exactly one of"), ({"instances": [], "inputs": []}, "exactly one of"),
                          ({"instances": []}, "non-empty"), ({"instances": [{"a": 1}]}, "lack inputs ['b']"),
                          ({"inputs": {"a": [1]}}, "'inputs' names ['a']"), ({"inputs": [[1]]}, "name each one"),
                          ({"inputs": [[1]], "signature_name": "other"}, "'serving_default' only")]:
        with pytest.raises(BadRequest, match=re.escape(message)):
            parse_predict_request(body, ["a", "b"])  # a model of two inputs
    two = {"p": np.array([[1.0], [2.0]]), "q": np.array([3, 4])}
    assert predict_response(two, True) == {"predictions": [{"p": [1.0], "q": 3}, {"p": [2.0], "q": 4}]}
    assert predict_response(two, False) == {"outputs": {"p": [[1.0], [2.0]], "q": [3, 4]}}


# Ray Serve on 127.0.0.1 with two models multiplexed on one replica: TF
# Serving's REST requests, concurrent ones batched, answer as direct calls
# do; bad ones get a 4xx with a message, and the replica keeps serving.
RAY_SERVE = SMALL_MODEL + """
import socket, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
import ray, int8flow.ray, int8flow.serve
from ray import serve
model.export(out + "/fp32", format="tf_saved_model", verbose=False)
int8flow.quantize(model, x[:64], verbose=False).save(out + "/int8")
direct = {name: int8flow.ray.Predictor(out + "/" + name)({"data": x})["predictions"] for name in ("fp32", "int8")}
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": port})
serve.run(int8flow.serve.app({"fp32": out + "/fp32", "int8": out + "/int8", "pair": out + "/pair"}, num_cpus=1,
                             max_models_per_replica=3))

def call(path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())

result = {"status": call("/v1/models/int8"), "errors": {}}
for name in ("fp32", "int8"):
    code, rows = call(f"/v1/models/{name}:predict", {"instances": x[:10].tolist()})
    code2, columns = call(f"/v1/models/{name}:predict", {"inputs": x[10:20].tolist()})
    assert code == code2 == 200, (rows, columns)
    got = np.array(rows["predictions"] + columns["outputs"], np.float32)
    result[name] = float(np.abs(got - direct[name][:20]).max() / np.abs(direct[name]).max())
# Named inputs: a dict per instance (answered with a dict per prediction), and columnar.
pair_direct = int8flow.ray.Predictor(out + "/pair", input_columns=["features", "scale"], **PAIR)(
    {"features": x, "scale": x2})
code, rows = call("/v1/models/pair:predict",
                  {"instances": [{"features": a.tolist(), "scale": b.tolist()} for a, b in zip(x[:10], x2[:10])]})
code2, columns = call("/v1/models/pair:predict",
                      {"inputs": {"features": x[10:20].tolist(), "scale": x2[10:20].tolist()}})
assert code == code2 == 200, (rows, columns)
names = PAIR["output_names"]
result["pair"] = pair_error({k: [p[k] for p in rows["predictions"]] + columns["outputs"][k] for k in names},
                            {k: pair_direct[k][:20] for k in names})
result["errors"]["pair unnamed"] = call("/v1/models/pair:predict", {"instances": x[:1].tolist()})
with ThreadPoolExecutor(8) as pool:  # concurrent requests, batched by the replica
    answers = list(pool.map(lambda i: call("/v1/models/int8:predict", {"instances": x[i:i + 1].tolist()}), range(40)))
got = np.array([a[1]["predictions"][0] for a in answers], np.float32)
result["concurrent"] = float(np.abs(got - direct["int8"][:40]).max() / np.abs(direct["int8"]).max())
for case, (path, body, raw) in {"shape": ("/v1/models/int8:predict", {"instances": [[1.0] * 5]}, None),
                                "ragged": ("/v1/models/int8:predict", {"instances": [[1.0] * 8, [1.0]]}, None),
                                "no instances": ("/v1/models/int8:predict", {"rows": []}, None),
                                "not json": ("/v1/models/int8:predict", None, b"{oops"),
                                "unknown model": ("/v1/models/nope:predict", {"instances": [[0.0] * 8]}, None),
                                "unknown route": ("/v2/whatever", None, None)}.items():
    result["errors"][case] = call(path, body, raw)
nan = x[:1].copy()
nan[0, 0] = np.nan
result["nan"] = call("/v1/models/fp32:predict", {"instances": nan.tolist()})  # json.dumps writes NaN
code, after = call("/v1/models/fp32:predict", {"instances": x[:2].tolist()})
result["after"] = [code, float(np.abs(np.array(after["predictions"]) - direct["fp32"][:2]).max())]
serve.shutdown()
ray.shutdown()
print(json.dumps(result))
"""


def test_ray_serve_answers_tf_serving_rest_requests(installed: Path, tmp_path: Path) -> None:
    r = run_json(RAY_SERVE, unset=THREAD_VARIABLES, OUT=str(tmp_path))
    assert r["status"] == [200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}], r
    assert r["fp32"] < 1e-5 and r["int8"] < 1e-5 and r["concurrent"] < 1e-5, r
    assert r["pair"] < 1e-5, r  # named inputs and outputs, row and columnar format
    errors = r["errors"]
    for case, code in {"shape": 400, "ragged": 400, "no instances": 400, "not json": 400, "unknown model": 404,
                       "unknown route": 404, "pair unnamed": 400}.items():
        assert errors[case][0] == code and errors[case][1]["error"], (case, errors[case])
    assert "exactly one of" in errors["no instances"][1]["error"], errors
    assert "serving ['fp32', 'int8', 'pair']" in errors["unknown model"][1]["error"], errors
    assert "name each one" in errors["pair unnamed"][1]["error"], errors
    assert r["after"][0] == 200 and r["after"][1] < 1e-4, r  # the replica survived every bad request
    assert r["nan"][0] == 200, r["nan"]  # a NaN in the request (JSON's NaN) is answered, not a 500


def test_serve_load_test_ramps_every_variant(installed: Path, tmp_path: Path) -> None:
    """`int8flow bench --serve --quick`: the Ray Serve app per variant on
    127.0.0.1, clients ramped; every step answered without errors, the
    outputs are complete, each replica ran on the device its variant names,
    and the cost follows from the peak throughput."""
    from int8flow.bench.serve_load import SERVE_VARIANTS

    result = subprocess.run([sys.executable, "-m", "int8flow", "bench", "--serve", "--quick", "--step-seconds", "1",
                             "--price-per-hour", "0.5", "--out", str(tmp_path)],
                            env=clean_env(THREAD_VARIABLES), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "serve.json").read_text())
    # Each replica ran where its variant says: stock TF without QCPU, int8flow's on it.
    replicas = results["replicas"]
    assert replicas["stock-tf"]["qcpu_active"] is False and "INT8FLOW_DISABLE" in replicas["stock-tf"]["reason"]
    assert replicas["int8flow-fp32"]["qcpu_active"] and replicas["int8flow-int8-static"]["qcpu_active"], replicas
    assert len({r["pid"] for r in replicas.values()}) == 3, replicas
    steps = results["steps"]
    assert {s["variant"] for s in steps} == set(SERVE_VARIANTS) == set(results["peaks"])
    for s in steps:
        assert s["requests"] > 0 and s["errors"] == 0, s
        assert 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"], s
    assert {s["clients"] for s in steps} >= {1, 2}, steps  # the ramp went past its first step
    for peak in results["peaks"].values():
        assert peak["cost_per_million"] == pytest.approx(0.5 / (peak["peak_requests_per_s"] * 3600) * 1e6), peak
    table = (tmp_path / "serve.md").read_text()
    assert results["machine"]["cpu"] in table and "cost per million at $0.5/hour" in table
    assert (tmp_path / "serve.png").stat().st_size > 10_000


def test_serve_load_ramp_and_saturation() -> None:
    from int8flow.bench.serve_load import Step, client_counts, saturated

    assert client_counts(16) == [1, 2, 4, 8, 16] and client_counts(6) == [1, 2, 4, 6] and client_counts(1) == [1]

    def step(variant: str, clients: int, requests: int) -> Step:
        return Step(variant, clients, requests=requests, seconds=1.0, latencies_ms=[1.0] * requests)
    steps = {(s.variant, s.clients): s for s in [step("a", 1, 100), step("a", 2, 104), step("b", 1, 50),
                                                  step("b", 2, 90)]}
    assert not saturated(steps, ["a", "b"], 1, 2)  # b still grows
    assert saturated(steps, ["a"], 1, 2)
