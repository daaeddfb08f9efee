"""Keep TensorFlow's start-up and converter chatter, and native libraries' stray lines, out of the user's way
(opt back in with --verbose)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from typing import Callable, Iterator


def quiet_tensorflow() -> None:
    # Only the log level: oneDNN stays on (TensorFlow's x86 default); turning it off to hide its start-up
    # notice made the train step 1.2-1.35x slower (benchmarks/train_throughput.py --onednn-off-too).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # FFmpeg (OpenCV's video reader) prints "moov atom not found" and the like for a broken video, which our
    # CLIs report in one line of their own; OpenCV reads this when it first opens a video.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def quiet_unless_verbose(argv: list[str]) -> None:
    """Called by the CLIs before anything imports TensorFlow (its C++ log level is read at import)."""
    if "--verbose" not in argv:
        quiet_tensorflow()
    else:  # TensorFlow's own default, said out loud so that runtime_notices_wanted sees the choice
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")


def runtime_notices_wanted() -> bool:
    """Whether the TFLite runtime's INFO notices should reach the user: only when TensorFlow's C++ log level is
    set to 0 (a CLI's --verbose, or the user's environment). A library user who sets nothing gets none."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


@contextlib.contextmanager
def silenced(enabled: bool = True) -> Iterator[None]:
    """The TFLite converter writes straight to file descriptors 1 and 2; hush them while `enabled`."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_STDERR_LOCK = threading.RLock()  # re-entrant: a nested capture hands its lines to the outer one


@contextlib.contextmanager
def native_stderr(rewrite: Callable[[str], str | None]) -> Iterator[None]:
    """Capture what native code (libjpeg, libpng, the TFLite runtime) writes straight to file descriptor 2 while
    the body runs, and print each line again as `rewrite(line)` (dropped when it returns None). Those libraries
    bypass sys.stderr, so this is the only way to name the file a "Premature end of JPEG file" is about, or to
    drop the runtime's "Created TensorFlow Lite XNNPACK delegate" notice. One capture at a time: descriptor 2
    is process-wide."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no descriptor 2 to capture: nothing can be printed there either
            yield
            return
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:  # also when the body raised: what the library said may explain why
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                for line in capture.read().decode(errors="replace").splitlines():
                    line = rewrite(line) if line.strip() else None
                    if line is not None:
                        print(line, file=sys.stderr)


def named_native_warnings(path: str) -> contextlib.AbstractContextManager:
    """native_stderr that prefixes each line with `path` (decoder warnings name no file)."""
    return native_stderr(lambda line: f"warning: {path}: {line.strip()}")
