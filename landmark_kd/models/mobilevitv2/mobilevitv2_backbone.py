"""MobileViT-v2 backbone as a functional Keras model; outputs the five stage maps (strides 2..32), like
the `transformers` hidden states."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import keras

from .mobilevitv2_layers import ConvNormAct, InvertedResidual, MobileViTV2Block, make_divisible


@dataclass
class MobileViTV2Config:
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

    def channels(self) -> list[int]:
        w = self.width_multiplier
        return [make_divisible(min(max(32 * w, 16), 64), 8, 16), make_divisible(64 * w, 16), make_divisible(128 * w, 8),
                make_divisible(256 * w, 8), make_divisible(384 * w, 8), make_divisible(512 * w, 8)]


def mobilevitv2_backbone(config: MobileViTV2Config, name: str = "mobilevitv2") -> keras.Model:
    c = config.channels()
    size = config.image_size
    inputs = keras.Input((size, size, 3), name="pixels")
    x = ConvNormAct(c[0], 3, 2, name="conv_stem")(inputs)
    x = InvertedResidual(c[0], c[1], 1, config.expand_ratio, name="layer0_ir0")(x)
    outputs = [x]
    x = InvertedResidual(c[1], c[2], 2, config.expand_ratio, name="layer1_ir0")(x)
    x = InvertedResidual(c[2], c[2], 1, config.expand_ratio, name="layer1_ir1")(x)
    outputs.append(x)
    for i in range(3):
        attn = make_divisible(config.base_attn_unit_dims[i] * config.width_multiplier, 8)
        x = MobileViTV2Block(c[2 + i], c[3 + i], attn, config.n_attn_blocks[i], config.ffn_multiplier,
                             config.expand_ratio, config.patch_size, config.layer_norm_eps, name=f"layer{2 + i}")(x)
        outputs.append(x)
    return keras.Model(inputs, outputs, name=name)
