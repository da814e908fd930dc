"""What `quantize` starts from: a Keras model or a SavedModel signature, seen as
one traced function of flat inputs to flat outputs, with its signature.

The function's graph keeps its variables as variables: calibration runs read
them through their handles, so no copy of the FP32 weights is made (a frozen
graph, with the weights as constants, held them several times over as TF
imported, optimized and ran it: 7.8 GB for a 440 MB BERT-base).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Where Keras' model.export names outputs of a list or a single tensor.
OUTPUT_KEY = "output_{}"
KERAS_SIGNATURES = ("serving_default", "serve")


@dataclass(frozen=True)
class Signature:
    """The model's inputs and outputs, flat and in the structure callers use.

    `input_names[i]` and `input_specs[i]` are flat input i (the SavedModel
    signature's argument names); `input_structure` packs the flat inputs into
    what the model is called with (a single tensor, a list or a dict), and
    `output_structure` the flat outputs into what it returns.
    `output_keys[i]` names flat output i in a saved signature. `signature_keys`
    are the signature names a saved copy gets.
    """

    input_names: tuple[str, ...]
    input_specs: tuple[Any, ...]
    input_structure: Any
    output_keys: tuple[str, ...]
    output_structure: Any
    signature_keys: tuple[str, ...]

    def pack_inputs(self, flat: list[Any]) -> Any:
        import tensorflow as tf

        return tf.nest.pack_sequence_as(self.input_structure, flat)

    def pack_outputs(self, flat: list[Any]) -> Any:
        import tensorflow as tf

        return tf.nest.pack_sequence_as(self.output_structure, flat)

    def describe_inputs(self) -> str:
        return ", ".join(f"'{n}' {s.dtype.name} {tuple(s.shape)}" for n, s in zip(self.input_names, self.input_specs))


@dataclass
class ModelSource:
    """The traced function (flat inputs -> flat outputs), its signature, and
    its GraphDef: function calls inlined, variables read from placeholders
    that `captures` maps to their resource handles (and other captured
    tensors to their values)."""

    signature: Signature
    graph_def: Any
    input_tensors: tuple[str, ...]  # in graph_def, one per flat input
    output_tensors: tuple[str, ...]  # in graph_def, one per flat output
    captures: dict[str, Any]  # placeholder node name -> the captured eager tensor
    variables: dict[str, Any]  # placeholder node name -> the variable whose handle it is
    owner: Any = None  # what keeps the variables alive (a loaded SavedModel)


def load_source(model: Any, signature_key: str, sample: Any) -> ModelSource:
    """The ModelSource of a Keras model, or of the SavedModel at the path
    `model`; `sample` (a first calibration element) gives the input structure
    of a subclassed Keras model that was never called on Keras inputs."""
    if isinstance(model, (str, Path)):
        return _from_saved_model(Path(model), signature_key)
    if not callable(model):
        raise ValueError(f"quantize takes a Keras model or a SavedModel directory, got {type(model).__name__}")
    return _from_keras(model, sample)


def _from_keras(model: Any, sample: Any) -> ModelSource:
    import tensorflow as tf

    if getattr(model, "inputs", None):  # Functional, Sequential: as Keras' own export
        try:
            structure = model.input
        except AttributeError:  # a Sequential built from keras.Input but never called
            structure = model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)
        names = [t.name for t in tf.nest.flatten(structure)]
        shapes = [t.shape for t in tf.nest.flatten(structure)]
        dtypes = [t.dtype for t in tf.nest.flatten(structure)]
    elif sample is not None:  # subclassed: the calibration data's structure
        structure = sample
        flat = [np.asarray(x) for x in tf.nest.flatten(sample)]
        names = sorted(sample) if isinstance(sample, dict) and len(sample) == len(flat) else \
            ["args_0"] + [f"args_0_{i}" for i in range(1, len(flat))]
        # float64 data feeds a float32 model (Keras' floatx), as Keras' own call casts it
        shapes = [x.shape for x in flat]
        dtypes = [tf.float32 if x.dtype == np.float64 else tf.as_dtype(x.dtype) for x in flat]
    else:
        raise ValueError("the model has never been called: give calibration data to learn its inputs from")
    specs = [tf.TensorSpec([None, *shape[1:]], dtype, name=name) for shape, dtype, name in zip(shapes, dtypes, names)]
    concrete = tf.function(
        lambda *flat: model(tf.nest.pack_sequence_as(structure, list(flat)), training=False)
    ).get_concrete_function(*specs)
    return _traced(concrete, names, specs, tf.nest.map_structure(lambda _: None, structure), KERAS_SIGNATURES)


def _from_saved_model(path: Path, signature_key: str) -> ModelSource:
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise ValueError(f"{path} is not a SavedModel directory (no saved_model.pb)")
    loaded = tf.saved_model.load(str(path))
    if signature_key not in loaded.signatures:
        raise ValueError(f"{path} has no signature '{signature_key}' "
                         f"(it has {', '.join(sorted(loaded.signatures)) or 'none'})")
    function = loaded.signatures[signature_key]
    arguments = function.structured_input_signature[1]
    names = sorted(arguments)
    specs = [tf.TensorSpec(arguments[n].shape, arguments[n].dtype, name=n) for n in names]
    concrete = tf.function(lambda *flat: function(**dict(zip(names, flat)))).get_concrete_function(*specs)
    source = _traced(concrete, names, specs, {n: None for n in names},
                     tuple(dict.fromkeys((signature_key, "serving_default"))))
    source.owner = loaded
    return source


def _traced(concrete: Any, names: list[str], specs: list[Any], input_structure: Any,
            signature_keys: tuple[str, ...]) -> ModelSource:
    """The ModelSource of `concrete`: its graph with every function call inlined
    (so that the layers are nodes of one graph), as TF's own freezing does."""
    import tensorflow as tf
    # Private, as int8flow is built for one TF minor: the inlining that
    # convert_variables_to_constants_v2 runs, without making constants.
    from tensorflow.python.framework.convert_to_constants import _run_inline_graph_optimization

    output_structure = tf.nest.map_structure(lambda _: None, concrete.structured_outputs)
    count = len(concrete.outputs)
    if isinstance(output_structure, dict) and len(output_structure) == count:
        keys = sorted(output_structure)  # tf.nest flattens a dict in key order
    else:
        keys = [OUTPUT_KEY.format(i) for i in range(count)]
    signature = Signature(tuple(names), tuple(specs), input_structure, tuple(keys), output_structure,
                          signature_keys)
    graph_def = _run_inline_graph_optimization(concrete, lower_control_flow=False, aggressive_inlining=True)
    captures = {internal.op.name: external for external, internal in concrete.graph.captures}
    by_handle = {id(v.handle): v for v in concrete.graph.variables}
    variables = {name: by_handle[id(value)] for name, value in captures.items() if id(value) in by_handle}
    return ModelSource(signature, graph_def, tuple(t.name for t in concrete.inputs[:len(names)]),
                       tuple(t.name for t in concrete.outputs), captures, variables)
