"""SwinV2 backbone (Liu et al., CVPR 2022): a serializable functional Keras model of registered layers.

Outputs, like the `transformers` hidden states with `output_hidden_states_before_downsampling`:
[patch embedding, stage 1, ..., stage 4] feature maps (B, H, W, C), strides 4, 4, 8, 16, 32.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import keras

from ..common import Backbone, register
from .swinv2_block import SwinV2Block
from .swinv2_patch_layers import SwinV2PatchEmbedding, SwinV2PatchMerging


@dataclass
class SwinV2Config:
    """A SwinV2 backbone's architecture, in transformers' field names (so checkpoints' configs map onto it);
    the defaults are SwinV2-tiny at 256 px."""
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

    def image_size_problem(self) -> str | None:
        """Why `image_size` cannot be built, or None: each stage's map (patch_size, then halved per stage) must be
        whole and tile into windows; a map no larger than the window is one window (SwinV2's rule)."""
        resolution, size = self.image_size, self.image_size
        for stage in range(len(self.depths)):
            step = self.patch_size * 2 ** stage
            if size % step:
                return f"SwinV2 needs a multiple of {step} (patch size {self.patch_size}, {len(self.depths)} stages)"
            resolution = size // step
            if resolution > self.window_size and resolution % self.window_size:
                return (f"stage {stage}'s {resolution}x{resolution} map does not tile into {self.window_size}x"
                        f"{self.window_size} windows")
        return None


@register
class SwinV2Backbone(Backbone):
    """SwinV2 feature extractor; its constructor arguments are the `SwinV2Config` fields (saved with it)."""

    def __init__(self, image_size: int, patch_size: int, embed_dim: int, depths: list[int], num_heads: list[int],
                 window_size: int, pretrained_window_sizes: list[int], mlp_ratio: float, qkv_bias: bool,
                 layer_norm_eps: float, drop_path_rate: float, name: str = "swinv2",
                 dtype: str | keras.DTypePolicy | None = None, **kwargs):
        config = SwinV2Config(image_size, patch_size, embed_dim, list(depths), list(num_heads), window_size,
                              list(pretrained_window_sizes), mlp_ratio, qkv_bias, layer_norm_eps, drop_path_rate)
        inputs = keras.Input((image_size, image_size, 3), name="pixels")
        x = SwinV2PatchEmbedding(embed_dim, patch_size, layer_norm_eps, dtype=dtype, name="embeddings")(inputs)
        outputs = [x]
        resolution = image_size // patch_size
        total = sum(depths)
        block_index = 0
        for stage, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = embed_dim * 2 ** stage
            for block in range(depth):
                drop = drop_path_rate * block_index / max(total - 1, 1)
                x = SwinV2Block(dim, heads, (resolution, resolution), window_size, window_size // 2 if block % 2 else 0,
                                mlp_ratio, pretrained_window_sizes[stage], qkv_bias, layer_norm_eps, drop,
                                dtype=dtype, name=f"stage{stage}_block{block}")(x)
                block_index += 1
            outputs.append(x)
            if stage < len(depths) - 1:
                x = SwinV2PatchMerging(dim, layer_norm_eps, dtype=dtype, name=f"stage{stage}_downsample")(x)
                resolution //= 2
        super().__init__(inputs, outputs, config, dtype=dtype, name=name, **kwargs)
