"""Latency of a .tflite with tflite_runtime (XNNPACK): init time, then median and p90 after warm-up.

Measured by default in a separate process that imports only numpy and tflite_runtime, as on a device. Inside
a process that has imported TensorFlow, tflite_runtime's interpreter binds TensorFlow's own (newer) XNNPACK
delegate, which also runs int8 and dynamic-range kernels that tflite_runtime 2.14's XNNPACK leaves to slow
builtin kernels; a figure taken there is not the one a device sees (full int8: about 9x apart on x86).
This file runs as a script for that (`python benchmark.py MODEL --threads 1 --runs 50`, one JSON line);
its top level imports nothing from the package, and the script only the parts that need no TensorFlow.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import types
from typing import Any  # the interpreter: tflite_runtime's, LiteRT's or TensorFlow's class

import numpy as np

PROCESS_NOTE = "separate process with only numpy + tflite_runtime imported (as on a device)"


def process_note(latency: dict) -> str:
    """How a `measure_latency` figure was taken, for reports: PROCESS_NOTE, unless the separate process ran on
    LiteRT, or had to load TensorFlow's interpreter (neither device runtime installed: not a device's figure)."""
    if latency.get("tensorflow_imported"):
        return "separate process on TensorFlow's interpreter (no tflite_runtime or LiteRT here: not a device's figure)"
    runtime = latency.get("runtime", "tflite_runtime")
    return PROCESS_NOTE if runtime == "tflite_runtime" else PROCESS_NOTE.replace("tflite_runtime", runtime)


def fill_inputs(interpreter: Any, seed: int = 0) -> None:
    """Random inputs for every input tensor (uniform [0, 1] floats, full-range integers)."""
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        dtype = detail["dtype"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, detail["shape"], dtype=dtype)
        else:
            data = rng.uniform(0, 1, detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], data)


def time_invokes(interpreter: Any, warmup: int, runs: int) -> np.ndarray:
    """Milliseconds of each of `runs` invocations after `warmup` untimed ones."""
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    return np.asarray(times)


def _time_interpreter(interpreter_class, path: str, threads: int, warmup: int, runs: int, seed: int) -> dict:
    start = time.perf_counter()
    interpreter = interpreter_class(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - start) * 1e3
    fill_inputs(interpreter, seed)
    times = time_invokes(interpreter, warmup, runs)
    return {"init_ms": round(init_ms, 2), "median": round(float(np.median(times)), 3),
            "p90": round(float(np.percentile(times, 90)), 3), "runs": runs, "warmup": warmup}


def measure_latency(path_or_bytes: str | bytes, threads: int = 1, warmup: int = 10, runs: int = 50, seed: int = 0,
                    isolated: bool = True) -> dict:
    """Latency in ms. `isolated` (the default) measures in a fresh tflite_runtime-only process; otherwise in
    this process (kept for comparison: with TensorFlow imported the interpreter uses TensorFlow's XNNPACK)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as handle:
            handle.write(path_or_bytes)
        try:
            return measure_latency(handle.name, threads, warmup, runs, seed, isolated)
        finally:
            os.remove(handle.name)
    if not isolated:
        from .tflite_runner import make_interpreter

        result = _time_interpreter(lambda model_path, num_threads: make_interpreter(model_path, num_threads, False),
                                   path_or_bytes, threads, warmup, runs, seed)
        return {**result, "process": "in-process"}
    command = [sys.executable, os.path.abspath(__file__), path_or_bytes, "--threads", str(threads),
               "--warmup", str(warmup), "--runs", str(runs), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    refused = [line[len("error: "):] for line in done.stderr.splitlines() if line.startswith("error: ")]
    if done.returncode == 2 and refused:  # the model (or a flag) was refused, with the reason
        from ..errors import ModelFileError

        raise ModelFileError(refused[-1])
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{path_or_bytes}: latency process failed (exit {done.returncode}): {tail}")
    result = json.loads(lines[-1])
    return {**result, "process": f"{result.get('runtime', 'tflite_runtime')} only"}  # LiteRT where it ran on it


def tensorflow_imported() -> bool:
    """Whether TensorFlow is loaded in this process: a module in sys.modules, not the None a blocked import (or
    `sys.modules["tensorflow"] = None`) leaves there."""
    return isinstance(sys.modules.get("tensorflow"), types.ModuleType)


def _main(argv: list[str]) -> int:
    """The script: one JSON line; a bad flag or model is one `error:` line and exit 2. The model is first loaded
    and run once in a child process (`verify_tflite`): the runtime does not check its input, and a damaged file
    would otherwise kill this process with no message."""
    if not __package__:  # run as a file: make the package importable (none of what is used imports TensorFlow)
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from landmark_kd.cli import ArgumentParser, non_negative_int, positive_int, run, seed, warn_if_oversubscribed
    from landmark_kd.quiet import silenced

    parser = ArgumentParser(description="Latency of one .tflite in a process that imports only numpy and "
                            "tflite_runtime, as on a device: one JSON line (init_ms, median and p90 in ms).")
    parser.add_argument("model", help="a .tflite file (or a shipped model's file name, e.g. real_student_fp16.tflite)")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed invocations first")
    parser.add_argument("--runs", type=positive_int, default=50, help="timed invocations")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the random input")

    def main(args_list):
        from landmark_kd.errors import MissingFileError, ModelFileError
        from landmark_kd.export.tflite_runner import INTERPRETER_MODULES, interpreter_class, verify_tflite
        from landmark_kd.predictor import resolve_model_path

        args = parser.parse_args(args_list)
        warn_if_oversubscribed(args.threads)
        # the runtime LandmarkDetector would run the model with (tflite_runtime, else LiteRT, else TensorFlow's),
        # looked up first: a board with only LiteRT got a traceback, one with no runtime a model "not loadable"
        Interpreter = interpreter_class()
        path = resolve_model_path(args.model)
        if not os.path.exists(path):
            raise MissingFileError(f"{path}: no such file")
        if not os.path.isfile(path):
            raise ModelFileError(f"{path}: a folder, not a .tflite file")
        if path.lower().endswith(".keras"):  # else "no TFL3 identifier", which does not say what to do
            raise ModelFileError(f"{path}: a Keras model; this times .tflite files: export it first with "
                                 f"`python convert.py --model {path}` and time the .tflite it writes")
        verify_tflite(path)
        with silenced():  # the runtime's "Created TensorFlow Lite XNNPACK delegate" line on stderr
            result = _time_interpreter(Interpreter, path, args.threads, args.warmup, args.runs, args.seed)
        result["tensorflow_imported"] = tensorflow_imported()
        # the runtime interpreter_class took: the first of its candidates that is loaded (tflite_runtime, LiteRT)
        result["runtime"] = next(name.split(".")[0] for name in INTERPRETER_MODULES if sys.modules.get(name))
        print(json.dumps(result))
        return 0

    return run(main, argv)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
