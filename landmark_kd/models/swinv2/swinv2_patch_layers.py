"""SwinV2 patch embedding (conv + LayerNorm) and patch merging (2x2 -> linear -> LayerNorm, post-norm)."""
from __future__ import annotations

import keras
import tensorflow as tf

from ..common import register
from ..normalization import LayerNorm


@register
class SwinV2PatchEmbedding(keras.layers.Layer):
    """Non-overlapping `patch_size` patches projected to `dim` channels and layer-normalised: the image as the
    (B, H, W, C) token map the first stage attends over."""
    def __init__(self, dim: int, patch_size: int = 4, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.patch_size, self.epsilon = int(dim), int(patch_size), float(epsilon)
        self.projection = keras.layers.Conv2D(dim, patch_size, strides=patch_size, dtype=self.dtype_policy, name="projection")
        self.norm = LayerNorm(epsilon=epsilon, dtype=self.dtype_policy, name="norm")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.projection.build(input_shape)
        self.norm.build((None, None, None, self.dim))

    def call(self, x):
        return self.norm(self.projection(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "patch_size": self.patch_size, "epsilon": self.epsilon}


@register
class SwinV2PatchMerging(keras.layers.Layer):
    """Halves H and W. Uses space-to-depth, whose channel order is (dy, dx, C); the weight importer
    reorders the reference's (x0::2 y0::2, x1::2 y0::2, ...) rows to match."""

    def __init__(self, dim: int, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.epsilon = int(dim), float(epsilon)
        self.reduction = keras.layers.Dense(2 * dim, use_bias=False, dtype=self.dtype_policy, name="reduction")
        self.norm = LayerNorm(epsilon=epsilon, dtype=self.dtype_policy, name="norm")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.reduction.build((None, None, None, 4 * self.dim))
        self.norm.build((None, None, None, 2 * self.dim))

    def call(self, x):
        return self.norm(self.reduction(tf.nn.space_to_depth(x, 2)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "epsilon": self.epsilon}
