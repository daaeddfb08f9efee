"""Models: SwinV2 and MobileViT-v2 backbones, the AAM heatmap head, and the weight importer.

Keras loads with the first model function used, not with the package, so the preset list (`BACKBONES`) costs
no Keras import: the training CLIs' `--help` answers at once.
"""
from importlib import import_module

from .presets import BACKBONES

_LAZY = {"HeadConfig": ".aam_head", "backbone_from_transformers": ".transformers_import",
         **{name: ".landmark_model" for name in ("build_landmark_model", "copy_weights", "float32_copy", "load_model",
                                                 "model_image_size", "model_scheme", "with_head_features")}}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["backbone_from_transformers", "build_landmark_model", "copy_weights", "float32_copy", "load_model",
           "model_scheme", "model_image_size", "with_head_features", "HeadConfig", "BACKBONES"]
