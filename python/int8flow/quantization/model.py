"""`QuantizedModel`: what `quantize` returns. It is called like the model it
came from (the same input and output structures), predicts like Keras, and
saves as a SavedModel with the original's signature names."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from int8flow.quantization.graph import graph_function
from int8flow.quantization.progress import Progress
from int8flow.quantization.source import ModelSource


@dataclass
class LayerReport:
    """One quantizable layer: its input range, whether it runs in INT8, and why.

    `error`: the relative RMSE its own quantization adds to its output against
    FP32 (its input kept FP32), on the calibration data and the INT8 kernels:
    the per-layer debugger. `error_alone`: the guard's metric loss with only
    this layer in INT8 (measured when the guard runs). `range_method`: the
    method its range came from: `percentile` and `kl` fall back to `minmax`
    for a layer whose error their clipping makes larger."""

    node: str
    op: str
    input_range: tuple[float, float]
    int8: bool = True
    range_method: str = "minmax"
    error: float | None = None
    error_alone: float | None = None
    reason: str = "within budget"


class QuantizedModel:
    """A model whose MatMul/Conv2D layers run in INT8 on QCPU (FP32 where kept).

    `report`: one LayerReport per quantizable layer; `losses`: each output's
    loss against FP32 on the calibration data, in `metric`; `loss`: the one
    the guard held to (`metric_output`'s, or the mean)."""

    def __init__(self, frozen: ModelSource, report: list[LayerReport], losses: dict[str, float], loss: float,
                 metric: str, metric_output: str | None) -> None:
        from tensorflow.python.eager import context

        self.signature = frozen.signature
        self.report, self.losses, self.loss = report, losses, loss
        self.metric, self.metric_output = metric, metric_output
        # Called as a concrete function: at batch 1 the tf.function's own
        # dispatch costs ~0.1 ms, a CNN's whole int8 compute ~2 ms.
        self._concrete = graph_function(frozen, frozen.graph_def, frozen.output_tensors).get_concrete_function()
        self._frozen = frozen
        self._host = context.context().host_address_space() + "/device:CPU:0"

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.signature.input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.signature.output_keys

    def __call__(self, inputs: Any) -> Any:
        """The outputs for one batch, as tf.Tensors in the model's output
        structure; `inputs` in its input structure (or a dict by input name)."""
        return self.signature.pack_outputs(self._run(self._flat(inputs)))

    def _run(self, flat: list[Any]) -> list[Any]:
        import tensorflow as tf
        # Private, as TF's own tf.constant uses it; int8flow is built for one TF minor.
        from tensorflow.python.framework.ops import EagerTensor

        for i, (x, spec, name) in enumerate(zip(flat, self.signature.input_specs, self.signature.input_names)):
            if not isinstance(x, tf.Tensor):
                # Made on the host. On QCPU (the default device) a constant costs a
                # function call and two copies, 0.45 ms for one 224x224 image;
                # under tf.device("/CPU:0") the scope alone costs 0.05 ms.
                x = flat[i] = EagerTensor(x, self._host, spec.dtype.as_datatype_enum)
            # A concrete function checks no shapes: a bad one would fail deep in the graph.
            if not spec.is_compatible_with(x):
                raise ValueError(f"the model's input '{name}' takes {spec.dtype.name} {spec.shape}, "
                                 f"got {x.dtype.name} {x.shape}")
        # The inputs are checked above, so ConcreteFunction.__call__'s
        # argument binding (0.1 ms at batch 1) is skipped.
        return self._concrete._call_flat(flat, self._concrete.captured_inputs)

    def predict(self, x: Any, batch_size: int = 32, verbose: int | Literal["auto"] = 0) -> Any:
        """Outputs for all of `x` as numpy arrays, in batches of `batch_size`,
        with a progress bar on stderr for `verbose` 1 or "auto" (Keras' convention)."""
        flat = [np.asarray(a) for a in self._flat(x)]
        samples = len(flat[0])
        progress = Progress("predict", -(-samples // batch_size), verbose in (1, "auto"))
        outputs: list[list[np.ndarray]] = []
        for i in range(0, samples, batch_size):
            outputs.append([t.numpy() for t in self._run([a[i:i + batch_size] for a in flat])])
            progress.step()
        progress.close()
        return self.signature.pack_outputs([np.concatenate(column) for column in zip(*outputs)])

    def save(self, path: str | Path) -> None:
        """A SavedModel in standard TF ops, with the original's signature names,
        input names and output keys: it also loads and runs without int8flow.
        The int8 weights are its variables: loading restores a variable once,
        from the checkpoint, where a constant rides in the graph, which TF
        copies several times as it loads and optimizes it."""
        import tensorflow as tf

        frozen, keys = self._frozen, self.signature.output_keys
        names = list(frozen.captures)
        module = tf.Module()
        module.int8_weights = [tf.Variable(frozen.captures[n], trainable=False, name=n.replace("/", "_"))
                               for n in names]
        inner = graph_function(frozen, frozen.graph_def, frozen.output_tensors,
                               arguments=names).get_concrete_function()

        @tf.function(input_signature=list(self.signature.input_specs))
        def serve(*xs: Any) -> dict[str, Any]:
            return dict(zip(keys, inner(*xs, *module.int8_weights)))

        # As signatures only: an attribute too would store the graph twice.
        function = serve.get_concrete_function()
        tf.saved_model.save(module, str(path), signatures={k: function for k in self.signature.signature_keys})

    def table(self) -> str:
        """The report as text: one row per quantizable layer, then the loss of each output."""
        rows = [f"{'layer':<40} {'op':<7} {'input range':>22} {'from':<10} {'error':>8} {'alone':>8}  precision"]
        for r in self.report:
            error = "" if r.error is None else f"{r.error:.4f}"
            alone = "" if r.error_alone is None else f"{r.error_alone:.4f}"
            rows.append(f"{r.node[-40:]:<40} {r.op[:7]:<7} {r.input_range[0]:>10.4g},{r.input_range[1]:<11.4g} "
                        f"{r.range_method:<10} {error:>8} {alone:>8}  {'int8' if r.int8 else 'fp32: ' + r.reason}")
        for key, loss in self.losses.items():
            guarded = " (guarded)" if len(self.losses) > 1 and key == self.metric_output else ""
            rows.append(f"{self.metric} loss of '{key}' against FP32 on the calibration data: {loss:.4f}{guarded}")
        return "\n".join(rows)

    def layer_errors(self) -> list[LayerReport]:
        """The per-layer debugger's view: the quantized layers by the error
        their own quantization adds, largest first. Name the worst in
        `quantize(..., ignored_scope=[...])` to keep them FP32."""
        return sorted((r for r in self.report if r.error is not None), key=lambda r: -(r.error or 0.0))

    def _flat(self, inputs: Any) -> list[Any]:
        """`inputs` as one value per flat input of the signature."""
        names = self.signature.input_names
        if isinstance(inputs, dict):
            missing = [n for n in names if n not in inputs]
            if missing or len(inputs) != len(names):
                raise ValueError(f"the model takes inputs {list(names)}, got {sorted(inputs)}")
            return [inputs[n] for n in names]
        if isinstance(inputs, (list, tuple)) and len(names) > 1:
            if len(inputs) != len(names):
                raise ValueError(f"the model takes {len(names)} inputs {list(names)}, got {len(inputs)}")
            return list(inputs)
        if len(names) > 1:
            raise ValueError(f"the model takes {len(names)} inputs {list(names)}: give a list or a dict")
        return [inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs]
