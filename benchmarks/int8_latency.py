"""Where a .tflite spends its time in a tflite_runtime-only process, per operator (issue #14, part 4).

Each operator of the model is cut out into a single-op model (its own tensors, quantization and constant
weights) and timed in a separate process that imports only numpy and tflite_runtime, as on a device:
with the default XNNPACK delegate, with builtin kernels only, and optionally with the reference kernels. The
per-op times add up to the whole model's (checked against it, side by side), and `delegated` says whether
the default XNNPACK delegate took the op at all.

    python benchmarks/int8_latency.py runs/real_export/real_student_best_fp32.tflite \
        runs/real_export/real_student_best_int8.tflite --reference --top 12

What it found for the shipped full-int8 student (tflite_runtime 2.14 wheel, x86, 1 thread): XNNPACK takes no
int8 op at all (its QS8 support is compiled in but switched off by a build macro, not by anything the model
can say), so every int8 op runs on a builtin kernel, and on x86 those run at reference-kernel speed except
CONV_2D (ruy): the int8 DEPTHWISE_CONV_2D, MUL, ADD, SUB, SQUARED_DIFFERENCE and MEAN cost 25-50x their
XNNPACK float counterparts.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, model_path, non_negative_int, positive_int, run  # noqa: E402  (imports neither numpy nor TensorFlow)
from landmark_kd.outputs import atomic_json  # noqa: E402


# ---- model surgery (needs TensorFlow's flatbuffer schema; runs in the parent process) ----

def _fp16_weights(base, schema) -> dict[int, tuple[int, np.ndarray]]:
    """{output tensor: (op index, float32 bytes)} of each DEQUANTIZE that turns a constant fp16 weight into float32 (an fp16
    export's). The interpreter and XNNPACK do that once at load, so the per-op models get the float32 weight as a
    constant: a DEQUANTIZE cut out alone has nothing to run (XNNPACK refuses an all-constant graph), and its
    consumer with the weight as an input would time a convolution with run-time weights, which no model runs."""
    graph = base.subgraphs[0]
    folded = {}
    for index, op in enumerate(graph.operators):
        code = base.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.DEQUANTIZE:
            continue
        source = graph.tensors[op.inputs[0]]
        data = base.buffers[source.buffer].data if source.buffer else None
        if source.type == schema.TensorType.FLOAT16 and data is not None and len(data):
            weight = np.frombuffer(bytes(bytearray(data)), np.float16).astype(np.float32)
            folded[op.outputs[0]] = index, np.frombuffer(weight.tobytes(), np.uint8)
    return folded


def split_ops(buffer: bytes) -> list[dict]:
    """One single-op .tflite (bytes) per operator of the main subgraph, with what it computes on:
    [{"index", "op", "dtype" (first input's), "shape" (first output's), "name" (its output tensor), "model",
    "folded" (indices of the DEQUANTIZE ops whose fp16 weights it takes as float32 constants: those ops get no
    model of their own)}]."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    base = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(buffer), 0))
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    graph = base.subgraphs[0]
    fp16 = _fp16_weights(base, schema)
    out = []
    for index, op in enumerate(graph.operators):
        if op.outputs[0] in fp16:
            continue
        code = base.operatorCodes[op.opcodeIndex]
        name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        used = list(dict.fromkeys(t for t in list(op.inputs) + list(op.outputs) if t >= 0))
        remap = {t: j for j, t in enumerate(used)}
        model = schema.ModelT()
        model.version, model.description = base.version, b"single op"
        model.operatorCodes = [code]  # only this op's registration: the reference resolver lacks some others
        model.buffers = [schema.BufferT()]
        sub = schema.SubGraphT()
        sub.tensors, sub.inputs = [], []
        for t in used:
            tensor = copy.copy(graph.tensors[t])
            data = base.buffers[tensor.buffer].data if tensor.buffer else None
            if t in fp16:
                data, tensor.type, tensor.quantization = fp16[t][1], schema.TensorType.FLOAT32, None
            if data is not None and len(data):
                stored = schema.BufferT()
                stored.data = data
                model.buffers.append(stored)
                tensor.buffer = len(model.buffers) - 1
            else:
                tensor.buffer = 0
                if t in op.inputs:
                    sub.inputs.append(remap[t])
            tensor.shapeSignature = None
            sub.tensors.append(tensor)
        single = copy.copy(op)
        single.opcodeIndex, single.intermediates = 0, None
        single.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
        single.outputs = [remap[t] for t in op.outputs]
        sub.operators, sub.outputs = [single], [remap[t] for t in op.outputs]
        model.subgraphs = [sub]
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        first_in = next((t for t in op.inputs if t >= 0), op.outputs[0])
        out.append({"index": index, "op": name, "dtype": type_names.get(graph.tensors[first_in].type, "?"),
                    "shape": [int(s) for s in graph.tensors[op.outputs[0]].shape],
                    "name": (graph.tensors[op.outputs[0]].name or b"").decode(errors="replace"),
                    "model": bytes(builder.Output()), "folded": [fp16[t][0] for t in used if t in fp16]})
    return out


# ---- timing (runs in a child process with only numpy + tflite_runtime imported) ----

def _device_benchmark():
    """landmark_kd/export/benchmark.py loaded by its path: it imports only numpy, where the package's
    `export/__init__.py` would also import the converter."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("device_benchmark",
                                                  os.path.join(ROOT, "landmark_kd", "export", "benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time_one(path: str, resolver, runs: int, warmup: int = 3) -> tuple[float, int]:
    from tflite_runtime.interpreter import Interpreter

    bench = _device_benchmark()
    kwargs = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    interpreter = Interpreter(model_path=path, num_threads=1, **kwargs)
    interpreter.allocate_tensors()
    bench.fill_inputs(interpreter, 0)
    delegated = sum(d["op_name"] == "DELEGATE" for d in interpreter._get_ops_details())
    return float(np.median(bench.time_invokes(interpreter, warmup, runs))), delegated


def _child(manifest: str, runs: int, reference: bool) -> None:
    from tflite_runtime.interpreter import OpResolverType

    entries = json.load(open(manifest))
    for entry in entries:
        if entry.get("whole"):  # a whole model: default delegates only, more runs
            entry["xnnpack_ms"], entry["delegated"] = _time_one(entry["path"], None, max(runs, 30), 10)
            continue
        entry["xnnpack_ms"], entry["delegated"] = _time_one(entry["path"], None, runs)
        entry["builtin_ms"], _ = _time_one(entry["path"], OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, runs)
        if reference:
            try:
                entry["reference_ms"], _ = _time_one(entry["path"], OpResolverType.BUILTIN_REF, runs)
            except (ValueError, RuntimeError):
                entry["reference_ms"] = None
    print(json.dumps({"entries": entries, "tensorflow_imported": "tensorflow" in sys.modules}))


def profile(models: dict[str, bytes], runs: int = 20, reference: bool = False) -> dict[str, dict]:
    """{label: {"whole_ms", "ops": [per-op dicts with xnnpack_ms, builtin_ms, delegated, ...]}}, all timed in
    one tflite_runtime-only child process, models interleaved op by op is not needed: each model's ops are
    timed back to back and its whole-model latency right after, so a busy CPU shows in both."""
    with tempfile.TemporaryDirectory() as folder:
        manifest, meta = [], {}
        for label, buffer in models.items():
            whole = os.path.join(folder, f"{len(meta)}_whole.tflite")
            with open(whole, "wb") as handle:
                handle.write(buffer)
            ops = split_ops(buffer)
            for op in ops:
                path = os.path.join(folder, f"{len(meta)}_{op['index']:04d}.tflite")
                with open(path, "wb") as handle:
                    handle.write(op.pop("model"))
                manifest.append({**op, "label": label, "path": path})
            manifest.append({"label": label, "whole": True, "path": whole})
            meta[label] = ops
        listing = os.path.join(folder, "manifest.json")
        with open(listing, "w") as handle:
            json.dump(manifest, handle)
        command = [sys.executable, os.path.abspath(__file__), "--child", listing, "--runs", str(runs)]
        if reference:
            command.append("--reference")
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"per-op timing process failed (exit {done.returncode}): {tail}")
        result = json.loads(lines[-1])
    if result["tensorflow_imported"]:
        raise RuntimeError("the timing process imported TensorFlow: its XNNPACK is not the device's")
    out = {label: {"ops": [], "whole_ms": None} for label in models}
    for entry in result["entries"]:
        entry.pop("path", None)
        if entry.pop("whole", False):
            out[entry["label"]]["whole_ms"] = entry["xnnpack_ms"]
            out[entry["label"]]["whole_delegate_nodes"] = entry["delegated"]
        else:
            out[entry["label"]]["ops"].append(entry)
    return out


def by_op_type(ops: list[dict]) -> list[dict]:
    """Per (op, input dtype): count, summed ms under each kernel set, ops the XNNPACK delegate took; slowest first."""
    groups = collections.OrderedDict()
    for op in ops:
        g = groups.setdefault((op["op"], op["dtype"]), {"op": op["op"], "dtype": op["dtype"], "count": 0,
                                                         "xnnpack_ms": 0.0, "builtin_ms": 0.0, "delegated": 0})
        g["count"] += 1
        g["xnnpack_ms"] += op["xnnpack_ms"]
        g["builtin_ms"] += op["builtin_ms"]
        g["delegated"] += int(op["delegated"] > 0)
        if op.get("reference_ms") is not None:
            g["reference_ms"] = g.get("reference_ms", 0.0) + op["reference_ms"]
    return sorted(groups.values(), key=lambda g: -g["xnnpack_ms"])


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=model_path, help=".tflite files (labelled by file name)")
    parser.add_argument("--runs", type=positive_int, default=20, help="timed invocations per op and kernel set")
    parser.add_argument("--reference", action="store_true", help="also time the reference (BUILTIN_REF) kernels")
    parser.add_argument("--top", type=non_negative_int, default=10, help="list the slowest single ops of each model")
    parser.add_argument("--out", default=None, help="write the full per-op JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.runs, args.reference)
        return 0
    if not args.models:
        parser.error("give at least one .tflite")
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    models = {}
    for path in args.models:
        with open(path, "rb") as handle:
            models[os.path.basename(path)] = handle.read()
    result = profile(models, args.runs, args.reference)
    for label, data in result.items():
        total = sum(op["xnnpack_ms"] for op in data["ops"])
        print(f"\n## {label}: whole model {data['whole_ms']:.2f} ms, sum of its {len(data['ops'])} single ops "
              f"{total:.2f} ms (1 thread, tflite_runtime only)")
        folded = len({i for op in data["ops"] for i in op.get("folded", [])})
        if folded:
            print(f"its {folded} DEQUANTIZE ops of fp16 weights are not timed: each consumer gets that weight as a "
                  "float32 constant, as the interpreter makes it once at load")
        ref = " | reference (ms)" if args.reference else ""
        print(f"| op | input | n | default delegates (ms) | builtin only (ms){ref} | taken by XNNPACK |")
        print("|---|---|---|---|---|" + ("---|" if args.reference else "") + "---|")
        for g in by_op_type(data["ops"]):
            cell = f" | {g['reference_ms']:.3f}" if "reference_ms" in g else (" | -" if args.reference else "")
            print(f"| {g['op']} | {g['dtype']} | {g['count']} | {g['xnnpack_ms']:.3f} | {g['builtin_ms']:.3f}{cell} "
                  f"| {g['delegated']}/{g['count']} |")
        for op in sorted(data["ops"], key=lambda o: -o["xnnpack_ms"])[: args.top]:
            print(f"  #{op['index']:<4d} {op['op']:<20s} {op['dtype']:<8s} {op['xnnpack_ms']:.3f} ms  out {op['shape']}  "
                  f"{op['name'][-70:]}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
