"""SwinV2 transformer block on (B, H, W, C) maps: (shifted) windows, res-post-norm, MLP."""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from ..common import register, roll_2d
from ..normalization import LayerNorm, gelu
from .swinv2_window_attention import SwinV2WindowAttention, expand_mask


def window_partition(x: tf.Tensor, window: int) -> tf.Tensor:
    """(B, H, W, C) -> (B * nW, window^2, C) with at most 5-D transposes (TFLite 2.11 has no 6-D)."""
    w, c = x.shape[2], x.shape[3]
    x = tf.reshape(x, [-1, window, w // window, window, c])  # (B*H/w, w, W/w, w, C)
    x = tf.transpose(x, [0, 2, 1, 3, 4])  # (B*H/w, W/w, w, w, C)
    return tf.reshape(x, [-1, window * window, c])


def window_reverse(windows: tf.Tensor, window: int, h: int, w: int) -> tf.Tensor:
    c = windows.shape[-1]
    x = tf.reshape(windows, [-1, w // window, window, window, c])  # (B*H/w, W/w, w, w, C)
    x = tf.transpose(x, [0, 2, 1, 3, 4])
    return tf.reshape(x, [-1, h, w, c])


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> np.ndarray:
    """(nW, T, T) additive mask: -100 between tokens that came from different regions before the shift."""
    img = np.zeros((h, w), np.float32)
    count = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[hs, ws] = count
            count += 1
    win = img.reshape(h // window, window, w // window, window).transpose(0, 2, 1, 3).reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return np.where(diff != 0, -100.0, 0.0).astype(np.float32)


@register
class SwinV2Block(keras.layers.Layer):
    """One SwinV2 transformer block on a (B, H, W, C) token map of `resolution`: (shifted) window attention with
    scaled cosine scores and a log-spaced position MLP, then an MLP, each post-normalised (SwinV2's res-post-norm,
    which keeps deep stacks stable where v1's pre-norm let activations grow)."""
    def __init__(self, dim: int, num_heads: int, resolution: Sequence[int], window_size: int = 8, shift_size: int = 0,
                 mlp_ratio: float = 4.0, pretrained_window_size: int = 0, qkv_bias: bool = True,
                 epsilon: float = 1e-5, drop_path: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.resolution = tuple(int(r) for r in resolution)
        # As in SwinV2: a window larger than the map shrinks to it, and then nothing shifts.
        if min(self.resolution) <= window_size:
            window_size, shift_size = min(self.resolution), 0
        self.window_size, self.shift_size = int(window_size), int(shift_size)
        h, w = self.resolution
        if h % self.window_size or w % self.window_size:
            raise ValueError(f"feature map {h}x{w} is not divisible by window {self.window_size}; choose an image "
                             f"size that is patch_size * window * 2^(stages-1)")
        self.mlp_ratio, self.pretrained_window_size, self.qkv_bias = float(mlp_ratio), int(pretrained_window_size), bool(qkv_bias)
        self.epsilon, self.drop_path = float(epsilon), float(drop_path)
        # The layer's own noise source, made with the layer (under a strategy's scope): Keras' global one is made
        # at the first random call, inside each replica's traced step, which tf.distribute refuses.
        self.seed_generator = keras.random.SeedGenerator(name="drop_path_seed") if self.drop_path > 0 else None
        self.attention = SwinV2WindowAttention(dim, num_heads, self.window_size, pretrained_window_size, qkv_bias, dtype=self.dtype_policy, name="attention")
        self.layernorm_before = LayerNorm(epsilon=epsilon, dtype=self.dtype_policy, name="layernorm_before")
        self.intermediate = keras.layers.Dense(int(dim * mlp_ratio), dtype=self.dtype_policy, name="intermediate")
        self.output_dense = keras.layers.Dense(dim, dtype=self.dtype_policy, name="output")
        self.layernorm_after = LayerNorm(epsilon=epsilon, dtype=self.dtype_policy, name="layernorm_after")
        self._mask = (expand_mask(shifted_window_mask(h, w, self.window_size, self.shift_size), self.num_heads)
                      if self.shift_size else None)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        tokens = (None, self.window_size ** 2, self.dim)
        self.attention.build(tokens)
        self.layernorm_before.build(input_shape)
        self.intermediate.build(input_shape)
        self.output_dense.build(input_shape[:-1] + (int(self.dim * self.mlp_ratio),))
        self.layernorm_after.build(input_shape)

    def _drop_path(self, x, training):
        if not training or self.drop_path <= 0:
            return x
        keep = 1.0 - self.drop_path
        noise = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), dtype=x.dtype, seed=self.seed_generator)
        return x * tf.floor(keep + noise) / keep

    def call(self, x, training=False):
        h, w = self.resolution
        shortcut = x
        shifted = roll_2d(x, -self.shift_size)
        windows = window_partition(shifted, self.window_size)
        attended = self.attention(windows, attention_mask=None if self._mask is None else tf.constant(self._mask))
        shifted = window_reverse(attended, self.window_size, h, w)
        attended = roll_2d(shifted, self.shift_size)
        x = shortcut + self._drop_path(self.layernorm_before(attended), training)
        mlp = self.output_dense(gelu(self.intermediate(x), training))
        return x + self._drop_path(self.layernorm_after(mlp), training)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "resolution": list(self.resolution),
                "window_size": self.window_size, "shift_size": self.shift_size, "mlp_ratio": self.mlp_ratio,
                "pretrained_window_size": self.pretrained_window_size, "qkv_bias": self.qkv_bias,
                "epsilon": self.epsilon, "drop_path": self.drop_path}
