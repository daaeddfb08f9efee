"""benchmarks/int8_latency.py: per-op latency of an export in a tflite_runtime-only process (issue #14, part 4)."""
import importlib.util
import os

import keras
import numpy as np
import pytest

from landmark_kd.export import ExportedGraph, convert, read_model

pytest.importorskip("tflite_runtime.interpreter")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location("int8_latency", os.path.join(ROOT, "benchmarks", "int8_latency.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exports():
    """A small conv / depthwise / residual / swish / norm-like model in fp32 and full int8."""
    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="swish")(image)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="swish")(x)
    y = keras.layers.Conv2D(16, 1)(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.GroupNormalization(groups=1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, {"landmarks": keras.layers.Reshape((8, 2))(keras.layers.Dense(16)(x))})

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)]

    with ExportedGraph(model) as graph:
        return {"fp32": convert(graph, "fp32"), "fp16": convert(graph, "fp16"),
                "int8": convert(graph, "int8", representative)}


def test_split_ops_gives_one_runnable_model_per_operator(exports):
    from tflite_runtime.interpreter import Interpreter

    tool = _tool()
    for buffer in exports.values():
        ops = tool.split_ops(buffer)
        counts = {}
        for op in ops:
            counts[op["op"]] = counts.get(op["op"], 0) + 1
            interpreter = Interpreter(model_content=op["model"], num_threads=1)
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():
                interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
            interpreter.invoke()
        listed, _ = read_model(buffer)
        folded = len({i for op in ops for i in op["folded"]})  # fp16 weights' DEQUANTIZE ops, given as float32
        if folded:
            counts["DEQUANTIZE"] = counts.get("DEQUANTIZE", 0) + folded
        assert counts == {o.name: o.count for o in listed if o.count}
    assert any(op["dtype"] == "INT8" for op in tool.split_ops(exports["int8"]))
    assert any(op["folded"] for op in tool.split_ops(exports["fp16"]))
    assert not any(op["op"] == "DEQUANTIZE" for op in tool.split_ops(exports["fp16"]))


def test_profile_times_every_op_in_a_tflite_runtime_only_process(exports):
    tool = _tool()
    result = tool.profile(exports, runs=3)
    for label, buffer in exports.items():
        data = result[label]
        assert data["whole_ms"] > 0
        assert len(data["ops"]) == len(tool.split_ops(buffer))
        assert all(op["xnnpack_ms"] >= 0 and op["builtin_ms"] >= 0 for op in data["ops"])
        groups = tool.by_op_type(data["ops"])
        assert sum(g["count"] for g in groups) == len(data["ops"])
        assert [g["xnnpack_ms"] for g in groups] == sorted((g["xnnpack_ms"] for g in groups), reverse=True)
    # the default XNNPACK delegate takes float convolutions: the `delegated` column means what it says
    for label in ("fp32", "fp16"):  # fp16 weights reach the convolution as float32 constants, as in the whole model
        convs = [op for op in result[label]["ops"] if op["op"] == "CONV_2D"]
        assert convs and all(op["delegated"] > 0 for op in convs)
