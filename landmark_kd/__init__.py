"""landmark_kd: accurate facial-landmark detectors small and fast enough for phones (arXiv 2404.06029), in Keras 3."""
from __future__ import annotations

# What an app developer reaches for first, importable from the package itself. Loaded on first use, so that
# `import landmark_kd` stays cheap and pulls in neither TensorFlow nor the TFLite runtime.
_LAZY = {"LandmarkDetector": "inference", "Face": "inference"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
