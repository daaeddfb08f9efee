"""MobileViT-v2 backbone as a serializable functional Keras model; outputs the five stage maps (strides 2..32), like
the `transformers` hidden states."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import keras

from ..common import Backbone, register
from .mobilevitv2_layers import ConvNormAct, InvertedResidual, MobileViTV2Block, make_divisible

# The inverted residuals of layer0 and layer1 (fixed by the architecture, as in transformers): one stride each.
IR_STRIDES = ((1,), (2, 1))


@dataclass
class MobileViTV2Config:
    """A MobileViT-v2 backbone's architecture, in transformers' field names (so checkpoints' configs map onto
    it); the defaults are the paper's student, width 0.5 at 256 px."""
    image_size: int = 256
    width_multiplier: float = 0.5
    expand_ratio: float = 2.0
    ffn_multiplier: float = 2.0
    base_attn_unit_dims: list[int] = field(default_factory=lambda: [128, 192, 256])
    n_attn_blocks: list[int] = field(default_factory=lambda: [2, 4, 3])
    patch_size: int = 2
    layer_norm_eps: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)

    def image_size_problem(self) -> str | None:
        """Why `image_size` cannot be built, or None: five stride-2 stages, and the last attention stage (stride
        32) cuts its map into patch_size x patch_size patches."""
        step = 32 * self.patch_size
        if self.image_size % step:
            return f"MobileViT-v2 needs a multiple of {step} (32 x its patch size {self.patch_size})"
        return None

    def channels(self) -> list[int]:
        w = self.width_multiplier
        return [make_divisible(min(max(32 * w, 16), 64), 8, 16), make_divisible(64 * w, 16), make_divisible(128 * w, 8),
                make_divisible(256 * w, 8), make_divisible(384 * w, 8), make_divisible(512 * w, 8)]


@register
class MobileViTV2Backbone(Backbone):
    """MobileViT-v2 feature extractor; its constructor arguments are the `MobileViTV2Config` fields (saved with it)."""

    def __init__(self, image_size: int, width_multiplier: float, expand_ratio: float, ffn_multiplier: float,
                 base_attn_unit_dims: list[int], n_attn_blocks: list[int], patch_size: int, layer_norm_eps: float,
                 name: str = "mobilevitv2", dtype: str | keras.DTypePolicy | None = None, **kwargs):
        config = MobileViTV2Config(image_size, width_multiplier, expand_ratio, ffn_multiplier, list(base_attn_unit_dims),
                                   list(n_attn_blocks), patch_size, layer_norm_eps)
        c = config.channels()
        inputs = keras.Input((image_size, image_size, 3), name="pixels")
        x = ConvNormAct(c[0], 3, 2, dtype=dtype, name="conv_stem")(inputs)
        outputs = []
        for i, strides in enumerate(IR_STRIDES):
            for j, stride in enumerate(strides):
                x = InvertedResidual(x.shape[-1], c[1 + i], stride, expand_ratio, dtype=dtype, name=f"layer{i}_ir{j}")(x)
            outputs.append(x)
        for i, (blocks, units) in enumerate(zip(n_attn_blocks, base_attn_unit_dims), start=len(IR_STRIDES)):
            attn = make_divisible(units * width_multiplier, 8)
            x = MobileViTV2Block(c[i], c[i + 1], attn, blocks, ffn_multiplier, expand_ratio, patch_size,
                                 layer_norm_eps, dtype=dtype, name=f"layer{i}")(x)
            outputs.append(x)
        super().__init__(inputs, outputs, config, dtype=dtype, name=name, **kwargs)
