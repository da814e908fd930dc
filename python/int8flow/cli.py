"""The `int8flow` command: `doctor` checks an install, `demo` shows QCPU at work,
`quantize` makes a static INT8 SavedModel, `bench` measures it against stock TF
and the INT8 peers, `launch` runs pinned copies of a command."""
from __future__ import annotations

import argparse
import os
import site
import sys
import sysconfig
from pathlib import Path
from typing import Any

PLUGIN_NAME = "libint8flow_plugin.so"


def _import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def _expected_plugin_paths() -> list[Path]:
    dirs = {sysconfig.get_path("platlib"), sysconfig.get_path("purelib")}
    if site.ENABLE_USER_SITE:
        dirs.add(site.getusersitepackages())
    return [Path(d) / "tensorflow-plugins" / PLUGIN_NAME for d in sorted(dirs) if d]


def _isa_line(cpu: dict[str, Any]) -> str:
    flags = cpu["flags"]
    names = [("AVX2", "avx2"), ("AVX512", "avx512f"), ("AVX512-VNNI", "avx512_vnni"),
             ("AVX-VNNI", "avx_vnni"), ("AMX-INT8", "amx_int8")]
    return ", ".join(f"{label} {'yes' if flags[key] else 'no'}" for label, key in names)


def _bf16_line(supported: bool, enabled: bool) -> str:
    if not supported:
        return "not supported here (needs AVX512-BF16 or AMX); QCPU runs fp32"
    return ("on: float matmuls and convolutions run bf16" if enabled
            else "supported, off (INT8FLOW_PRECISION=bf16 or int8flow.enable_bf16() turns it on)")


def doctor() -> int:
    """Print what int8flow sees; non-zero exit when QCPU is not active."""
    import int8flow

    tf = _import_tensorflow()
    state = int8flow.load_state()
    cpu = int8flow.cpu_features()
    print(f"int8flow    {int8flow.__version__} ({Path(int8flow.__file__).parent})")
    print(f"TensorFlow  {tf.__version__} ({Path(tf.__file__).parent})")
    print(f"plugin      {state['plugin_path'] or 'not loaded by TensorFlow'}")
    print(f"devices     {', '.join(int8flow.devices()) or 'none'}")
    print(f"CPU         {cpu['model']}, {cpu['cores']} usable cores")
    print(f"ISA         {_isa_line(cpu)}")
    if cpu["onednn_error"]:
        print(f"oneDNN      unusable: {cpu['onednn_error']}")
    else:
        print(f"oneDNN      {cpu['onednn_version']}, kernels for {cpu['onednn_isa']}")
        print(f"OpenMP      {cpu['openmp']}")
        print(f"threads     {cpu['threads']} per oneDNN call ({cpu['threads_rule']})")
        print(f"bf16        {_bf16_line(cpu['bf16'], int8flow.bf16_enabled())}")
    limit = int8flow._native.settings()["memory_limit_bytes"]
    print(f"memory      {_human_bytes(cpu['memory_bytes'])} physical; "
          f"INT8FLOW_MEMORY_LIMIT_MB: {_human_bytes(limit) if limit else 'not set'}")
    copies = int8flow.stats()["copies"]
    print("copies      " + ", ".join(
        f"{k} {v['count']} ({_human_bytes(v['bytes'])})" for k, v in copies.items()))
    if state["active"]:
        print("status      OK: TensorFlow places ops on QCPU")
        return 0
    if not state["initialized"]:
        where = "\n              ".join(str(p) for p in _expected_plugin_paths())
        print(f"status      NOT LOADED: TensorFlow did not load {PLUGIN_NAME}. It looks in\n"
              f"              {where}\n"
              "            Reinstall with `pip install --force-reinstall int8flow`.")
    else:
        print(f"status      INERT: {state['reason']}")
    return 1


