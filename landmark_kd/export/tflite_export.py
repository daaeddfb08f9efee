"""Keras landmark model -> .tflite with TFLITE_BUILTINS only, in four modes.

The exported graph takes a (1, S, S, 3) RGB crop in [0, 1] and returns landmarks (1, N, 2) in input
pixels (the soft-argmax decoding is inside) and each landmark's heatmap peak share (1, N) (`decode.peak_share`:
how sure the model is that a face is there), optionally also the fused heatmaps, so a device app only crops,
runs and reads coordinates.
"""
from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    import keras

MODES = ("fp32", "fp16", "dynamic_int8", "int8")
# The decode tail stays float in `int8` mode: heatmap mass below 1/256 of the peak vanishes in int8, and
# an int8 divisor can round to zero. Names of the head layers whose ops are kept in float.
FLOAT_TAIL = ("head_heatmaps", "point_maps", "edge_maps", "edge_to_heatmap", "heatmaps", "landmarks", "peak_share")

# The exported decode tail is rebuilt from the model's head outputs (same maths as the Keras layers) so that a
# stock tflite_runtime 2.11-2.14 runs all of it inside XNNPACK (whose 2.14 delegate takes neither SUM nor
# BATCH_MATMUL) and so that it never computes on denormal floats: no process flushes them to zero by default
# (importing TensorFlow does not either, measured: MXCSR 0x1fa0), and on CPUs with slow denormal arithmetic
# they cost ~100 cycles each (the 2-core x86 CPU here shows no such penalty).
SOFTMAX_FLOOR = -60.0  # logits further than this below their map's peak are raised to it: exp(-60)/(H*W) is normal
HEAT_FLUSH = 1e-15  # softmax probabilities below this become exactly 0 (their pull on the mean is < 1e-10 px)
PRODUCT_FLUSH = 1e-20  # point * edge attention below this becomes exactly 0, so heat * it is 0 or >= 1e-35
# dynamic_int8 stores these ops' float weights as per-channel int8 + DEQUANTIZE (runtime 2.7+); see _weight_only_int8.
WEIGHT_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}
WEIGHT_MIN_ELEMENTS = 1024  # as the converter's dynamic-range quantizer: smaller tensors stay float


def export_graph(model: keras.Model, with_heatmaps: bool = False) -> keras.Model:
    """A batch-1 functional view of `model` with only the outputs a device needs. A landmark_kd model's decode
    tail (heatmap softmax, AAM product, soft-argmax, peak share) is rebuilt from its head outputs with ops that XNNPACK
    delegates and that flush tiny values (see SOFTMAX_FLOOR); the model itself is not changed. A model trained
    with --mixed-precision is exported computing in float32 (`float32_copy`)."""
    import keras

    from ..models.landmark_model import float32_copy

    model = float32_copy(model)
    size = int(model.input_shape[1])
    image = keras.Input((size, size, 3), batch_size=1, name="image")
    tail = _decode_tail(model)
    layers = _tail_layers()
    if tail is None:  # not the standard AAM decode: export it as it is
        out = model(image, training=False)
        heatmaps, landmarks = out.get("heatmaps"), out["landmarks"]
    else:
        logits, points, attention, stride = tail
        trunk = keras.Model(model.inputs, [logits, points, attention], name=model.name)
        logits, points, attention = trunk(image, training=False)
        heat = layers["softmax"](dtype="float32", name="head_heatmaps_softmax")(logits)
        heatmaps = layers["product"](dtype="float32", name="heatmaps")([heat, points, attention])
        landmarks = layers["soft_argmax"](stride, dtype="float32", name="landmarks")(heatmaps)
    outputs = {"landmarks": landmarks}
    if heatmaps is not None:
        outputs["peak_share"] = layers["peak_share"](dtype="float32", name="peak_share")(heatmaps)
    if with_heatmaps:
        outputs["heatmaps"] = heatmaps
    return keras.Model(image, outputs, name=f"{model.name}_export")


