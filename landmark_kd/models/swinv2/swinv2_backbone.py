"""SwinV2 backbone (Liu et al., CVPR 2022) as a functional Keras model of registered layers.

Outputs, like the `transformers` hidden states with `output_hidden_states_before_downsampling`:
[patch embedding, stage 1, ..., stage 4] feature maps (B, H, W, C), strides 4, 4, 8, 16, 32.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import keras

from .swinv2_block import SwinV2Block
from .swinv2_patch_layers import SwinV2PatchEmbedding, SwinV2PatchMerging


@dataclass
class SwinV2Config:
    image_size: int = 256
    patch_size: int = 4
    embed_dim: int = 96
    depths: list[int] = field(default_factory=lambda: [2, 2, 6, 2])
    num_heads: list[int] = field(default_factory=lambda: [3, 6, 12, 24])
    window_size: int = 8
    pretrained_window_sizes: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-5
    drop_path_rate: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def swinv2_backbone(config: SwinV2Config, name: str = "swinv2") -> keras.Model:
    size = config.image_size
    inputs = keras.Input((size, size, 3), name="pixels")
    x = SwinV2PatchEmbedding(config.embed_dim, config.patch_size, config.layer_norm_eps, name="embeddings")(inputs)
    outputs = [x]
    resolution = size // config.patch_size
    total = sum(config.depths)
    block_index = 0
    for stage, (depth, heads) in enumerate(zip(config.depths, config.num_heads)):
        dim = config.embed_dim * 2 ** stage
        for block in range(depth):
            drop = config.drop_path_rate * block_index / max(total - 1, 1)
            x = SwinV2Block(dim, heads, (resolution, resolution), config.window_size,
                            config.window_size // 2 if block % 2 else 0, config.mlp_ratio,
                            config.pretrained_window_sizes[stage], config.qkv_bias, config.layer_norm_eps, drop,
                            name=f"stage{stage}_block{block}")(x)
            block_index += 1
        outputs.append(x)
        if stage < len(config.depths) - 1:
            x = SwinV2PatchMerging(dim, config.layer_norm_eps, name=f"stage{stage}_downsample")(x)
            resolution //= 2
    return keras.Model(inputs, outputs, name=name)
