"""Weights from Hugging Face `transformers` checkpoints (SwinV2, MobileViT-v2), with numpy only.

The one place that knows the reference parameter names and layouts (OIHW convs, (out, in) linears,
patch-merging channel order) and maps them onto our layers, as timm's `checkpoint_filter_fn` does. Which
layers exist comes from the backbone's config (stages, depths, blocks), so a missing or extra reference
parameter is an error naming its key rather than a silent stop.
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np

from ..errors import MissingFileError, ModelFileError
from .mobilevitv2.mobilevitv2_backbone import IR_STRIDES, MobileViTV2Backbone, MobileViTV2Config
from .mobilevitv2.mobilevitv2_presets import MOBILEVITV2_PRESETS
from .swinv2.swinv2_backbone import SwinV2Backbone, SwinV2Config
from .swinv2.swinv2_presets import SWINV2_PRESETS

PREFIXES = ("swinv2.", "mobilevitv2.", "model.", "backbone.")
# The transformers model_type each of our backbone families imports.
MODEL_TYPES = {"swinv2": SWINV2_PRESETS, "mobilevitv2": MOBILEVITV2_PRESETS}


class WeightImportError(ModelFileError):
    """A checkpoint that cannot be imported (a user's file: the CLIs print it as one `error:` line)."""


class MissingCheckpointError(WeightImportError, MissingFileError):
    """A checkpoint path, or a file a checkpoint needs, that does not exist."""


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """A safetensors file as numpy arrays, with task-head prefixes (`swinv2.`, `mobilevitv2.`) removed."""
    if not os.path.isfile(path):
        raise MissingCheckpointError(f"{path}: weights file not found")
    from safetensors.numpy import load_file

    try:
        raw = load_file(path)
    except Exception as err:  # safetensors raises its own error types
        raise WeightImportError(f"{path}: not a readable safetensors file ({err})") from None
    out = {}
    for key, value in raw.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def read_config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise WeightImportError(f"{path}: cannot read transformers config ({err})") from None


def resolve_checkpoint(path: str) -> tuple[str, str]:
    """(config, weights) of a Hugging Face model folder (config.json + model.safetensors) or of a .safetensors
    with its config beside it (NAME.config.json or config.json). Errors name `path` as the user gave it."""
    if not os.path.exists(path):
        raise MissingCheckpointError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        config, weights = os.path.join(path, "config.json"), os.path.join(path, "model.safetensors")
        missing = [os.path.basename(p) for p in (config, weights) if not os.path.isfile(p)]
        if missing:
            raise MissingCheckpointError(f"{path}: a checkpoint folder needs config.json and model.safetensors; "
                                         f"it has no {' and no '.join(missing)}")
        return config, weights
    stem = path[: -len(".safetensors")] if path.endswith(".safetensors") else path
    beside = (stem + ".config.json", os.path.join(os.path.dirname(path), "config.json"))
    config = next((c for c in beside if os.path.isfile(c)), None)
    if config is None:
        raise MissingCheckpointError(f"{path}: no transformers config beside it (looked for {beside[0]} and "
                                     f"{beside[1]})")
    return config, path


def check_checkpoint(path: str, preset: str | None = None) -> tuple[str, str]:
    """`resolve_checkpoint`, and also that its config names a backbone we import (the one `preset` builds, if
    given) and its weights file is a readable safetensors; reads only the config and the weights' header, so a
    run can refuse a bad --pretrained before it loads any data."""
    config, weights = resolve_checkpoint(path)
    kind = read_config(config).get("model_type")
    if kind not in MODEL_TYPES:
        raise WeightImportError(f"{config}: model_type {kind!r} is not supported ({', '.join(MODEL_TYPES)})")
    if preset is not None and preset not in MODEL_TYPES[kind]:
        raise WeightImportError(f"{path}: a {kind} checkpoint does not fit preset {preset!r}")
    from safetensors import safe_open

    try:
        with safe_open(weights, "np"):
            pass
    except Exception as err:  # safetensors raises its own error types
        raise WeightImportError(f"{weights}: not a readable safetensors file ({err})") from None
    return config, weights


class _Assigner:
    """Pops reference tensors by name and checks every one is used exactly once."""

    def __init__(self, state: dict[str, np.ndarray], source: str):
        self.state, self.source, self.used = state, source, set()

    def take(self, key: str) -> np.ndarray:
        if key not in self.state:
            raise WeightImportError(f"{self.source}: missing parameter {key!r}")
        self.used.add(key)
        return self.state[key]

    def set(self, variable, value: np.ndarray, key: str) -> None:
        if tuple(variable.shape) != value.shape:
            raise WeightImportError(f"{self.source}: {key!r} has shape {value.shape}, model expects {tuple(variable.shape)}")
        variable.assign(value.astype(np.float32))

    def dense(self, layer, key: str) -> None:
        self.set(layer.kernel, self.take(key + ".weight").T, key + ".weight")
        if layer.use_bias:
            self.set(layer.bias, self.take(key + ".bias"), key + ".bias")

    def conv(self, layer, key: str) -> None:
        weight = self.take(key + ".weight")
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            self.set(layer.kernel, weight.transpose(2, 3, 0, 1), key + ".weight")  # (C,1,kh,kw) -> (kh,kw,C,1)
        else:
            self.set(layer.kernel, weight.transpose(2, 3, 1, 0), key + ".weight")  # OIHW -> HWIO
        if layer.use_bias:
            self.set(layer.bias, self.take(key + ".bias"), key + ".bias")

    def norm(self, layer, key: str) -> None:
        gamma = getattr(layer, "gamma")
        self.set(gamma, self.take(key + ".weight"), key + ".weight")
        self.set(layer.beta, self.take(key + ".bias"), key + ".bias")
        if isinstance(layer, keras.layers.BatchNormalization):
            self.set(layer.moving_mean, self.take(key + ".running_mean"), key + ".running_mean")
            self.set(layer.moving_variance, self.take(key + ".running_var"), key + ".running_var")
            self.used.add(key + ".num_batches_tracked")

    # Buffers some checkpoints store although they are derived constants we rebuild ourselves.
    DERIVED = ("relative_coords_table", "relative_position_index", "num_batches_tracked")

    def finish(self, ignore: tuple[str, ...] = ()) -> None:
        left = sorted(k for k in self.state
                      if k not in self.used and not k.startswith(ignore) and not k.endswith(self.DERIVED))
        if left:
            raise WeightImportError(f"{self.source}: {len(left)} parameters were not used, e.g. {left[:3]}")


def swinv2_config_from_transformers(cfg: dict, image_size: int | None = None) -> SwinV2Config:
    """Our backbone config from a transformers `config.json` (as a dict); `image_size` overrides its own."""
    return SwinV2Config(
        image_size=image_size or int(cfg.get("image_size", 256)), patch_size=int(cfg["patch_size"]),
        embed_dim=int(cfg["embed_dim"]), depths=list(cfg["depths"]), num_heads=list(cfg["num_heads"]),
        window_size=int(cfg["window_size"]), pretrained_window_sizes=list(cfg.get("pretrained_window_sizes", [0] * 4)),
        mlp_ratio=float(cfg.get("mlp_ratio", 4.0)), qkv_bias=bool(cfg.get("qkv_bias", True)),
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-5)), drop_path_rate=float(cfg.get("drop_path_rate", 0.1)))


