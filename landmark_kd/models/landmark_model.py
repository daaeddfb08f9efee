"""Landmark models: preprocessing -> backbone -> AAM head, as one functional Keras model.

Input: (B, S, S, 3) RGB in [0, 1]. Outputs (dict): `heatmaps` (fused, B x S/4 x S/4 x N), `point_maps`,
`edge_maps`, and `landmarks` (B, N, 2) in input pixels.
"""
from __future__ import annotations

import keras

from ..predictor import check_keras_file
from ..schemes import LandmarkScheme, get_scheme
from .aam_head import EdgeToHeatmap, HeadConfig, aam_head
from .common import ImagePreprocessing
from .mobilevitv2.mobilevitv2_backbone import MobileViTV2Backbone
from .mobilevitv2.mobilevitv2_presets import MOBILEVITV2_PRESETS, mobilevitv2_config
from .presets import BACKBONES
from .swinv2.swinv2_backbone import SwinV2Backbone
from .swinv2.swinv2_presets import SWINV2_PRESETS, swinv2_config
from ..errors import ConfigError, ModelFileError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _backbone_config(preset: str, image_size: int):
    if preset in SWINV2_PRESETS:
        return swinv2_config(preset, image_size)
    if preset in MOBILEVITV2_PRESETS:
        return mobilevitv2_config(preset, image_size)
    raise ConfigError(f"unknown backbone preset {preset!r}; known: {BACKBONES}")


def check_image_size(preset: str, image_size: int) -> None:
    """A ConfigError naming the nearest sizes that work when `preset` cannot take `image_size` (before any data
    is loaded; the layers' own errors come out of Keras as a traceback)."""
    problem = _backbone_config(preset, image_size).image_size_problem()
    if problem is None:
        return
    fits = [s for s in range(64, max(2 * image_size, 512) + 1, 16)
            if _backbone_config(preset, s).image_size_problem() is None]
    near = sorted(sorted(fits, key=lambda s: abs(s - image_size))[:3])
    raise ConfigError(f"--image-size {image_size} does not fit {preset}: {problem}; the nearest that do: "
                      f"{', '.join(map(str, near))}")


def build_backbone(preset: str, image_size: int, pretrained: str | None = None) -> tuple[keras.Model, ImagePreprocessing, slice]:
    """(backbone model, preprocessing layer, features to use from stride 4). With `pretrained`, the
    architecture comes from the checkpoint's own transformers config."""
    check_image_size(preset, image_size)  # also refuses an unknown preset
    config = _backbone_config(preset, image_size)
    if preset in SWINV2_PRESETS:
        cls, preprocess = SwinV2Backbone, ImagePreprocessing(IMAGENET_MEAN, IMAGENET_STD, name="preprocess")
    else:  # the apple/mobilevitv2 processors feed BGR in [0, 1]
        cls, preprocess = MobileViTV2Backbone, ImagePreprocessing(flip_channels=True, name="preprocess")
    if pretrained:
        from .transformers_import import backbone_from_transformers, check_checkpoint

        backbone = backbone_from_transformers(*check_checkpoint(pretrained, preset), image_size=image_size)
    else:
        backbone = cls(**config.to_dict())
    return backbone, preprocess, slice(1, 5)


def build_landmark_model(preset: str, scheme: LandmarkScheme | str, image_size: int = 256,
                         head: HeadConfig | None = None, pretrained: str | None = None, name: str | None = None) -> keras.Model:
    """A backbone preset (SwinV2 teacher or MobileViT-v2 student) with the AAM heatmap head for `scheme`'s
    points, taking (B, S, S, 3) images in [0, 1]; `pretrained`: backbone weights from a local checkpoint. The
    head is the light one for MobileViT-v2 presets unless `head` says otherwise."""
    scheme = get_scheme(scheme)
    head = head or HeadConfig(light=preset in MOBILEVITV2_PRESETS)
    backbone, preprocess, use = build_backbone(preset, image_size, pretrained)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    features = backbone(preprocess(inputs))[use]
    outputs = aam_head(list(features), scheme, head)
    return keras.Model(inputs, outputs, name=name or f"{preset}_aam")


def model_scheme(model: keras.Model) -> LandmarkScheme:
    """The landmark scheme a model was built for (carried by its E2H layer)."""
    try:
        return model.get_layer("edge_to_heatmap").scheme
    except ValueError:
        raise ModelFileError(f"model {model.name!r} is not a landmark_kd model (no edge_to_heatmap layer)") from None


