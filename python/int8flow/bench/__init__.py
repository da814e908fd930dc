"""`int8flow bench`: int8flow against stock TF, TFLite INT8 and ONNX Runtime INT8, side by side."""
