"""Static INT8 (`quantize`), one module per job:
- source.py: the model (Keras or SavedModel) as one traced graph and its signature;
- data.py: calibration data in the ecosystem's forms, streamed in batches;
- graph.py: what is quantized (the pass's rules), weights, running a GraphDef;
- ranges.py: activation ranges from one streamed pass (minmax, percentile, KL);
- qdq.py: the QDQ graph, and the debugger's graph of quantized twins;
- accuracy.py: per-output loss and per-layer error;
- model.py: QuantizedModel; api.py: quantize itself.
TensorFlow is imported only when quantize runs.
"""
from int8flow.quantization.api import quantize
from int8flow.quantization.memory import release
from int8flow.quantization.model import LayerReport, QuantizedModel

__all__ = ["LayerReport", "QuantizedModel", "quantize", "release"]
