"""QCPU's oneDNN kernels and fusions give TF's CPU results, within stated bounds
(kernel_checks.py derives each bound), and reject bad input with TF errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUBPROCESS_TIMEOUT, clean_env, int8flow_lines, run_json, run_python

CHECKS = Path(__file__).parent / "kernel_checks.py"


@pytest.fixture(scope="module")
def checks(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("kernels") / "checks.json"
    result = subprocess.run([sys.executable, str(CHECKS), str(out)], env=clean_env(),
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text())


# Checks per op: each check's name starts with the op it runs ("fused" for
# fusions through tf.function). A count that drops means a check stopped
# running; one that grows needs this table updated, on purpose. FusedBatchNorm
# V2/V3 check the reserve spaces only where TF's CPU kernel sets them (its
# oneDNN one; Eigen's leaves them unset in inference), hence two counts.
CASES: dict[str, int | dict[bool, int]] = {
    "Abs": 2, "AddN": 8, "AddV2": 19, "ArgMax": 8, "ArgMin": 8, "Atan": 1, "AvgPool": 11, "AvgPool3D": 3,
    "BatchMatMulV2": 17, "BatchToSpaceND": 10, "BiasAdd": 5, "BiasAddGrad": 4, "Cast": 21, "Ceil": 1,
    "clip_by_value": 7, "ConcatV2": 5, "Conv2D": 23, "Conv2DBackpropFilter": 8, "Conv2DBackpropInput": 8, "Conv3D": 6,
    "Conv3DBackpropFilterV2": 3, "Conv3DBackpropInputV2": 4, "Cos": 1, "Cumsum": 12, "DepthwiseConv2dNative": 6,
    "DivNoNan": 2, "Einsum": 7, "Elu": 2, "EluGrad": 1, "Equal": 3, "Erf": 1, "Erfc": 1, "Exp": 1, "Expm1": 1,
    "Fill": 1, "Floor": 1, "FloorDiv": 2, "FloorMod": 2, "fused": 70, "FusedBatchNorm": 5,
    "FusedBatchNormV2": {True: 5, False: 3}, "FusedBatchNormV3": {True: 57, False: 47}, "GatherV2": 3, "Greater": 2,
    "GreaterEqual": 2, "LayerNorm": 6, "LeakyRelu": 1, "LeakyReluGrad": 1, "Less": 2, "LessEqual": 2, "Log": 3,
    "LogicalAnd": 2, "LogicalNot": 1, "LogicalOr": 1, "LogSoftmax": 2, "MatMul": 40, "Max": 25, "Maximum": 24,
    "MaxPool": 14, "MaxPool3D": 3, "MaxPoolGrad": 5, "Mean": 18, "Min": 12, "Minimum": 21, "Mul": 19, "Neg": 2,
    "NotEqual": 3, "OneHot": 7, "Pad": 11, "Pow": 3, "RealDiv": 12, "Reciprocal": 1, "ReciprocalGrad": 1, "Relu": 3,
    "Relu6": 3, "Relu6Grad": 1, "ReluGrad": 2, "ResizeBilinear": 12, "ResizeNearestNeighbor": 12,
    "ResourceScatterAdd": 1, "ResourceScatterSub": 3, "ResourceScatterUpdate": 1, "ReverseV2": 9, "Round": 1,
    "Rsqrt": 2, "RsqrtGrad": 1, "ScaleShift": 6, "Select": 3, "SelectV2": 4, "Selu": 1, "SeluGrad": 1, "Sigmoid": 4,
    "SigmoidGrad": 3, "Sign": 2, "Sin": 1, "Softmax": 8, "Softplus": 1, "Softsign": 1, "SoftsignGrad": 1,
    "SpaceToBatchND": 11, "SparseSoftmaxCrossEntropyWithLogits": 10, "Split": 12, "SplitV": 5, "Sqrt": 3, "SqrtGrad": 2,
    "Square": 2, "SquaredDifference": 12, "StridedSlice": 7, "StridedSliceGrad": 3, "Sub": 17, "Sum": 20, "Tan": 1,
    "Tanh": 4, "TanhGrad": 1, "TensorListGetItem": 3, "TensorListPopBack": 2, "Tile": 13, "Transpose": 12,
    "ZerosLike": 2,
}


def test_every_check_is_counted(checks: dict) -> None:
    groups = {r["name"].split()[0] for r in checks["results"]}
    assert groups == set(CASES), (sorted(groups - set(CASES)), sorted(set(CASES) - groups))


@pytest.mark.parametrize("group", sorted(CASES))
def test_matches_tf_cpu_on_qcpu(checks: dict, group: str) -> None:
    cases = [r for r in checks["results"] if r["name"].split()[0] == group]
    expected = CASES[group]
    count = expected[checks["tf_onednn"]] if isinstance(expected, dict) else expected
    assert len(cases) == count, (len(cases), [r["name"] for r in cases])
    # Ran on QCPU (eager placement falls back to CPU silently without a kernel).
    off_device = [(r["name"], r["device"]) for r in cases if not r["device"].endswith("QCPU:0")]
    assert not off_device, off_device
    failed = [(r["name"], r["max_err"]) for r in cases if not r["ok"]]
    assert not failed, failed


def test_every_fusion_pattern_fired(checks: dict) -> None:
    fusions = checks["fusions"]
    for pattern in ["gelu (erf)", "gelu (tanh)", "swish", "MatMul+BiasAdd",
                    "MatMul+BiasAdd+activation", "Conv+BatchNorm+activation",
                    "Conv+BiasAdd+activation", "Conv+activation", "Conv+Add+activation", "Conv+Add",
                    "LayerNorm", "LayerNorm (AddN of 3)", "LayerNorm without beta",
                    "LayerNorm without gamma (beta added first)", "LayerNorm without gamma without beta",
                    "MatMul+Reshape+BiasAdd", "MatMul+Reshape+BiasAdd+activation",
                    "Pad+Conv+BatchNorm+activation", "Pad+Conv+BiasAdd+BatchNorm+activation",
                    "Conv+FusedBatchNorm+activation", "Conv+BiasAdd+FusedBatchNorm", "Pad+MaxPool",
                    "Conv+Squeeze+BiasAdd+activation", "Conv+Squeeze+BiasAdd"]:
        assert fusions.get(pattern, 0) > 0, (pattern, fusions)
    # A BatchNorm's shift and a residual: Grappler adds them in either order.
    for residual in ["Conv+BatchNorm+Add", "Conv+BiasAdd+BatchNorm+Add+activation", "Pad+Conv+BatchNorm+Add"]:
        either = fusions.get(residual, 0) + fusions.get(residual + " (shift added last)", 0)
        assert either > 0, (residual, fusions)
    # Grappler's arithmetic optimizer may regroup (x@w + b) + r as AddN(x@w, r) + b.
    for residual in ["MatMul+BiasAdd+Add", "MatMul+BiasAdd+Add+activation"]:
        regrouped = residual.replace("BiasAdd+Add", "Add+BiasAdd")
        assert fusions.get(residual, 0) + fusions.get(regrouped, 0) > 0, (residual, fusions)


# Each error must name the op; those of int8flow's own kernels start "int8flow: <op>:",
# which also shows that QCPU's kernel, not TF's CPU one, ran.
BAD_INPUTS = [
    ("tf.matmul(tf.ones([2, 3]), tf.ones([4, 5]))", "Matrix size-incompatible"),
    ("tf.add(tf.ones([2, 3]), tf.ones([4]))", "Incompatible shapes"),
    ("tf.nn.bias_add(tf.ones([2, 3]), tf.ones([4]))", "as many biases"),
    ("tf.nn.bias_add(tf.ones([3]), tf.ones([3]))", "at least 2D"),
    ("tf.nn.conv2d(tf.ones([1, 5, 5, 3]), tf.ones([3, 3, 4, 2]), 1, 'SAME')",
     "evenly divisible by filter depth"),
    ("tf.nn.conv2d(tf.ones([1, 5, 5]), tf.ones([3, 3, 3, 2]), 1, 'SAME')", "must be 4-D"),
    ("tf.nn.conv2d(tf.ones([1, 2, 2, 3]), tf.ones([3, 3, 3, 2]), 1, 'VALID')", "larger than"),
    ("tf.nn.depthwise_conv2d(tf.ones([1, 5, 5, 3]), tf.ones([3, 3, 4, 1]), [1, 1, 1, 1], 'SAME')",
     "must equal filter depth"),
    ("tf.pad(tf.ones([2, 3]), [[1, 1]])", "paddings must be a matrix"),
    ("tf.raw_ops.ResizeBilinear(images=tf.ones([1, 4, 4, 1]), size=[2, 2], align_corners=True,"
     " half_pixel_centers=True)",
     "int8flow: ResizeBilinear: If half_pixel_centers is True, align_corners must be False."),
    ("tf.raw_ops.ResizeNearestNeighbor(images=tf.ones([1, 4, 4, 1]), size=[0, 2])",
     "int8flow: ResizeNearestNeighbor: output dimensions must be positive"),
    ("tf.raw_ops.ResizeBilinear(images=tf.ones([4, 4, 1]), size=[2, 2])",
     "int8flow: ResizeBilinear: input must be 4-dimensional"),
    ("tf.reverse(tf.ones([2, 3]), [1, 1])", "int8flow: ReverseV2: axis 1 specified more than once."),
    ("tf.reverse(tf.ones([2, 3]), [2])", "int8flow: ReverseV2: 'axis'[0] = 2 is out of valid range [0, 1"),
    ("tf.transpose(tf.ones([2, 3]), [0])", "int8flow: Transpose: transpose expects a vector of size 2"),
    ("tf.transpose(tf.ones([2, 3]), [1, 1])", "int8flow: Transpose: 0 is missing from {1,1}."),
    ("tf.transpose(tf.ones([2, 3]), [0, 2])", "int8flow: Transpose: 2 is out of range [0 .. 2)"),
    ("tf.nn.max_pool2d(tf.ones([1, 2, 2, 3]), 3, 1, 'VALID')", "larger than the input"),
    ("tf.nn.max_pool2d(tf.ones([1, 4, 4, 1]), 2, 1, [[0, 0], [2, 0], [0, 0], [0, 0]])", "smaller than the window"),
    ("tf.nn.max_pool2d(tf.ones([1, 4, 4, 1]), 2, 1, [[1, 0], [0, 0], [0, 0], [0, 0]])",
     "0 for the batch and channel dims"),
    ("tf.reduce_mean(tf.ones([2, 3]), axis=2)", "Invalid reduction dimension"),
    ("tf.matmul(tf.ones([2, 3, 4]), tf.ones([3, 5, 6]))", "compatible batch dimensions"),
    ("tf.einsum('ij,jk->ik', tf.ones([2, 3]), tf.ones([4, 5]))", "has sizes"),
    ("tf.gather(tf.ones([5, 4]), [7])", "is not in [0, 5)"),
    ("tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[0, 7], logits=tf.ones([2, 7]))",
     "Received a label value of 7 which is outside the valid range of [0, 7).  Label values: 0 7"),
    ("tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(labels=[0], features=tf.ones([2, 7]))",
     "must have the same first dimension"),
    ("tf.raw_ops.MaxPoolGrad(orig_input=tf.ones([1, 4, 4, 1]), orig_output=tf.ones([1, 2, 2, 1]),"
     " grad=tf.ones([1, 3, 3, 1]), ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding='VALID')",
     "Expected grad shape to be [1,2,2,1], but got [1,3,3,1]"),
    ("tf.ones([2, 3])[5]", "out of bounds"),
    ("tf.argmax(tf.ones([2, 0]), 1)", "int8flow: ArgMax: Reduction axis 1 is empty in shape [2,0]"),
    ("tf.argmin(tf.ones([2, 3]), 2)", "int8flow: ArgMin: Expected dimension in the range [-2, 2), but got 2"),
    ("tf.one_hot([1, 2], -1)", "int8flow: OneHot: depth must be non-negative, got: -1"),
    ("tf.one_hot([1, 2], 3, axis=3)", "int8flow: OneHot: Expected axis to be -1 or between [0, 2).  But received: 3"),
    ("tf.space_to_batch_nd(tf.ones([1, 5, 4, 1]), [2, 2], [[0, 0], [0, 0]])",
     "padded_shape[0]=5 is not divisible by block_shape[0]=2"),
    ("tf.batch_to_space(tf.ones([3, 2, 2, 1]), [2, 2], [[0, 0], [0, 0]])", "is not divisible by product"),
    ("tf.raw_ops.FusedBatchNormV3(x=tf.ones([1, 2, 2, 3]), scale=tf.ones([4]), offset=tf.ones([3]),"
     " mean=tf.ones([3]), variance=tf.ones([3]), is_training=False)",
     "scale must have the same number of elements as the channels of x"),
    ("tf.raw_ops.FusedBatchNormV3(x=tf.ones([2, 3]), scale=tf.ones([3]), offset=tf.ones([3]),"
     " mean=tf.ones([3]), variance=tf.ones([3]), is_training=False)", "must be 4-dimensional"),
    ("tf.raw_ops.FusedBatchNormV3(x=tf.ones([1, 2, 2, 3]), scale=tf.ones([3]), offset=tf.ones([3]),"
     " mean=tf.ones([0]), variance=tf.ones([0]), is_training=False)",
     "mean must have the same number of elements"),
    ("tf.raw_ops.ResourceScatterSub(resource=tf.Variable(tf.ones([3, 2])).handle, indices=[5],"
     " updates=tf.ones([1, 2]))", "int8flow: ResourceScatterSub: indices[0] = 5 is not in [0, 3)"),
    ("tf.tile(tf.ones([2, 3]) > 0, [2])", "int8flow: Tile: Expected multiples argument to be a vector of length 2"),
    ("tf.tile(tf.ones([2, 3]) > 0, [2, -1])", "int8flow: Tile: Expected multiples[1] >= 0"),
    ("tf.raw_ops.TensorListGetItem(input_handle=tf.raw_ops.TensorListFromTensor(tensor=tf.ones([3, 2]) > 0,"
     " element_shape=[2]), index=5, element_shape=[2], element_dtype=tf.bool)",
     "int8flow: TensorListGetItem: Trying to access element 5 in a list with 3 elements"),
    ("tf.raw_ops.TensorListGetItem(input_handle=tf.raw_ops.TensorListFromTensor(tensor=tf.ones([3, 2]),"
     " element_shape=[2]), index=0, element_shape=[2], element_dtype=tf.bool)",
     "int8flow: TensorListGetItem: Invalid data types; op elements bool but list elements float"),
    ("tf.raw_ops.TensorListPopBack(input_handle=tf.raw_ops.EmptyTensorList(element_shape=[2], max_num_elements=-1,"
     " element_dtype=tf.bool), element_shape=[2], element_dtype=tf.bool)",
     "int8flow: TensorListPopBack: Trying to pop from an empty list"),
    ("tf.raw_ops.AddN(inputs=[tf.raw_ops.TensorListFromTensor(tensor=tf.ones([3, 2]), element_shape=[2]),"
     " tf.raw_ops.TensorListFromTensor(tensor=tf.ones([4, 2]), element_shape=[2])])",
     "int8flow: AddN: Trying to add two lists of tensors with different lengths"),
    ("tf.math.floordiv(tf.constant([7, 8], tf.int64), tf.constant([2, 0], tf.int64))",
     "int8flow: FloorDiv: Integer division by zero"),
    ("tf.math.floormod(tf.constant([7], tf.int64), tf.constant(0, tf.int64))",
     "int8flow: FloorMod: Integer division by zero"),
    ("tf.add(tf.ones([2, 3], tf.int64), tf.ones([4], tf.int64))", "int8flow: AddV2: Incompatible shapes"),
    ("tf.raw_ops.Conv2DBackpropInput(input_sizes=[1, 6, 6, 3], filter=tf.ones([3, 3, 3, 4]),"
     " out_backprop=tf.ones([1, 5, 6, 4]), strides=[1, 1, 1, 1], padding='SAME')",
     "int8flow: Conv2DBackpropInput: out_backprop has shape [1,5,6,4] but the convolution of"),
    ("tf.raw_ops.Conv2DBackpropInput(input_sizes=[1, 6, 6], filter=tf.ones([3, 3, 3, 4]),"
     " out_backprop=tf.ones([1, 6, 6, 4]), strides=[1, 1, 1, 1], padding='SAME')",
     "int8flow: Conv2DBackpropInput: input_sizes must hold 4 values, got 3"),
    ("tf.raw_ops.Conv2DBackpropFilter(input=tf.ones([1, 6, 6, 3]), filter_sizes=[3, 3, 2, 4],"
     " out_backprop=tf.ones([1, 6, 6, 4]), strides=[1, 1, 1, 1], padding='SAME')",
     "int8flow: Conv2DBackpropFilter: input depth must be evenly divisible by filter depth"),
    ("tf.nn.conv3d(tf.ones([1, 5, 5, 5, 6]), tf.ones([3, 3, 3, 2, 2]), [1] * 5, 'SAME')",
     "int8flow: Conv3D: input and filter must have the same depth: 6 vs 2"),
    ("tf.nn.conv3d(tf.ones([1, 2, 5, 5, 3]), tf.ones([3, 3, 3, 3, 2]), [1] * 5, 'VALID')", "larger than"),
    ("tf.math.cumsum(tf.ones([2, 3]), 2)",
     "int8flow: Cumsum: ScanOp: Expected scan axis in the range [-2, 2), but got 2"),
    ("tf.math.cumsum(tf.ones([2, 3]), [0])", "int8flow: Cumsum: ScanOp: axis must be a scalar, not [1]"),
    ("tf.nn.max_pool3d(tf.ones([1, 2, 5, 5, 3]), 3, 1, 'VALID')",
     "int8flow: MaxPool3D: the window [3,3,3] is larger than the input [1,2,5,5,3]"),
    ("tf.raw_ops.Conv3DBackpropInputV2(input_sizes=[1, 6, 6, 3], filter=tf.ones([3, 3, 3, 3, 4]),"
     " out_backprop=tf.ones([1, 6, 6, 6, 4]), strides=[1] * 5, padding='SAME')",
     "input_sizes must hold 5 values, got 4"),
    ("tf.raw_ops.Conv3DBackpropFilterV2(input=tf.ones([1, 6, 6, 6, 3]), filter_sizes=[3, 3, 3, 3, 4],"
     " out_backprop=tf.ones([1, 6, 6, 5, 4]), strides=[1] * 5, padding='SAME')",
     "int8flow: Conv3DBackpropFilterV2: out_backprop has shape [1,6,6,5,4] but the convolution of"),
]


@pytest.fixture(scope="module")
def bad_input_errors(installed: Path) -> dict[str, str]:
    """Every BAD_INPUTS expression run on QCPU, one after the other in one
    process (which must live through them all): what each raised."""
    return run_json(f"""
        import json, tensorflow as tf
        raised = {{}}
        for expression in {[e for e, _ in BAD_INPUTS]!r}:
            with tf.device("/device:QCPU:0"):
                try:
                    eval(expression)
                    raised[expression] = "nothing"
                except Exception as e:
                    raised[expression] = type(e).__name__ + ": " + str(e)
        print(json.dumps(raised))
    """)


@pytest.mark.parametrize("expression, error", BAD_INPUTS)
def test_bad_input_is_a_tf_error(bad_input_errors: dict[str, str], expression: str, error: str) -> None:
    raised = bad_input_errors[expression]
    assert raised.startswith("InvalidArgumentError:") and error in raised, raised
    # TF names the device whose kernel raised it: the messages equal TF's CPU
    # kernels' own, so only this tells a QCPU check from a silent CPU fallback.
    assert "device:QCPU:0}}" in raised, raised


def test_fusion_can_be_turned_off(installed: Path) -> None:
    code = """
        import numpy as np, tensorflow as tf, int8flow
        w, b = tf.Variable(np.ones((4, 3), np.float32)), tf.Variable(np.ones(3, np.float32))
        f = tf.function(lambda x: tf.nn.relu(tf.matmul(x, w) + b))
        print(float(tf.reduce_sum(f(tf.ones([2, 4])))), int8flow.stats()["fusions"])
    """
    on, off = run_python(code), run_python(code, INT8FLOW_FUSION="0")
    assert on.returncode == 0 and off.returncode == 0, on.stderr[-2000:] + off.stderr[-2000:]
    assert on.stdout.startswith("30.0 {'MatMul+BiasAdd+activation': 1}"), on.stdout
    assert off.stdout.strip() == "30.0 {}", off.stdout


def test_loop_only_kernels_leave_top_level_nodes_to_tf_cpu(installed: Path) -> None:
    # QCPU's kernels for loop and cond bodies (an int64 counter, Pow,
    # ReluGrad, a bf16 MatMul) are plain loops; a node outside any body goes
    # to TF's CPU kernel, as before they existed (MoveLoopOnlyNodesToCpu),
    # when fed by the arguments or TF's CPU. Relu has a real QCPU kernel and
    # stays, fed by a QCPU Mean (fed by TF's CPU, it would follow its input
    # there: MoveCpuFedElementwiseToCpu). A TanhGrad fed by that Relu stays
    # too: on TF's CPU it would copy its input out and its result back, more
    # than its loop takes. A bf16 MatMul still moves (TF's native kernel is
    # worth the copies), and so does a bf16 Cast of that Relu: a model under
    # a mixed-precision policy runs as before. A transcendental op (libm per
    # element) fed by QCPU stays on a small tensor (Softplus of 4 values) and
    # moves on a large one (Sin of 10000).
    r = run_json("""
        import json, tensorflow as tf, int8flow
        @tf.function
        def f(step, x, big):
            h = tf.cast(x, tf.bfloat16)
            relu = tf.nn.relu(tf.reduce_mean(x, 0))
            return (step + 1, tf.pow(x, 1.5) + tf.exp(x) + relu, tf.raw_ops.TanhGrad(y=relu, dy=relu),
                    tf.raw_ops.ReluGrad(gradients=x, features=x), tf.matmul(h, h, transpose_b=True),
                    tf.cast(relu, tf.bfloat16), tf.nn.softplus(relu + 1.0), tf.sin(big + 1.0))
        f(tf.constant(3, tf.int64), tf.ones([4, 4]), tf.ones([100, 100]))
        print(json.dumps(int8flow.stats()["cpu_ops"]))
    """)
    assert {"AddV2", "Pow", "ReluGrad", "MatMul", "Sin"} <= set(r), r
    assert "Exp" not in r, r  # a real QCPU kernel (oneDNN's exp), wherever it is fed from
    assert "Relu" not in r and "TanhGrad" not in r and "Softplus" not in r, r
    assert r["Cast"] == 2 * r["MatMul"], r  # both bf16 Casts, x's and the Relu's, each time the pass ran


def test_elementwise_ops_fed_by_tf_cpu_stay_there(installed: Path) -> None:
    # Cumprod has no QCPU kernel; the bias and relu after it would copy its
    # output to QCPU and back for no gain: they follow it to TF's CPU
    # (MoveCpuFedElementwiseToCpu), with the same result as stock TF. The
    # Conv2D block after them runs on QCPU, its bias and relu fused.
    r = run_json("""
        import json, numpy as np, tensorflow as tf, int8flow
        rng = np.random.default_rng(0)
        b1 = tf.constant(rng.standard_normal([4]).astype(np.float32))
        w2, b2 = (tf.constant(rng.standard_normal(s).astype(np.float32)) for s in ([3, 3, 4, 8], [8]))
        def model(x):
            y = tf.nn.relu(tf.nn.bias_add(tf.math.cumprod(x, axis=1), b1))
            y = y - tf.reduce_mean(y, axis=1, keepdims=True)
            return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(y, w2, 1, "SAME"), b2))
        x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
        int8flow.record_op_stats(True)
        got = tf.function(model)(x).numpy()
        s = int8flow.stats()
        with tf.device("/device:CPU:0"):
            want = tf.function(model)(x).numpy()
        print(json.dumps({"err": float(np.abs(got - want).max()), "qcpu_ops": sorted(s["ops"]),
                          "fusions": s["fusions"]}))
    """)
    assert r["err"] <= 1e-4, r
    # QCPU ran the Mean and the fused conv block, nothing of the Cumprod's bias and relu.
    assert {"Mean", "_QcpuFusedConv2D"} <= set(r["qcpu_ops"]), r
    assert not {"BiasAdd", "Relu"} & set(r["qcpu_ops"]), r
    assert r["fusions"].get("Conv+BiasAdd+activation") == 1, r


def test_ops_grappler_makes_after_placement_run_on_cpu(installed: Path) -> None:
    # Grappler's arithmetic optimizer turns log(1 + x) into Log1p and
    # exp(x) - 1 into Expm1 on the node's device, after placement. QCPU has no
    # kernel for Log1p, so without the pass's fallback the call fails with
    # NotFound; with it it runs on TF's CPU, counted and said once. Expm1's
    # QCPU kernel serves loop bodies only (activation_loops.cc): it goes to
    # TF's CPU too, by that rule, unsaid.
    result = run_python("""
        import json, numpy as np, tensorflow as tf, int8flow
        x = tf.constant(np.linspace(-0.5, 2.0, 12, dtype=np.float32))
        f = tf.function(lambda t: tf.math.log(1.0 + t) + (tf.math.exp(t) - 1.0))
        got = f(x).numpy()
        with tf.device("/device:CPU:0"):
            want = (tf.math.log1p(x) + tf.math.expm1(x)).numpy()
        print(json.dumps({"err": float(np.abs(got - want).max()), "cpu_ops": int8flow.stats()["cpu_ops"]}))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    r = json.loads(result.stdout.strip().splitlines()[-1])
    assert r["err"] <= 1e-6, r  # the same CPU ops as the reference, values below 8
    assert {"Log1p", "Expm1"} <= set(r["cpu_ops"]), r
    said = [line for line in int8flow_lines(result.stderr) if "made by a graph rewrite" in line]
    assert len(said) == 1 and "'Log1p'" in said[0], result.stderr[-3000:]


