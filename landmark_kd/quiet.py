"""Keep TensorFlow's start-up and converter chatter out of the user's way (opt back in with --verbose)."""
from __future__ import annotations

import logging
import os
import warnings


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
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
