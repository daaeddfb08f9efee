"""Shared CLI helpers."""
from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' unless the help already explains the default or there is none to show."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"