def test_top1_and_masks_stay_on_qcpu_and_reach_the_host_uncopied(installed: Path) -> None:
    # A classifier's serving function returns its top-1 (int64 ArgMax), a mask
    # (bool) and a one-hot (float) to TF's CPU, as QuantizedModel does. ArgMax
    # and OneHot run on QCPU, and each result is handed over in host memory
    # (placement.cc's HandResultsToHost): nothing is copied after the input.
    r = run_json("""
        import json, numpy as np, tensorflow as tf, int8flow
        @tf.function
        def serve(t):
            y = t * 1.5
            top1 = tf.argmax(y, -1)
            outs = (top1, y > 0, tf.one_hot(top1, 8))
            with tf.device("/device:CPU:0"):
                return [tf.identity(o) for o in outs]
        x = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
        with tf.device("/device:QCPU:0"):
            t = tf.identity(x)
            serve(t)
            int8flow.reset_stats()
            int8flow.record_op_stats(True)
            got = serve(t)
        ops = int8flow.stats()["ops"]
        y = x * np.float32(1.5)
        want = (np.argmax(y, -1), y > 0, np.eye(8, dtype=np.float32)[np.argmax(y, -1)])
        print(json.dumps({"copies": int8flow.stats()["copies"], "ops": sorted(ops),
                          "devices": [g.backing_device for g in got],
                          "equal": [bool(np.array_equal(g.numpy(), w)) for g, w in zip(got, want)]}))
    """)
    assert r["equal"] == [True, True, True], r
    assert {"ArgMax", "OneHot", "Greater"} <= set(r["ops"]), r
    assert all(d.endswith("/device:CPU:0") for d in r["devices"]), r
    assert r["copies"]["dtoh"]["count"] == 0 and r["copies"]["htod"]["count"] == 0, r
