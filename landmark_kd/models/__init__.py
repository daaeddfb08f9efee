"""Models: SwinV2 and MobileViT-v2 backbones, the AAM heatmap head, and the weight importer."""
from .aam_head import HeadConfig
from .landmark_model import BACKBONES, build_landmark_model, copy_weights, load_model, model_image_size, model_scheme
from .transformers_import import backbone_from_transformers

__all__ = ["backbone_from_transformers", "build_landmark_model", "copy_weights", "load_model", "model_scheme", "model_image_size",
           "HeadConfig", "BACKBONES"]
