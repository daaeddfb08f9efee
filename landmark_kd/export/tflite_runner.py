"""Run an exported landmark .tflite with tflite_runtime (XNNPACK), handling int8 input/output."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from typing import Any  # an Interpreter of whichever runtime is installed (interpreter_class)

import numpy as np

from ..errors import ConfigError, MissingFileError, ModelFileError


# where an Interpreter class is looked for, in order: tflite_runtime (what a device has), LiteRT (`ai_edge_litert`,
# its successor), TensorFlow's copy; the load check's child process looks in the same order
INTERPRETER_MODULES = ("tflite_runtime.interpreter", "ai_edge_litert.interpreter", "tensorflow.lite.python.interpreter")


@functools.lru_cache(maxsize=None)
def interpreter_class() -> type:
    """The TFLite Interpreter to run models with, from the first of `INTERPRETER_MODULES` installed; TensorFlow's
    with a one-line note: importing TensorFlow takes seconds and changes the CPU's float mode, so timings taken
    that way are not a device's."""
    import importlib
    import warnings

    for name in INTERPRETER_MODULES:
        try:
            Interpreter = importlib.import_module(name).Interpreter
        except ImportError:
            continue
        if not name.startswith("tensorflow."):
            return Interpreter
        print("note: tflite_runtime is not installed; running .tflite models with TensorFlow's interpreter (slower "
              "to start; pip install tflite-runtime for a device's runtime)", file=sys.stderr)

        class QuietInterpreter(Interpreter):  # without TF's deprecation notice on every model loaded
            def __init__(self, *args, **kwargs):
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated",
                                            category=UserWarning)
                    super().__init__(*args, **kwargs)

        return QuietInterpreter
    raise ConfigError("running a .tflite model needs tflite-runtime (pip install tflite-runtime), ai-edge-litert or "
                      "TensorFlow; none is installed")


def make_interpreter(path_or_bytes: str | bytes, threads: int = 1, allocate: bool = True) -> Any:
    """An interpreter, allocated unless only its tensor details are wanted. The runtime logs "Created
    TensorFlow Lite XNNPACK delegate" straight to stderr when it allocates: that notice is dropped unless
    asked for (runtime_notices_wanted), anything else it writes is passed on."""
    from ..quiet import native_stderr, runtime_notices_wanted

    keep = runtime_notices_wanted()

    Interpreter = interpreter_class()
    with native_stderr(lambda line: line if keep or "XNNPACK delegate" not in line else None):
        if isinstance(path_or_bytes, (bytes, bytearray)):
            interpreter = Interpreter(model_content=bytes(path_or_bytes), num_threads=threads)
        else:
            interpreter = Interpreter(model_path=path_or_bytes, num_threads=threads)
        if allocate:
            interpreter.allocate_tensors()
    return interpreter


_CHILD_READY = "landmark_kd: child ready"
_CHILD_LOAD = f"""
import sys
import importlib
print({_CHILD_READY!r}, flush=True)  # a Python that ran this far: what follows is about the model
for name in {INTERPRETER_MODULES!r}:
    try:
        Interpreter = importlib.import_module(name).Interpreter
        break
    except ImportError:
        pass
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
interpreter.invoke()  # some damage only shows when the graph runs
"""


def child_python() -> str | None:
    """The Python to run the load check in, or None where this process has none to start: a frozen app
    (PyInstaller), or an embedding server (uWSGI) whose `sys.executable` is its own binary, which `-c` would
    start as something else entirely."""
    name = os.path.basename(sys.executable or "").lower()
    if getattr(sys, "frozen", False) or not name.startswith(("python", "pypy")):
        return None
    return sys.executable


def _unchecked(path: str, why: str) -> None:
    print(f"warning: {path}: loaded without the child-process check ({why}); a damaged file may crash this "
          "process", file=sys.stderr)


def verify_tflite(path: str) -> None:
    """Raise ValueError naming `path` unless it is a flatbuffer the runtime can load and allocate. The runtime
    does not verify its input: a truncated or altered file can kill the process with SIGSEGV and no message,
    so the first load (and one run) happens in a child process, where this process can start one
    (`child_python`); where it cannot, the check is skipped with a warning rather than blamed on the model."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read ({err.strerror})") from None
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelFileError(f"{path}: not a loadable .tflite model (no TFL3 flatbuffer identifier)")
    python = child_python()
    if python is None:
        return _unchecked(path, f"no Python interpreter to start: sys.executable is {sys.executable!r}")
    try:
        done = subprocess.run([python, "-c", _CHILD_LOAD, path], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"{path}: the TFLite runtime hung loading it") from None
    except OSError as err:
        return _unchecked(path, f"{python} could not be started: {err.strerror}")
    if done.returncode != 0 and _CHILD_READY not in done.stdout:
        return _unchecked(path, f"{python} did not run as Python (exit {done.returncode})")
    if done.returncode != 0:
        if done.returncode < 0:
            reason = f"the runtime crashed loading it (signal {-done.returncode}); the file is damaged"
        else:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1][:200] if lines else f"exit {done.returncode}"
        raise ModelFileError(f"{path}: not a loadable .tflite model ({reason})")


def scheme_file(tflite_path: str) -> str:
    """Where an export's landmark layout is written beside it (`m_int8.tflite` -> `m_int8.scheme.json`): the
    .tflite holds only a point count, which does not tell a user's own layout from a built-in one."""
    return os.path.splitext(tflite_path)[0] + ".scheme.json"


