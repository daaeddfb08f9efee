"""SwinV2 window attention: scaled cosine attention with a learnable, clamped logit scale and the
log-spaced continuous relative position bias (a small MLP over relative coordinates)."""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from ..common import register


def relative_coords_table(window: int, pretrained_window: int = 0) -> np.ndarray:
    """((2w-1)^2, 2) log-spaced relative (dy, dx); normalised by the pretraining window when given."""
    coords = np.arange(-(window - 1), window, dtype=np.float32)
    table = np.stack(np.meshgrid(coords, coords, indexing="ij"), -1)  # (2w-1, 2w-1, 2): (dy, dx)
    table /= (pretrained_window - 1) if pretrained_window > 0 else max(window - 1, 1)
    table *= 8
    table = np.sign(table) * np.log2(np.abs(table) + 1.0) / math.log2(8)
    return table.reshape(-1, 2).astype(np.float32)


def relative_position_index(window: int) -> np.ndarray:
    """For each (query, key) pair of a `window` x `window` window, flattened, the index of their offset in the
    (2w - 1)^2 table of relative positions: the order SwinV2 checkpoints store their bias table in."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return (rel[..., 0] * (2 * window - 1) + rel[..., 1]).reshape(-1).astype(np.int32)


def expand_mask(mask: np.ndarray, heads: int) -> np.ndarray:
    """(nW, T, T) -> (nW, heads * T, T), the layout `SwinV2WindowAttention` adds in 4-D."""
    num_windows, t, _ = mask.shape
    return np.repeat(mask[:, None], heads, axis=1).reshape(num_windows, heads * t, t)


@register
class SwinV2WindowAttention(keras.layers.Layer):
    """Input (windows, T, C) tokens with T = window^2; optional additive mask (num_windows, heads * T, T),
    see `expand_mask`."""

    def __init__(self, dim: int, num_heads: int, window_size: int, pretrained_window_size: int = 0,
                 qkv_bias: bool = True, cpb_hidden: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.window_size = int(dim), int(num_heads), int(window_size)
        self.pretrained_window_size, self.qkv_bias, self.cpb_hidden = int(pretrained_window_size), bool(qkv_bias), int(cpb_hidden)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.query = keras.layers.Dense(dim, use_bias=qkv_bias, dtype=self.dtype_policy, name="query")
        self.key = keras.layers.Dense(dim, use_bias=False, dtype=self.dtype_policy, name="key")
        self.value = keras.layers.Dense(dim, use_bias=qkv_bias, dtype=self.dtype_policy, name="value")
        self.cpb_fc1 = keras.layers.Dense(cpb_hidden, activation="relu", dtype=self.dtype_policy, name="cpb_fc1")
        self.cpb_fc2 = keras.layers.Dense(num_heads, use_bias=False, dtype=self.dtype_policy, name="cpb_fc2")
        self.proj = keras.layers.Dense(dim, dtype=self.dtype_policy, name="proj")
        self._table = relative_coords_table(self.window_size, self.pretrained_window_size)
        self._index = relative_position_index(self.window_size)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.logit_scale = self.add_weight(
            name="logit_scale", shape=(self.num_heads, 1, 1),
            initializer=keras.initializers.Constant(math.log(10.0)))
        for layer, shape in ((self.query, input_shape), (self.key, input_shape), (self.value, input_shape),
                             (self.proj, input_shape), (self.cpb_fc1, (None, 2)), (self.cpb_fc2, (None, self.cpb_hidden))):
            layer.build(shape)

    def position_bias(self) -> tf.Tensor:
        """(heads, T, T) bias = 16 * sigmoid(MLP(table)[index])."""
        t = self.window_size ** 2
        table = self.cpb_fc2(self.cpb_fc1(tf.constant(self._table)))  # ((2w-1)^2, heads)
        bias = tf.gather(table, tf.constant(self._index))  # (T*T, heads)
        bias = tf.transpose(tf.reshape(bias, [t, t, self.num_heads]), [2, 0, 1])
        return 16.0 * tf.sigmoid(bias)

    def call(self, x, attention_mask=None):
        heads, t = self.num_heads, self.window_size ** 2
        head_dim = self.dim // heads

        def split(tensor):
            return tf.transpose(tf.reshape(tensor, [-1, t, heads, head_dim]), [0, 2, 1, 3])

        def unit(tensor):  # F.normalize(dim=-1, eps=1e-12)
            return tensor * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(tensor), -1, keepdims=True), 1e-24))

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = tf.matmul(unit(q), unit(k), transpose_b=True)  # (windows, heads, T, T)
        scale = tf.exp(tf.minimum(self.logit_scale, math.log(100.0)))
        scores = scores * tf.cast(scale, scores.dtype) + tf.cast(self.position_bias(), scores.dtype)
        if attention_mask is not None:
            num_windows = attention_mask.shape[0]
            # 4-D broadcast (batch, windows, heads*T, T): keeps every op within TFLite's 4-D kernels.
            scores = tf.reshape(scores, [-1, num_windows, heads * t, t])
            scores = scores + tf.cast(attention_mask, scores.dtype)
            scores = tf.reshape(scores, [-1, heads, t, t])
        probs = tf.nn.softmax(scores, axis=-1)
        context = tf.matmul(probs, v)  # (windows, heads, T, hd)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, t, self.dim])
        return self.proj(context)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "window_size": self.window_size,
                "pretrained_window_size": self.pretrained_window_size, "qkv_bias": self.qkv_bias,
                "cpb_hidden": self.cpb_hidden}
