"""Exports stay fast and exact in a process that has only tflite_runtime (no TensorFlow), as on a device.

The model's heatmap logits are scaled so each map spans > 100 nats: its spatial softmax underflows over most
of the map, which in such a process (no flush-to-zero) would leave denormal floats in the decode tail. The
checks that look inside the graph run in a child process that imports only numpy and tflite_runtime.
"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from landmark_kd.export import ExportedGraph, audit, convert
from landmark_kd.export.benchmark import measure_latency
from landmark_kd.export.tflite_export import FLOAT_TAIL
from landmark_kd.export.tflite_runner import TFLiteLandmarkModel
from landmark_kd.models import build_landmark_model

pytestmark = pytest.mark.slow  # every test reads the converted models of `exports`

SIZE = 64
MODES = ("fp32", "dynamic_int8", "int8")

# Child process: tflite_runtime only. Reports (1) every decode-tail float tensor that holds a denormal, with the
# delegate off so that each intermediate tensor is computed and kept; (2) the decode-tail ops the default
# XNNPACK delegate leaves to the builtin kernels; (3) the type of the op that writes the landmarks output.
_PROBE = r"""
import json, re, sys
import numpy as np
from tflite_runtime.interpreter import Interpreter, OpResolverType
path, tail = sys.argv[1], re.compile(sys.argv[2])
plain = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
plain.allocate_tensors()
x = np.random.default_rng(1).uniform(0, 1, plain.get_input_details()[0]["shape"]).astype(np.float32)
plain.set_tensor(plain.get_input_details()[0]["index"], x)
plain.invoke()
names = {d["index"]: d["name"] for d in plain.get_tensor_details()}
tail_tensors = set()
for op in plain._get_ops_details():
    outs = [int(t) for t in op["outputs"]]
    if any(tail.search(names[t]) for t in outs):
        tail_tensors.update(outs)
denormal = {}
for t in tail_tensors:
    v = plain.get_tensor(t)
    if v.dtype == np.float32 and np.any((v != 0) & (np.abs(v) < np.finfo(np.float32).tiny)):
        denormal[names[t]] = float(np.mean((v != 0) & (np.abs(v) < np.finfo(np.float32).tiny)))
out = plain.get_output_details()
landmark_index = [o["index"] for o in out if len(o["shape"]) == 3 and o["shape"][-1] == 2][0]
ops = plain._get_ops_details()
writer = [o["op_name"] for o in ops if landmark_index in [int(t) for t in o["outputs"]]][0]

fast = Interpreter(model_path=path, num_threads=1)
fast.allocate_tensors()
ops = fast._get_ops_details()
original = [o for o in ops if o["op_name"] != "DELEGATE"]
producer = {int(t): o["index"] for o in original for t in o["outputs"]}
by_index = {o["index"]: o for o in original}
covered = set()
for node in (o for o in ops if o["op_name"] == "DELEGATE"):
    stop = {int(t) for t in node["inputs"]}
    stack = [producer[int(t)] for t in node["outputs"] if int(t) in producer]
    while stack:
        n = stack.pop()
        if n not in covered:
            covered.add(n)
            stack += [producer[int(t)] for t in by_index[n]["inputs"] if int(t) >= 0 and int(t) not in stop
                      and int(t) in producer]
builtin = sorted({o["op_name"] for o in original if o["index"] not in covered
                  and any(tail.search(names[int(t)]) for t in o["outputs"])})
print(json.dumps({"denormal": denormal, "tail_ops_on_builtin_kernels": builtin, "landmarks_written_by": writer,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""
TAIL_NAMES = "|".join(rf"/{layer}" for layer in FLOAT_TAIL) + r"|StatefulPartitionedCall"


def _representative():
    rng = np.random.default_rng(0)
    for _ in range(4):
        yield [rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)]


@pytest.fixture(scope="module")
def peaked_model():
    keras.utils.set_random_seed(0)
    model = build_landmark_model("mobilevitv2_pico", "68", SIZE)
    kernel, bias = model.get_layer("head_heatmaps").get_weights()
    model.get_layer("head_heatmaps").set_weights([kernel * 20000.0, bias])
    logits = keras.Model(model.inputs, model.get_layer("head_heatmaps").output)(_crops()).numpy()
    assert (logits.max(axis=(1, 2)) - logits.min(axis=(1, 2))).min() > 100  # exp underflows over most of a map
    return model


def _crops():
    return np.random.default_rng(1).uniform(0, 1, (3, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def exports(peaked_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("denormals")
    paths = {}
    with ExportedGraph(peaked_model) as graph:
        for mode in MODES:
            paths[mode] = str(folder / f"{mode}.tflite")
            with open(paths[mode], "wb") as handle:
                handle.write(convert(graph, mode, _representative))
    return paths


def _probe(path: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, path, TAIL_NAMES], check=False, capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", MODES)
def test_decode_tail_has_no_denormals_and_stays_in_xnnpack(exports, mode):
    probe = _probe(exports[mode])
    assert not probe["tensorflow_imported"]
    assert probe["denormal"] == {}, f"denormal floats in the decode tail: {probe['denormal']}"
    assert probe["tail_ops_on_builtin_kernels"] == []
    # the landmarks leave the graph from a float op: not int8 steps through a DEQUANTIZE
    assert probe["landmarks_written_by"] not in ("DEQUANTIZE", "QUANTIZE")


@pytest.mark.parametrize("mode", MODES)
def test_landmarks_match_keras_and_audit_passes(peaked_model, exports, mode):
    with open(exports[mode], "rb") as handle:
        buffer = handle.read()
    assert audit(buffer, "2.11.0").ok
    crops = _crops()
    expected = peaked_model(crops, training=False)["landmarks"].numpy()
    got = TFLiteLandmarkModel(exports[mode]).predict_landmarks(crops)
    assert got.shape == expected.shape and np.all(np.isfinite(got))
    assert np.all((got >= 0) & (got <= SIZE))
    if mode == "fp32":
        assert np.abs(got - expected).max() < 0.05  # pixels


@pytest.mark.parametrize("mode", ("fp32", "dynamic_int8"))
def test_tflite_runtime_only_process_is_as_fast_as_in_process(exports, mode):
    """In this (TensorFlow) process the interpreter gets TensorFlow's newer XNNPACK; the isolated process has
    tflite_runtime's own. A graph whose ops all run in either delegate times the same in both (measured 1.15-1.25x
    on a quiet machine; a denormal or a non-delegated op costs several times). The other test worker loads the
    CPU unevenly, so the two are measured in alternating rounds, and the best isolated round is compared with the
    middle in-process one: comparing best with best failed CI at 1.51x when one in-process round alone met a
    quiet moment (0.59 ms against 0.77-0.78 ms in its other rounds; isolated 0.89-0.97 ms)."""
    isolated, in_process = [], []
    for _ in range(3):
        isolated.append(measure_latency(exports[mode], threads=1, warmup=20, runs=100, isolated=True)["median"])
        in_process.append(measure_latency(exports[mode], threads=1, warmup=20, runs=100, isolated=False)["median"])
    assert min(isolated) <= 1.5 * sorted(in_process)[1], (isolated, in_process)