class TFLiteLandmarkModel:
    """`predict_landmarks(crops (B, S, S, 3) in [0, 1]) -> (B, N, 2)` input pixels, one crop per invoke;
    `predict` adds each landmark's heatmap peak share (B, N), where the model exports it (None otherwise)."""

    def __init__(self, path_or_bytes, threads: int = 1, scheme=None):
        from ..cli import warn_if_oversubscribed

        interpreter_class()  # no runtime at all is said as such, not blamed on the model by the load check
        # said here, not only by the CLIs: LandmarkDetector(threads=4) in a container pinned to one core ran each
        # face hundreds of times slower without a word
        warn_if_oversubscribed(threads, "threads=")
        if isinstance(path_or_bytes, str):
            if not os.path.isfile(path_or_bytes):
                raise MissingFileError(f"{path_or_bytes}: TFLite model not found")
            verify_tflite(path_or_bytes)
        try:
            start = time.perf_counter()
            self.interpreter = make_interpreter(path_or_bytes, threads)
            self.init_seconds = time.perf_counter() - start
        except (ValueError, RuntimeError) as err:
            raise ModelFileError(f"{path_or_bytes if isinstance(path_or_bytes, str) else 'model'}: "
                             f"not a loadable .tflite model ({err})") from None
        self.input = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        landmark_outputs = [o for o in outputs if len(o["shape"]) == 3 and o["shape"][-1] == 2]
        shape = tuple(int(v) for v in self.input["shape"])
        if not landmark_outputs or len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
            name = path_or_bytes if isinstance(path_or_bytes, str) else "model"
            raise ModelFileError(f"{name}: not a landmark model (needs a (1, S, S, 3) image input and a (1, N, 2) "
                             f"landmark output; has input {shape} and outputs "
                             f"{[tuple(int(v) for v in o['shape']) for o in outputs]})")
        self.output = landmark_outputs[0]
        self._lock = threading.Lock()  # an interpreter runs one invoke at a time (see invoke)
        self.image_size = int(self.input["shape"][1])
        self.num_points = int(self.output["shape"][1])
        # (1, N): each landmark's heatmap peak share, in exports made since it was added (older ones: None)
        self.score_output = next((o for o in outputs if len(o["shape"]) == 2
                                  and int(o["shape"][1]) == self.num_points), None)
        if scheme is not None and scheme.num_points != self.num_points:
            named = "" if scheme.name == str(scheme.num_points) else f" ({scheme.name!r})"
            model = path_or_bytes if isinstance(path_or_bytes, str) else "the model"
            raise ConfigError(f"{model}: a {self.num_points}-point model, given a {scheme.num_points}-point layout"
                              f"{named} (--scheme / scheme=)")
        self.path = path_or_bytes if isinstance(path_or_bytes, str) else None
        self.name = self.path or "model"
        if scheme is None and self.path and os.path.isfile(scheme_file(self.path)):
            scheme = self._read_scheme(scheme_file(self.path))
        self._scheme = scheme  # None: neither given nor beside the file; the scheme property guesses it

    def _read_scheme(self, path: str):
        """The layout convert.py wrote beside the export; it must have the model's point count."""
        import json

        from ..schemes import LandmarkScheme

        try:
            with open(path) as handle:
                scheme = LandmarkScheme.from_config(json.load(handle))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelFileError(f"{path}: not a landmark scheme ({type(err).__name__}: {err})") from None
        if scheme.num_points != self.num_points:
            raise ModelFileError(f"{path}: a {scheme.num_points}-point scheme beside a {self.num_points}-point model")
        return scheme

    @property
    def scheme(self):
        if self._scheme is None:
            from ..schemes import SCHEMES

            match = [s for s in SCHEMES.values() if s.num_points == self.num_points]
            if not match:
                raise ConfigError(f"{self.name}: a {self.num_points}-point model and no {scheme_file(self.name)} "
                                  "beside it (convert.py writes one with each export): copy it there, or pass the "
                                  "layout (predict --scheme FILE.json, LandmarkDetector(scheme=...))")
            self._scheme = match[0]
            if self.path:  # a user's own 68-point layout would be taken for iBUG's without a word
                print(f"warning: {self.name}: no {os.path.basename(scheme_file(self.name))} beside it; taking the "
                      f"built-in {self.num_points}-point layout ({self._scheme.name}). Copy the .scheme.json that "
                      "convert.py wrote with it, or pass the layout (predict --scheme)", file=sys.stderr)
        return self._scheme

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self.input["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    @staticmethod
    def _dequantize(y: np.ndarray, output: dict) -> np.ndarray:
        if output["dtype"] == np.float32:
            return y
        scale, zero = output["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def invoke_with_scores(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One crop's landmarks and peak shares (None where the model has none). Locked: an interpreter holds one
        input and one output, so two threads sharing a model (a web server's workers) would otherwise read each
        other's answers; a model per thread runs them in parallel."""
        tensor = self._quantize(crop[None])
        with self._lock:
            self.interpreter.set_tensor(self.input["index"], tensor)
            self.interpreter.invoke()
            out = self.interpreter.get_tensor(self.output["index"])
            scores = None if self.score_output is None else self.interpreter.get_tensor(self.score_output["index"])
        return (self._dequantize(out, self.output)[0],
                None if scores is None else self._dequantize(scores, self.score_output)[0])

    def invoke(self, crop: np.ndarray) -> np.ndarray:
        """One crop's landmarks."""
        return self.invoke_with_scores(crop)[0]

    def predict_landmarks(self, crops: np.ndarray) -> np.ndarray:
        return self.predict(crops)[0]

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, N, 2) landmarks and (B, N) peak shares (None where the model exports none)."""
        answers = [self.invoke_with_scores(c) for c in np.asarray(crops, np.float32)]
        scores = None if self.score_output is None else np.stack([s for _, s in answers])
        return np.stack([p for p, _ in answers]), scores