def with_head_features(model: keras.Model) -> keras.Model:
    """`model` (same layers, same weights) with one more output, `features`: the AAM head's last feature map, the
    one its heatmap, point and edge convolutions read, taken before its ReLU (the negative half carries what a
    channel argues against, which feature distillation would lose after the ReLU)."""
    try:
        features = model.get_layer("head_heatmaps").input
    except ValueError:
        raise ModelFileError(f"model {model.name!r} is not a landmark_kd model (no head_heatmaps layer)") from None
    source = next((layer for layer in model.layers if layer.output is features), None)
    if isinstance(source, keras.layers.ReLU):
        features = source.input
    outputs = {name: model.get_layer(name).output for name in ("heatmaps", "point_maps", "edge_maps", "landmarks")}
    return keras.Model(model.input, {**outputs, "features": features}, name=f"{model.name}_with_features")


def model_image_size(model: keras.Model) -> int:
    return int(model.input_shape[1])


def architecture_flags(model: keras.Model) -> dict:
    """The training flags that give `model`'s layout (--preset, --image-size, --head, --head-dim, --head-convs),
    read from its layers, so a refused --init-from can say what to pass rather than only that it differs."""
    names = {layer.name for layer in model.layers}
    light = "head_refine0_dw" in names
    convs = sum(1 for i in range(len(names)) if f"head_refine{i}_relu" in names)
    preset = model.name[:-len("_aam")] if model.name.endswith("_aam") else None  # build_landmark_model's name
    if preset not in BACKBONES:  # a renamed model: its preset is not named
        preset = None
    flags = {"preset": preset, "image-size": model_image_size(model), "head": "light" if light else "full",
             "head-dim": int(model.get_layer("head_lateral0").filters) if "head_lateral0" in names else None,
             "head-convs": convs}
    return {k: v for k, v in flags.items() if v is not None}


def _flags_text(flags: dict, only: list[str] | None = None) -> str:
    return " ".join(f"--{k} {v}" for k, v in flags.items() if only is None or k in only)


def copy_weights(source: keras.Model, target: keras.Model, source_name: str) -> int:
    """Copy every weight of `source` into the same-architecture `target` (fine-tuning a trained model);
    returns how many arrays were copied. A model of another layout is refused naming the flags it was
    trained with and the ones that differ here, so a wrong --preset/--image-size/--head-* is caught before
    any training."""
    src, dst = source.weights, target.weights
    if model_scheme(source).get_config() != model_scheme(target).get_config():
        raise ConfigError(f"{source_name}: predicts scheme {model_scheme(source).name!r}, the model being trained is "
                          f"set up for {model_scheme(target).name!r}; pass the same --scheme")
    mismatch = next(((a.path, tuple(a.shape), tuple(b.shape)) for a, b in zip(src, dst) if tuple(a.shape) != tuple(b.shape)),
                    None)
    if len(src) != len(dst) or mismatch:
        theirs, ours = architecture_flags(source), architecture_flags(target)
        differ = [k for k in theirs if theirs[k] != ours.get(k)]
        where = (f"weight {mismatch[0]} is {mismatch[1]}, here {mismatch[2]}" if mismatch else
                 f"{len(src)} weight arrays, here {len(dst)}")
        if differ:
            where = f"this run has {_flags_text(ours, differ)}; {where}"
        raise ConfigError(f"{source_name}: another architecture, trained with {_flags_text(theirs)} ({where}); "
                          "pass the flags it was trained with")
    for a, b in zip(src, dst):
        b.assign(a.numpy())
    return len(src)


MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` computing in float32, same weights: one trained with --mixed-precision keeps its float16/bfloat16
    compute policy in its saved config, and TFLite's builtin ops run none of those (convert.py died with
    "'tf.Sub' op is neither a custom op nor a flex op"). A float32 model is returned as it is."""
    if all(layer.dtype_policy.name not in MIXED_POLICIES for layer in model._flatten_layers()):
        return model

    def plain(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(node.get("config"), dict):
                name = node["config"].get("name")
                return {**node, "config": {**node["config"], "name": "float32" if name in MIXED_POLICIES else name}}
            return {key: plain(value) for key, value in node.items()}
        if isinstance(node, list):
            return [plain(value) for value in node]
        return "float32" if isinstance(node, str) and node in MIXED_POLICIES else node

    copy = keras.saving.deserialize_keras_object(plain(keras.saving.serialize_keras_object(model)), safe_mode=True)
    copy.set_weights(model.get_weights())
    return copy


def load_model(path: str) -> keras.Model:
    """Load a `.keras` landmark model with safe_mode on; clear errors for missing or corrupt files."""
    check_keras_file(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises many types for a bad archive
        reason = str(err).split(". ")[0][:200]  # its first sentence: the rest is Keras' advice on other formats
        raise ModelFileError(f"{path}: not a loadable .keras model ({type(err).__name__}: {reason})") from None


__all__ = ["build_landmark_model", "architecture_flags", "copy_weights", "float32_copy", "with_head_features", "model_scheme", "model_image_size", "load_model", "HeadConfig", "EdgeToHeatmap", "BACKBONES"]
