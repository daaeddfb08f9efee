"""Shared CLI helpers."""
from __future__ import annotations

import argparse
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
