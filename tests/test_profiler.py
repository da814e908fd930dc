"""The profiler hook: a TF profiler session gets a QCPU plane in its XSpace,
parsed here with TF's own xplane proto; op stats work without TensorBoard."""
from __future__ import annotations

import textwrap

import pytest

from conftest import run_json

# A small Keras CNN + head whose every heavy op becomes one fused QCPU kernel:
# 2 conv+BN+relu, 1 depthwise+BN+relu6, 1 dense+bias, per call.
MODEL = """
    import glob, json
    import numpy as np, tensorflow as tf, keras, int8flow
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(8, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.ReLU(6.0),
        keras.layers.Conv2D(16, 1, use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10),
    ])
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")

    def qcpu_planes(logdir):
        (path,) = glob.glob(logdir + "/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        space.ParseFromString(open(path, "rb").read())
        return [p for p in space.planes if "QCPU" in p.name]

    def events(plane):
        stat_names = {k: m.name for k, m in plane.stat_metadata.items()}
        def value(s):
            return s.str_value if s.WhichOneof("value") == "str_value" else s.uint64_value
        out = []
        for line in plane.lines:
            for e in line.events:
                meta = plane.event_metadata[e.metadata_id]
                out.append({
                    "line": line.name, "name": meta.name, "op": meta.display_name,
                    "start_ns": line.timestamp_ns + e.offset_ps // 1000,
                    "end_ns": line.timestamp_ns + (e.offset_ps + e.duration_ps) // 1000,
                    "stats": {stat_names[s.metadata_id]: value(s) for s in e.stats}})
        plane_stats = {stat_names[s.metadata_id]: s.uint64_value for s in plane.stats}
        return out, plane_stats

    def host_function_runs(logdir):
        # [start, end] of each function TF's executor ran, from TF's own host plane.
        (path,) = glob.glob(logdir + "/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        space.ParseFromString(open(path, "rb").read())
        (host,) = [p for p in space.planes if p.name == "/host:CPU"]
        return [[line.timestamp_ns + e.offset_ps // 1000,
                 line.timestamp_ns + (e.offset_ps + e.duration_ps) // 1000]
                for line in host.lines for e in line.events
                if host.event_metadata[e.metadata_id].name == "ExecutorState::Process"]
"""


def run(code: str, **env: str) -> dict:
    return run_json(textwrap.dedent(MODEL) + textwrap.dedent(code), **env)


@pytest.fixture(scope="module")
def predict_profile(tmp_path_factory) -> dict:
    logdir = tmp_path_factory.mktemp("profile")
    return run(f"""
        for _ in range(2): model.predict(x, verbose=0)  # trace and warm up outside the profile
        with tf.profiler.experimental.Profile("{logdir}"):
            for _ in range(3): model.predict(x, verbose=0)
        planes = qcpu_planes("{logdir}")
        evs, plane_stats = events(planes[0]) if planes else ([], {{}})
        print(json.dumps({{"planes": [p.name for p in planes], "events": evs,
                           "plane_stats": plane_stats, "runs": host_function_runs("{logdir}")}}))
    """)


def test_keras_predict_profile_has_a_qcpu_plane(predict_profile: dict) -> None:
    assert len(predict_profile["planes"]) == 1, predict_profile["planes"]


def test_every_fused_kernel_that_ran_appears_with_its_stats(predict_profile: dict) -> None:
    kernels = [e for e in predict_profile["events"] if e["stats"].get("tf_op")]
    by_op: dict[str, list[dict]] = {}
    for e in kernels:
        by_op.setdefault(e["op"], []).append(e)
    # 3 predict calls: 2 fused convs, 1 fused depthwise, 1 fused dense each.
    assert len(by_op.get("_QcpuFusedConv2D", [])) == 6, sorted(by_op)
    assert len(by_op.get("_QcpuFusedDepthwiseConv2dNative", [])) == 3, sorted(by_op)
    assert len(by_op.get("_QcpuFusedMatMul", [])) == 3, sorted(by_op)
    for e in kernels:
        assert e["stats"]["tf_op"] == f"{e['name']}:{e['op']}"
        assert e["stats"]["precision"] in ("fp32", "int8")
        assert e["stats"]["shapes"].startswith("["), e
    for e in by_op["_QcpuFusedConv2D"] + by_op["_QcpuFusedMatMul"]:
        assert e["stats"]["onednn_impl"], e  # oneDNN's implementation, e.g. "brg:avx512_core"
    first_conv = min(by_op["_QcpuFusedConv2D"], key=lambda e: e["start_ns"])
    assert first_conv["stats"]["shapes"].split()[0] == "[2,16,16,3]", first_conv


def test_timestamps_are_tf_clock_and_monotonic_per_line(predict_profile: dict) -> None:
    lines: dict[str, list[dict]] = {}
    runs = predict_profile["runs"]
    assert runs, "TF's host plane shows no executor run"
    for e in predict_profile["events"]:
        lines.setdefault(e["line"], []).append(e)
        if e["op"] != "Memcpy":
            # On TF's clock: each kernel lies inside one of TF's own executor
            # runs (TF shifts both planes by the session's start alike).
            assert any(s <= e["start_ns"] <= e["end_ns"] <= t for s, t in runs), e
    for events in lines.values():
        for before, after in zip(events, events[1:]):
            assert before["end_ns"] <= after["start_ns"], (before, after)