def _decode_tail(model):
    """(logits, point maps, edge attention, stride) tensors when `model` ends in the AAM head's decode
    (heatmaps = SpatialSoftmax(head_heatmaps) * point_maps * edge_to_heatmap, landmarks = SoftArgmax(heatmaps)),
    else None."""
    try:
        logits, softmax = model.get_layer("head_heatmaps"), model.get_layer("head_heatmaps_softmax")
        points, attention = model.get_layer("point_maps"), model.get_layer("edge_to_heatmap")
        product, decode = model.get_layer("heatmaps"), model.get_layer("landmarks")
    except ValueError:
        return None
    try:
        wired = (type(softmax).__name__ == "SpatialSoftmax" and type(decode).__name__ == "SoftArgmax"
                 and type(product).__name__ == "Multiply" and softmax.input is logits.output
                 and decode.input is product.output
                 and [id(t) for t in product.input] == [id(softmax.output), id(points.output), id(attention.output)])
    except (AttributeError, ValueError, TypeError):  # a layer used more than once, or never
        return None
    return (logits.output, points.output, attention.output, int(decode.stride)) if wired else None


def _tail_layers() -> dict:
    """The export-only decode layers (never saved, so not registered)."""
    import keras
    import tensorflow as tf

    class FlushedSpatialSoftmax(keras.layers.Layer):
        """SpatialSoftmax whose logits are first raised to (peak + SOFTMAX_FLOOR): no exp underflows to a
        denormal. The peak is a full-map MAX_POOL_2D (XNNPACK has no REDUCE_MAX in 2.14). Probabilities below
        HEAT_FLUSH then become exactly 0."""

        def call(self, logits):
            logits = tf.cast(logits, tf.float32)
            h, w, n = logits.shape[1], logits.shape[2], logits.shape[3]
            peak = tf.nn.max_pool2d(logits, [h, w], [h, w], "VALID")
            logits = tf.maximum(logits, peak + SOFTMAX_FLOOR)
            flat = tf.nn.softmax(tf.reshape(logits, [-1, h * w, n]), axis=1)
            return tf.nn.relu(tf.reshape(flat, [-1, h, w, n]) - HEAT_FLUSH)

    class FlushedProduct(keras.layers.Layer):
        """heat * points * attention, with points * attention below PRODUCT_FLUSH set to 0 first: both factors
        of the last product are then 0 or normal and >= 1e-35 apart from 0, so no denormal is made."""

        def call(self, inputs):
            heat, points, attention = (tf.cast(t, tf.float32) for t in inputs)
            return heat * tf.nn.relu(points * attention - PRODUCT_FLUSH)

    def weighted_sums(heatmaps, *weights: np.ndarray):
        """(B, 1, N, K) sums over each map of the heatmaps times each (H, W) weight grid: one 1x1 CONV_2D over
        the (N, H*W) transposed maps instead of SUM reductions, which tflite_runtime 2.14 runs outside XNNPACK."""
        h, w, n = heatmaps.shape[1], heatmaps.shape[2], heatmaps.shape[3]
        kernel = np.stack([np.asarray(g, np.float32).reshape(-1) for g in weights], -1)[None, None]
        maps = tf.reshape(tf.transpose(tf.reshape(heatmaps, [-1, h * w, n]), [0, 2, 1]), [-1, 1, n, h * w])
        return tf.nn.conv2d(maps, tf.constant(kernel), 1, "VALID")

    class ConvSoftArgmax(keras.layers.Layer):
        """SoftArgmax (normalised weighted mean, to input pixels) with the spatial sums as a convolution."""

        def __init__(self, stride: int = 4, **kwargs):
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, heatmaps):
            h, w, n = heatmaps.shape[1], heatmaps.shape[2], heatmaps.shape[3]
            ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
            sums = weighted_sums(heatmaps, np.ones((h, w)), xs, ys)  # (B, 1, N, 3): total, sum x, sum y
            total = tf.maximum(sums[..., :1], 1e-12)
            points = sums[..., 1:] / total * float(self.stride) + (self.stride - 1) / 2.0
            return tf.reshape(points, [-1, n, 2])

    class ConvPeakShare(keras.layers.Layer):
        """`decode.peak_share` in the graph: the peak as a full-map MAX_POOL_2D, the total as a convolution.
        The share is at least 1/(H*W) of a map's total, so no denormal is made."""

        def call(self, heatmaps):
            h, w, n = heatmaps.shape[1], heatmaps.shape[2], heatmaps.shape[3]
            peak = tf.reshape(tf.nn.max_pool2d(heatmaps, [h, w], [h, w], "VALID"), [-1, n])
            total = tf.reshape(weighted_sums(heatmaps, np.ones((h, w))), [-1, n])
            return peak / tf.maximum(total, 1e-12)

    return {"softmax": FlushedSpatialSoftmax, "product": FlushedProduct, "soft_argmax": ConvSoftArgmax,
            "peak_share": ConvPeakShare}


