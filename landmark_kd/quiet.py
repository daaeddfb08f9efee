"""Keep TensorFlow's start-up and converter chatter out of the user's way (opt back in with --verbose)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


def quiet_tensorflow() -> None:
    # Only the log level: oneDNN stays on (TensorFlow's x86 default); turning it off to hide its start-up
    # notice made the train step 1.2-1.35x slower (benchmarks/train_throughput.py --onednn-off-too).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def is_quiet() -> bool:
    """Whether quiet_tensorflow (or the user) turned TensorFlow's C++ logging down, so that other native
    chatter (the TFLite runtime's) should be hidden too."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0")


def quiet_unless_verbose(argv: list[str]) -> None:
    """Called by the CLIs before anything imports TensorFlow (its C++ log level is read at import)."""
    if "--verbose" not in argv:
        quiet_tensorflow()


@contextlib.contextmanager
def silenced(enabled: bool = True):
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
