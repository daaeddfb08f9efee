"""Latency of a .tflite with tflite_runtime (XNNPACK): init time, then median and p90 after warm-up.

Measured by default in a separate process that imports only numpy and tflite_runtime, as on a device. Inside
a process that has imported TensorFlow, tflite_runtime's interpreter binds TensorFlow's own (newer) XNNPACK
delegate, which also runs int8 and dynamic-range kernels that tflite_runtime 2.14's XNNPACK leaves to slow
builtin kernels; a figure taken there is not the one a device sees (full int8: about 9x apart on x86).
This file runs as a script for that (`python benchmark.py MODEL --threads 1 --runs 50`, one JSON line)
and imports nothing from the package.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

PROCESS_NOTE = "separate process with only numpy + tflite_runtime imported (as on a device)"


def fill_inputs(interpreter, seed: int = 0) -> None:
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


def time_invokes(interpreter, warmup: int, runs: int) -> np.ndarray:
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


def measure_latency(path_or_bytes, threads: int = 1, warmup: int = 10, runs: int = 50, seed: int = 0,
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
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{path_or_bytes}: latency process failed (exit {done.returncode}): {tail}")
    return {**json.loads(lines[-1]), "process": "tflite_runtime only"}


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Latency of one .tflite in a tflite_runtime-only process.")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tflite_runtime.interpreter import Interpreter

    result = _time_interpreter(Interpreter, args.model, args.threads, args.warmup, args.runs, args.seed)
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