@contextlib.contextmanager
def _without_default_save_signatures() -> Iterator[None]:
    """Keras' TensorFlow layers have a `_default_save_signature` property that makes a new tf.function for each
    functional model, and the SavedModel writer traces every one it meets (the export graph, its trunk, the
    model's own nested models: 2 of 6 s for a small student, 3.5 of 11 s for the shipped one) although the
    converter reads only the "serve" endpoint. Off while an ExportedGraph is written (the .tflite bytes are the
    same, tested); a Keras without the property is left as it is."""
    try:
        from keras.src.backend.tensorflow.layer import TFLayer
    except ImportError:
        yield
        return
    original = TFLayer.__dict__.get("_default_save_signature")
    if not isinstance(original, property):
        yield
        return
    TFLayer._default_save_signature = property(lambda self: None)
    try:
        yield
    finally:
        TFLayer._default_save_signature = original


class ExportedGraph:
    """`export_graph(model)` written once as a SavedModel in a temporary folder (removed by `close`, or on leaving
    a `with` block), for `convert` to read in each mode. This is what TFLiteConverter.from_keras_model does on
    every call: Keras' ExportArchive with the inference call, then the SavedModel converter; that export is most
    of a conversion's time (6 of 9 s for a small student, 10 of 15 s for the shipped one, before Keras' default
    signatures were left out of it), so a model converted in several modes, or int8's calibration pass, exports
    it once. The .tflite is byte for byte from_keras_model's."""

    def __init__(self, model: keras.Model, with_heatmaps: bool = False):
        import functools
        import tempfile

        import keras
        import tensorflow as tf

        graph = export_graph(model, with_heatmaps)
        self.with_heatmaps = with_heatmaps
        self.path = tempfile.mkdtemp(prefix="landmark_kd_export_")
        try:
            archive = keras.export.ExportArchive()
            archive.track(graph)
            signature = [tf.TensorSpec(x.shape, dtype=x.dtype, name=x.name) for x in graph.inputs]
            archive.add_endpoint("serve", functools.partial(graph.__call__, training=False), signature)
            with _without_default_save_signatures():
                archive.write_out(self.path, verbose=False)
        except BaseException:
            self.close()
            raise

    def converter(self):
        """A fresh TFLiteConverter on the SavedModel, builtin ops only; its metadata names the source a Keras
        model, as from_keras_model's does (the .tflite is then byte for byte what from_keras_model gives)."""
        import tensorflow as tf
        from tensorflow.lite.python import conversion_metadata_schema_py_generated as metadata

        converter = tf.lite.TFLiteConverter.from_saved_model(self.path)
        converter._metadata.environment.modelType = metadata.ModelType.KERAS_MODEL
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "ExportedGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def convert(model: keras.Model | ExportedGraph, mode: str = "fp32",
            representative: Callable[[], Iterable[list[np.ndarray]]] | None = None, int8_io: bool = False,
            with_heatmaps: bool = False, float_blocks: Sequence[str] = ()) -> bytes:
    """Convert with tf.lite.TFLiteConverter straight from Keras (`model`, or its `ExportedGraph` to convert one
    model in several modes: `with_heatmaps` is then the graph's); `representative` is needed for `int8`, whose
    `float_blocks` (layer names, see int8_sensitivity) stay float besides the decode tail. `int8_io` (int8 only):
    the image input is int8 (pixel value - 128 for a uint8 pixel), the outputs stay float (coordinates in int8
    would step by half a pixel)."""
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "int8" and representative is None:
        raise ConfigError("full-integer int8 needs representative data")
    if not isinstance(model, ExportedGraph):
        with ExportedGraph(model, with_heatmaps) as graph:
            return convert(graph, mode, representative, int8_io, with_heatmaps, float_blocks)
    if with_heatmaps and not model.with_heatmaps:
        raise ValueError("with_heatmaps: this ExportedGraph was exported without the heatmaps output")
    converter = model.converter()
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("dynamic_int8", "int8"):
        # Per-channel dense quantization emits FULLY_CONNECTED v12 (runtime 2.17); per-tensor keeps v9 (2.3).
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if mode == "dynamic_int8":
        # Not the converter's hybrid kernels: tflite_runtime <= 2.14's XNNPACK delegates none of them, so they
        # ran on builtin kernels (4-8x slower than fp32 at 1 thread; much slower again at 2 threads, where the
        # builtin and XNNPACK thread pools alternate ~70 times per run). Same int8 weights, float maths in XNNPACK.
        return _weight_only_int8(converter.convert())
    if mode == "int8":
        return _integer_body_float_tail(converter, representative, int8_io, float_blocks)
    return converter.convert()


