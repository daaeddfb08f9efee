"""Latency of a .tflite with tflite_runtime (XNNPACK): init time, then median and p90 after warm-up."""
from __future__ import annotations

import time

import numpy as np

from .tflite_runner import make_interpreter


def measure_latency(path_or_bytes, threads: int = 1, warmup: int = 10, runs: int = 50, seed: int = 0) -> dict:
    start = time.perf_counter()
    interpreter = make_interpreter(path_or_bytes, threads)
    init_ms = (time.perf_counter() - start) * 1e3
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        dtype = detail["dtype"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, detail["shape"], dtype=dtype)
        else:
            data = rng.uniform(0, 1, detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], data)
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    times = np.asarray(times)
    return {"init_ms": round(init_ms, 2), "median": round(float(np.median(times)), 3),
            "p90": round(float(np.percentile(times, 90)), 3), "runs": runs, "warmup": warmup}
