"""Run an exported landmark .tflite with tflite_runtime (XNNPACK), handling int8 input/output."""
from __future__ import annotations

import os
import time

import numpy as np


def make_interpreter(path_or_bytes, threads: int = 1):
    """An allocated interpreter. The runtime logs "Created TensorFlow Lite XNNPACK delegate" straight to stderr
    when it allocates; our CLIs' quiet mode (TF_CPP_MIN_LOG_LEVEL set, see quiet.py) hides it with
    TensorFlow's own log lines."""
    from ..quiet import silenced

    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:  # fall back to TensorFlow's copy of the same interpreter
        from tensorflow.lite.python.interpreter import Interpreter
    with silenced(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0")):
        if isinstance(path_or_bytes, (bytes, bytearray)):
            interpreter = Interpreter(model_content=bytes(path_or_bytes), num_threads=threads)
        else:
            interpreter = Interpreter(model_path=path_or_bytes, num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


class TFLiteLandmarkModel:
    """`predict_landmarks(crops (B, S, S, 3) in [0, 1]) -> (B, N, 2)` input pixels, one crop per invoke."""

    def __init__(self, path_or_bytes, threads: int = 1, scheme=None):
        if isinstance(path_or_bytes, str) and not os.path.isfile(path_or_bytes):
            raise FileNotFoundError(f"{path_or_bytes}: TFLite model not found")
        try:
            start = time.perf_counter()
            self.interpreter = make_interpreter(path_or_bytes, threads)
            self.init_seconds = time.perf_counter() - start
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"{path_or_bytes if isinstance(path_or_bytes, str) else 'model'}: "
                             f"not a loadable .tflite model ({err})") from None
        self.input = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        self.output = next((o for o in outputs if len(o["shape"]) == 3 and o["shape"][-1] == 2), outputs[0])
        self.image_size = int(self.input["shape"][1])
        self.num_points = int(self.output["shape"][1])
        self._scheme = scheme

    @property
    def scheme(self):
        if self._scheme is None:
            from ..schemes import SCHEMES

            match = [s for s in SCHEMES.values() if s.num_points == self.num_points]
            if not match:
                raise ValueError(f"{self.num_points}-point model: pass the landmark scheme explicitly")
            self._scheme = match[0]
        return self._scheme

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self.input["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero = self.output["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def invoke(self, crop: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], self._quantize(crop[None]))
        self.interpreter.invoke()
        return self._dequantize(self.interpreter.get_tensor(self.output["index"]))[0]

    def predict_landmarks(self, crops: np.ndarray) -> np.ndarray:
        return np.stack([self.invoke(c) for c in np.asarray(crops, np.float32)])