def _integer_body_float_tail(converter, representative, int8_io: bool, float_blocks: Sequence[str]) -> bytes:
    """Backbone and head trunk in int8; the FLOAT_TAIL layers' and `float_blocks`' ops in float (TF's selective
    quantization denylists them by output tensor name, which carries the Keras layer path).

    Latency (benchmarks/int8_latency.py, per op, tflite_runtime 2.14 x86 wheel, 1 thread): its XNNPACK takes no
    int8 op (QS8 is a build-time switch there, nothing a model can ask for), and its builtin int8 kernels run at
    reference-kernel speed except CONV_2D / FULLY_CONNECTED (ruy). Every int8 op type of the student is then
    slower than its XNNPACK float twin (DEPTHWISE_CONV_2D 11.5 ms vs 0.27, MUL 7.1 vs 0.29, ADD 4.5 vs 0.10, even
    CONV_2D 3.5 vs 2.6), so no int8 formulation or float-block choice brings this mode to fp32 speed on such a
    runtime: use fp16 / dynamic_int8 there; this mode is for runtimes with integer kernels (ARM, NPUs)."""
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    from .tflite_runner import make_interpreter

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    # One calibrated float model, then the quantizer with the denylist: what tf.lite.experimental's
    # QuantizationDebugger.get_nondebug_quantized_model does, without its second conversion (for the tensor
    # names), its instrumented model and its interpreter: the same bytes, measured, with the export the pico
    # student's int8 in 11 s instead of 20, the shipped student's in 42 s instead of 54 (200 calibration faces).
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    names = [d["name"] for d in make_interpreter(calibrated, allocate=False).get_tensor_details()]
    block = re.compile("|".join(rf"/{re.escape(b)}(_\d+)?/" for b in float_blocks)) if float_blocks else None
    keep_float = [n for n in names if any(f"/{layer}" in n for layer in FLOAT_TAIL) or (block and block.search(n))]
    # The ops that make the graph outputs (the landmark offset, the heatmap product) are named by the traced
    # signature call (StatefulPartitionedCall[_k]:i) in the quantizer, not by their layer: keep those float too,
    # else the coordinates came out in int8 steps (range/255, about 0.5 px at 128 px).
    keep_float += [f"StatefulPartitionedCall{suffix}:{i}" for suffix in ("", "_1", "_2", "_3") for i in range(3)]
    buffer = mlir_quantize(calibrated, disable_per_channel=converter._experimental_disable_per_channel,
                           fully_quantize=False, enable_numeric_verify=False, denylisted_nodes=keep_float)
    if not int8_io:
        return buffer
    # The quantizer's model ignores the converter's inference_input_type; drop its input QUANTIZE here instead, as
    # the converter itself does. The outputs stay float: they come from the float tail.
    from tensorflow.lite.python.util import modify_model_io_type

    return modify_model_io_type(buffer, tf.int8, tf.float32)


