"""Errors a user can fix: bad data, a bad flag or setting, a missing or broken model file, an output folder
that cannot be written. The CLIs (`cli.run`) print these as one `error:` line and exit 2; every other
exception is a bug and keeps its traceback.

Each also derives from the built-in error it used to be, so `except ValueError` in callers keeps working.
"""
from __future__ import annotations


class UserError(Exception):
    """Base: a problem in what the user gave us, stated in one line that names the file, flag or value."""


class DataError(UserError, ValueError):
    """Bad annotation or image data (`DatasetError` is this)."""


class ConfigError(UserError, ValueError):
    """Settings that cannot work together, e.g. distillation weight without a teacher."""


class ModelFileError(UserError, ValueError):
    """A model file that is corrupt, of the wrong kind, or does not fit the task."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputError(UserError, PermissionError):
    """An output folder or file that cannot be written (read-only, full disk, locked by another run)."""


class TrainingDivergedError(UserError, RuntimeError):
    """The loss became NaN or infinite (a learning rate too high for the data, or broken data): the run stops
    with what it saved before, instead of reporting scores of garbage weights."""