def demo() -> int:
    """List the devices, run a small Keras model on QCPU and compare with stock TF CPU."""
    import numpy as np

    import int8flow

    tf = _import_tensorflow()
    import keras

    print(f"TensorFlow {tf.__version__} devices:")
    for device in tf.config.list_physical_devices():
        print(f"  {device.name}")
    if not int8flow.is_loaded():
        print(f"QCPU is not active: {int8flow.load_state()['reason'] or 'plugin not loaded'}")
        return 1
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="gelu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    x = np.random.default_rng(0).standard_normal((8, 32, 32, 3)).astype("float32")
    int8flow.reset_stats()
    on_qcpu = model.predict(x, verbose=0)  # default placement: QCPU
    copies = int8flow.stats()["copies"]
    with tf.device("/CPU:0"):
        on_cpu = model(x, training=False).numpy()
    print(f"Keras predict on QCPU: output {on_qcpu.shape}, "
          f"max |QCPU - CPU| = {np.max(np.abs(on_qcpu - on_cpu)):.2e}")
    print("host<->device copies during predict: " + ", ".join(
        f"{k} {v['count']}" for k, v in copies.items()))
    return 0


def quantize(args: argparse.Namespace) -> int:
    """Calibrates a Keras model file or a SavedModel on an .npz and writes its INT8 SavedModel."""
    import numpy as np

    _import_tensorflow()
    import int8flow

    try:
        with np.load(args.data) as archive:
            if args.key is not None and args.key not in archive.files:
                raise ValueError(f"{args.data} has no array '{args.key}' (it has {', '.join(archive.files)})")
            names = [args.key] if args.key else archive.files
            # One array feeds a one-input model whatever its name; several go by input name.
            data = archive[names[0]] if len(names) == 1 else {name: archive[name] for name in names}
        qmodel = int8flow.quantize(
            _load_model(args.model), data, args.method, signature_key=args.signature_key,
            subset_size=args.subset_size, batch_size=args.batch_size, percentile=args.percentile,
            ignored_scope=args.ignore, accuracy_budget=args.budget, metric=args.metric,
            metric_output=args.metric_output, keep_ends=args.keep_ends, verbose=not args.quiet)
        qmodel.save(args.out)
    except Exception as e:  # the command's boundary: one line, never a traceback
        message = " ".join(str(e).split())
        if not isinstance(e, (OSError, ValueError)):
            message = f"{type(e).__name__}: {message}"
        print(f"int8flow quantize: {message}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(qmodel.table())
    print(f"INT8 SavedModel: {args.out}")
    return 0


def _load_model(path: str) -> Any:
    """A Keras model from a .keras or .h5 file; a SavedModel directory as its path."""
    if Path(path).is_dir():
        return path
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file or SavedModel directory")
    import keras

    return keras.models.load_model(path, compile=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="int8flow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check the install and show what QCPU will run on")
    commands.add_parser("demo", help="show the QCPU device running a Keras model")
    q = commands.add_parser("quantize", help="calibrate a model and save it as an INT8 SavedModel")
    q.add_argument("model", help="a Keras model file (.keras, .h5) or a SavedModel directory")
    q.add_argument("--data", required=True,
                   help="calibration samples: an .npz, one array per input named as the input (or one array)")
    q.add_argument("--key", help="use only this array of --data (a one-input model)")
    q.add_argument("--out", required=True, help="the SavedModel folder to write")
    q.add_argument("--method", default="minmax", choices=["minmax", "percentile", "kl"])
    q.add_argument("--percentile", type=float, default=99.99, help="for --method percentile")
    q.add_argument("--signature-key", default="serving_default", help="the SavedModel signature to quantize")
    q.add_argument("--subset-size", type=int, help="calibrate on this many samples at most")
    q.add_argument("--batch-size", type=int, default=32)
    q.add_argument("--ignore", action="append", default=[], metavar="NAME",
                   help="a node or layer that stays FP32 (repeatable)")
    q.add_argument("--budget", type=float, help="largest loss against FP32, in --metric")
    q.add_argument("--metric", default="top1", choices=["top1", "cosine"])
    q.add_argument("--metric-output", help="the output --budget applies to (default: the mean over outputs)")
    q.add_argument("--keep-ends", action="store_true", help="the first and last quantizable layers stay FP32")
    q.add_argument("--quiet", action="store_true", help="no progress bars, no report")
    commands.add_parser("launch", add_help=False,
                        help="run N copies of a command, each pinned to its own cores (--help for options)")
    commands.add_parser("bench", add_help=False,
                        help="benchmark against stock TF, TFLite and ONNX Runtime (--help for options)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "launch":
        from int8flow.launch import main as launch

        return launch(rest)
    if args.command == "bench":
        from int8flow.bench.runner import main as bench

        return bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "quantize":
        return quantize(args)
    return {"doctor": doctor, "demo": demo}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
