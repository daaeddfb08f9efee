"""Keras landmark model -> .tflite with TFLITE_BUILTINS only, in four modes.

The exported graph takes a (1, S, S, 3) RGB crop in [0, 1] and returns landmarks (1, N, 2) in input
pixels (the soft-argmax decoding is inside), optionally also the fused heatmaps, so a device app only
crops, runs and reads coordinates.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

import numpy as np

MODES = ("fp32", "fp16", "dynamic_int8", "int8")
# The decode tail stays float in `int8` mode: heatmap mass below 1/256 of the peak vanishes in int8, and
# an int8 divisor can round to zero. Names of the head layers whose ops are kept in float.
FLOAT_TAIL = ("head_heatmaps", "point_maps", "edge_maps", "edge_to_heatmap", "heatmaps", "landmarks")


def export_graph(model, with_heatmaps: bool = False):
    """A batch-1 functional view of `model` with only the outputs a device needs."""
    import keras

    size = int(model.input_shape[1])
    image = keras.Input((size, size, 3), batch_size=1, name="image")
    out = model(image, training=False)
    outputs = {"landmarks": out["landmarks"]}
    if with_heatmaps:
        outputs["heatmaps"] = out["heatmaps"]
    return keras.Model(image, outputs, name=f"{model.name}_export")


def convert(model, mode: str = "fp32", representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
            int8_io: bool = False, with_heatmaps: bool = False, float_blocks: Sequence[str] = ()) -> bytes:
    """Convert with tf.lite.TFLiteConverter straight from Keras; `representative` is needed for `int8`, whose
    `float_blocks` (layer names, see int8_sensitivity) stay float besides the decode tail."""
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(export_graph(model, with_heatmaps))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("dynamic_int8", "int8"):
        # Per-channel dense quantization emits FULLY_CONNECTED v12 (runtime 2.17); per-tensor keeps v9 (2.3).
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if mode == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if representative is None:
            raise ValueError("full-integer int8 needs representative data")
        return _integer_body_float_tail(converter, representative, int8_io, float_blocks)
    return converter.convert()


def _integer_body_float_tail(converter, representative, int8_io: bool, float_blocks: Sequence[str]) -> bytes:
    """Backbone and head trunk in int8; the FLOAT_TAIL layers' and `float_blocks`' ops in float (TF's selective
    quantization denylists them by output tensor name, which carries the Keras layer path)."""
    import tensorflow as tf

    from .tflite_runner import make_interpreter

    names = [d["name"] for d in make_interpreter(converter.convert(), allocate=False).get_tensor_details()]
    block = re.compile("|".join(rf"/{re.escape(b)}(_\d+)?/" for b in float_blocks)) if float_blocks else None
    keep_float = [n for n in names if any(f"/{layer}" in n for layer in FLOAT_TAIL) or (block and block.search(n))]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep_float)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                                         debug_options=options)
    return debugger.get_nondebug_quantized_model()
