"""Shared CLI helpers."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile


class HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' unless the help already explains the default or there is none to show."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def prepare_output_dir(path: str) -> str:
    """Create `path` and prove it is writable by writing a probe file, before any long work starts, so a run
    never finishes only to fail on saving. (`os.access` is not enough: root passes it on read-only mounts.)"""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_probe"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PermissionError(f"{path}: output directory is not writable ({reason})") from None
    return path


def _checked(text: str, convert, expected: str, ok, requirement: str):
    """argparse type body: convert `text`, then refuse values that fail `ok`, naming what was wanted."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (so 0 or -1 is refused before any work, not after it)."""
    return _checked(text, int, "a whole number", lambda v: v >= 1, "at least 1")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a camera index, say)."""
    return _checked(text, int, "a whole number", lambda v: v >= 0, "0 or more")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (nan, inf and 0 are refused)."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and v > 0, "a finite number above 0")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and v >= 0, "a finite number of at least 0")


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, e.g. thread counts `1,2`."""
    values = [positive_int(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")
    return values


def runtime_version(text: str) -> str:
    """argparse type: a tflite-runtime version such as 2.11 or 2.11.0."""
    parts = text.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected a version like 2.11.0, got {text!r}")
    return text


class ArgumentParser(argparse.ArgumentParser):
    """Our CLIs' parser: a bad flag gives one `error:` line and exit 2 (argparse's usage block buries it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


@contextlib.contextmanager
def output_lock(path: str):
    """Hold `path/.lock` (holding our pid) while a run writes there: a second run on the same folder is refused
    with one line instead of both writing the same checkpoints. A lock left by a dead process is taken over."""
    lock = os.path.join(path, ".lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                with open(lock) as handle:
                    pid = int(handle.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            alive = pid > 0 and pid != os.getpid()
            if alive:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive = False
                except PermissionError:
                    pass
            if alive:
                raise PermissionError(f"{path}: another run (process {pid}) is writing here; wait for it or choose "
                                      "another --output") from None
            os.remove(lock)  # stale: its process is gone
    else:
        raise PermissionError(f"{path}: cannot take the run lock {lock}")
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    try:
        yield
    finally:
        try:
            os.remove(lock)
        except OSError:
            pass