def test_copies_appear_with_their_bytes(predict_profile: dict) -> None:
    copies = [e for e in predict_profile["events"] if e["op"] == "Memcpy"]
    into = [e for e in copies if e["name"] == "MemcpyHtoD"]
    # Each predict copies its input batch in (2*16*16*3 floats).
    assert sum(e["stats"]["bytes"] == 2 * 16 * 16 * 3 * 4 for e in into) >= 3, copies


def test_start_stop_api_and_a_bounded_buffer(tmp_path) -> None:
    r = run(f"""
        f = tf.function(model)
        f(x)
        tf.profiler.experimental.start("{tmp_path}")
        for _ in range(5): f(x)
        tf.profiler.experimental.stop()
        evs, plane_stats = events(qcpu_planes("{tmp_path}")[0])
        print(json.dumps({{"events": len(evs), "plane_stats": plane_stats}}))
    """, INT8FLOW_PROFILE_MAX_EVENTS="7")
    assert r["events"] == 7
    assert r["plane_stats"]["max_events"] == 7
    assert r["plane_stats"]["dropped_events"] >= 5 * 4 - 7, r


def test_keras_tensorboard_callback_profiles_qcpu(tmp_path) -> None:
    r = run(f"""
        model.compile(optimizer="sgd", loss="mse")
        y = np.zeros((2, 10), "float32")
        callback = keras.callbacks.TensorBoard(log_dir="{tmp_path}", profile_batch=(2, 3))
        model.fit(np.concatenate([x] * 4), np.concatenate([y] * 4), batch_size=2, epochs=1,
                  callbacks=[callback], verbose=0)
        evs, _ = events(qcpu_planes("{tmp_path}")[0])
        print(json.dumps({{"ops": sorted({{e["op"] for e in evs}})}}))
    """)
    assert r["ops"], "the fit's profiled batches ran no QCPU kernel"


def test_no_session_records_nothing_and_op_stats_count_each_kernel() -> None:
    r = run("""
        f = tf.function(model)
        f(x)
        int8flow.reset_stats()
        f(x)
        idle = int8flow.stats()["ops"]
        int8flow.record_op_stats(True)
        for _ in range(4): f(x)
        int8flow.record_op_stats(False)
        f(x)
        stats = int8flow.stats()
        print(json.dumps({"idle": idle, "ops": stats["ops"], "table": int8flow.stats_table()}))
    """)
    assert r["idle"] == {}
    ops = r["ops"]
    assert ops["_QcpuFusedConv2D"]["count"] == 8, ops
    assert ops["_QcpuFusedDepthwiseConv2dNative"]["count"] == 4, ops
    assert ops["_QcpuFusedMatMul"]["count"] == 4, ops
    assert ops["Memcpy"]["count"] >= 4, ops  # the input, in
    for op, o in ops.items():
        assert o["total_ms"] > 0, ops
        split = o["int8_ms"] + o["bf16_ms"] + o["fp32_ms"]  # kernels only: a copy has no precision
        assert split == (0 if op == "Memcpy" else pytest.approx(o["total_ms"])), ops
    table = r["table"]
    assert "_QcpuFusedConv2D" in table and "ops placed on CPU (fallbacks): none" in table, table


def test_op_stats_from_the_environment() -> None:
    r = run("""
        model(x)
        print(json.dumps(int8flow.stats()["ops"]))
    """, INT8FLOW_OP_STATS="1")
    assert r, "INT8FLOW_OP_STATS=1 recorded no op"


def test_profiling_with_the_plugin_inert_records_nothing(tmp_path) -> None:
    r = run(f"""
        with tf.profiler.experimental.Profile("{tmp_path}"):
            model(x)
        planes = qcpu_planes("{tmp_path}")
        print(json.dumps({{"events": sum(len(events(p)[0]) for p in planes)}}))
    """, INT8FLOW_DISABLE="1")
    assert r["events"] == 0


def test_concurrent_kernels_all_recorded(tmp_path) -> None:
    # 4 client threads on one function while a session and op stats record:
    # every kernel run lands once (no event lost or torn), results unchanged.
    r = run(f"""
        import threading
        f = tf.function(model)
        reference = f(x).numpy()
        int8flow.reset_stats()
        int8flow.record_op_stats(True)
        errors = []
        def client():
            for _ in range(10):
                errors.append(float(np.abs(f(x).numpy() - reference).max()))
        tf.profiler.experimental.start("{tmp_path}")
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        tf.profiler.experimental.stop()
        evs, plane_stats = events(qcpu_planes("{tmp_path}")[0])
        fused = [e for e in evs if e["op"].startswith("_QcpuFused")]
        print(json.dumps({{"max_err": max(errors), "fused_events": len(fused),
                           "ops": int8flow.stats()["ops"], "dropped": plane_stats["dropped_events"]}}))
    """)
    assert r["max_err"] == 0.0, r
    assert r["dropped"] == 0
    # 40 calls x (2 conv + 1 depthwise + 1 dense) fused kernels, in the trace and in the counters.
    assert r["fused_events"] == 40 * 4, r["fused_events"]
    counted = sum(o["count"] for op, o in r["ops"].items() if op.startswith("_QcpuFused"))
    assert counted == 40 * 4, r["ops"]