def mobilevitv2_config_from_transformers(cfg: dict, image_size: int | None = None) -> MobileViTV2Config:
    """Our backbone config from a transformers `config.json` (as a dict); `image_size` overrides its own."""
    return MobileViTV2Config(
        image_size=image_size or int(cfg.get("image_size", 256)), width_multiplier=float(cfg["width_multiplier"]),
        expand_ratio=float(cfg.get("expand_ratio", 2.0)), ffn_multiplier=float(cfg.get("ffn_multiplier", 2)),
        base_attn_unit_dims=list(cfg.get("base_attn_unit_dims", [128, 192, 256])),
        n_attn_blocks=list(cfg.get("n_attn_blocks", [2, 4, 3])), patch_size=int(cfg.get("patch_size", 2)),
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-5)))


def assign_swinv2(backbone: SwinV2Backbone, state: dict[str, np.ndarray], source: str = "checkpoint") -> None:
    """Copy a transformers SwinV2 state dict into `backbone`, layer by layer; a missing, extra or misshapen
    parameter is a WeightImportError naming it and `source`."""
    a = _Assigner(state, source)
    emb = backbone.get_layer("embeddings")
    a.conv(emb.projection, "embeddings.patch_embeddings.projection")
    a.norm(emb.norm, "embeddings.norm")
    depths = backbone.config.depths
    for stage, depth in enumerate(depths):
        for block in range(depth):
            layer = backbone.get_layer(f"stage{stage}_block{block}")
            key = f"encoder.layers.{stage}.blocks.{block}"
            att = layer.attention
            a.dense(att.query, f"{key}.attention.self.query")
            a.dense(att.key, f"{key}.attention.self.key")
            a.dense(att.value, f"{key}.attention.self.value")
            a.set(att.logit_scale, a.take(f"{key}.attention.self.logit_scale"), f"{key}.attention.self.logit_scale")
            a.dense(att.cpb_fc1, f"{key}.attention.self.continuous_position_bias_mlp.0")
            a.dense(att.cpb_fc2, f"{key}.attention.self.continuous_position_bias_mlp.2")
            a.dense(att.proj, f"{key}.attention.output.dense")
            a.norm(layer.layernorm_before, f"{key}.layernorm_before")
            a.dense(layer.intermediate, f"{key}.intermediate.dense")
            a.dense(layer.output_dense, f"{key}.output.dense")
            a.norm(layer.layernorm_after, f"{key}.layernorm_after")
        if stage < len(depths) - 1:  # the last stage has no patch merging
            merge = backbone.get_layer(f"stage{stage}_downsample")
            key = f"encoder.layers.{stage}.downsample"
            weight = a.take(f"{key}.reduction.weight")  # (2C, 4C), input blocks (y0x0, y1x0, y0x1, y1x1)
            out, four_c = weight.shape
            weight = weight.reshape(out, 4, four_c // 4)[:, [0, 2, 1, 3]].reshape(out, four_c)
            a.set(merge.reduction.kernel, weight.T, f"{key}.reduction.weight")
            a.norm(merge.norm, f"{key}.norm")
    # Buffers and parts we do not use: the final LayerNorm/pooler and classifier heads.
    a.finish(ignore=("layernorm.", "pooler.", "classifier.", "head.", "embeddings.mask_token"))


def _assign_conv_layer(a: _Assigner, block, key: str) -> None:
    a.conv(block.conv, f"{key}.convolution")
    if block.bn is not None:
        a.norm(block.bn, f"{key}.normalization")


def _assign_inverted_residual(a: _Assigner, block, key: str) -> None:
    for name in ("expand_1x1", "conv_3x3", "reduce_1x1"):
        _assign_conv_layer(a, getattr(block, name), f"{key}.{name}")


def assign_mobilevitv2(backbone: MobileViTV2Backbone, state: dict[str, np.ndarray], source: str = "checkpoint") -> None:
    """Copy a transformers MobileViT-v2 state dict into `backbone`, layer by layer; a missing, extra or
    misshapen parameter is a WeightImportError naming it and `source`."""
    a = _Assigner(state, source)
    _assign_conv_layer(a, backbone.get_layer("conv_stem"), "conv_stem")
    for i, strides in enumerate(IR_STRIDES):
        for j in range(len(strides)):
            _assign_inverted_residual(a, backbone.get_layer(f"layer{i}_ir{j}"), f"encoder.layer.{i}.layer.{j}")
    for i in range(len(IR_STRIDES), len(IR_STRIDES) + len(backbone.config.n_attn_blocks)):
        block = backbone.get_layer(f"layer{i}")
        key = f"encoder.layer.{i}"
        _assign_inverted_residual(a, block.downsample, f"{key}.downsampling_layer")
        _assign_conv_layer(a, block.conv_kxk, f"{key}.conv_kxk")
        _assign_conv_layer(a, block.conv_1x1, f"{key}.conv_1x1")
        for t, layer in enumerate(block.transformer):
            tk = f"{key}.transformer.layer.{t}"
            a.norm(layer.layernorm_before, f"{tk}.layernorm_before")
            a.conv(layer.qkv_proj, f"{tk}.attention.qkv_proj.convolution")
            a.conv(layer.out_proj, f"{tk}.attention.out_proj.convolution")
            a.norm(layer.layernorm_after, f"{tk}.layernorm_after")
            a.conv(layer.ffn_conv1, f"{tk}.ffn.conv1.convolution")
            a.conv(layer.ffn_conv2, f"{tk}.ffn.conv2.convolution")
        a.norm(block.layernorm, f"{key}.layernorm")
        _assign_conv_layer(a, block.conv_projection, f"{key}.conv_projection")
    a.finish(ignore=("classifier.", "segmentation_head.", "pooler."))


def backbone_from_transformers(config_path: str, weights_path: str | None = None,
                               image_size: int | None = None) -> SwinV2Backbone | MobileViTV2Backbone:
    """Build our Keras backbone from a `transformers` config JSON and (optionally) load its safetensors.

    Returns a model mapping NHWC images to the list of feature maps matching the reference hidden states.
    """
    cfg = read_config(config_path)
    kind = cfg.get("model_type")
    if kind == "swinv2":
        model = SwinV2Backbone(**swinv2_config_from_transformers(cfg, image_size).to_dict())
        assign = assign_swinv2
    elif kind == "mobilevitv2":
        model = MobileViTV2Backbone(**mobilevitv2_config_from_transformers(cfg, image_size).to_dict())
        assign = assign_mobilevitv2
    else:
        raise WeightImportError(f"{config_path}: model_type {kind!r} is not supported (swinv2, mobilevitv2)")
    if weights_path:
        assign(model, load_state_dict(weights_path), weights_path)
    return model