def _weight_only_int8(buffer: bytes) -> bytes:
    """Store the float weights of WEIGHT_OPS (>= WEIGHT_MIN_ELEMENTS) as symmetric per-channel int8 behind a
    constant DEQUANTIZE (v5, runtime 2.7): XNNPACK (and the builtin DEQUANTIZE, once) expands them to float at
    load, so the model runs at fp32 speed with about a quarter of the weight bytes."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(buffer), 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def opcode_name(index):
        code = model.operatorCodes[index]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "")

    dequantize = schema.OperatorCodeT()
    dequantize.builtinCode = dequantize.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    dequantize.version = 5
    model.operatorCodes.append(dequantize)
    dequantize_index = len(model.operatorCodes) - 1
    users = {}
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            users[tensor.buffer] = users.get(tensor.buffer, 0) + 1
    for graph in model.subgraphs:
        operators, done = [], set()
        for op in graph.operators:
            axis = WEIGHT_OPS.get(opcode_name(op.opcodeIndex))
            weight = op.inputs[1] if axis is not None and len(op.inputs) > 1 else -1
            tensor = graph.tensors[weight] if weight >= 0 else None
            data = model.buffers[tensor.buffer].data if tensor is not None else None
            if (tensor is not None and weight not in done and tensor.type == schema.TensorType.FLOAT32
                    and data is not None and len(data) >= 4 * WEIGHT_MIN_ELEMENTS and users.get(tensor.buffer) == 1):
                values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32).reshape(tensor.shape)
                others = tuple(i for i in range(values.ndim) if i != axis)
                scale = (np.maximum(np.abs(values).max(axis=others), 1e-30) / 127.0).astype(np.float32)
                shape = [1] * values.ndim
                shape[axis] = -1
                q = np.clip(np.round(values / scale.reshape(shape)), -127, 127).astype(np.int8)
                stored = schema.BufferT()
                stored.data = np.frombuffer(q.tobytes(), np.uint8)
                model.buffers.append(stored)
                quant = schema.QuantizationParametersT()
                quant.scale, quant.zeroPoint, quant.quantizedDimension = scale.tolist(), [0] * len(scale), axis
                packed = schema.TensorT()
                packed.shape, packed.type = list(tensor.shape), schema.TensorType.INT8
                packed.buffer = len(model.buffers) - 1
                packed.name, packed.quantization = (tensor.name or b"weight") + b"/int8", quant
                graph.tensors.append(packed)
                model.buffers[tensor.buffer].data = None  # the float tensor is now DEQUANTIZE's output
                tensor.buffer = 0
                expand = schema.OperatorT()
                expand.opcodeIndex, expand.inputs, expand.outputs = dequantize_index, [len(graph.tensors) - 1], [weight]
                operators.append(expand)
                done.add(weight)
            operators.append(op)
        graph.operators = operators
    for meta in model.metadata or []:
        if meta.name == b"min_runtime_version":  # DEQUANTIZE v5 (per-channel int8) needs 2.7.0
            raw = model.buffers[meta.buffer].data
            old = bytes(np.asarray(raw, np.uint8)).split(b"\0", 1)[0].decode() if raw is not None else ""
            if tuple(int(p) for p in old.split(".") if p.isdigit()) < (2, 7, 0):
                model.buffers[meta.buffer].data = np.frombuffer(b"2.7.0".ljust(16, b"\0"), np.uint8)
    builder = flatbuffers.Builder(max(1024, len(buffer) // 2))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
