"""MobileViT-v2 building blocks (Mehta & Rastegari, 2022) on NHWC maps.

Patches are handled as (B, N, P, C) "images" (N patches, P pixels per patch): unfolding is one
space-to-depth and a reshape, folding the reverse, so no transpose is needed at all; 1x1 projections are
1x1 convolutions (XNNPACK's fast path).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from ..common import register
from ..normalization import BatchNorm, GroupNormOneGroup


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """`value` rounded to a multiple of `divisor`, never more than 10% below it: MobileNet's channel rule, which
    the reference MobileViT-v2 applies to every width, so our channel counts match its checkpoints."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


@register
class ConvNormAct(keras.layers.Layer):
    """Conv (symmetric 'same' padding as in PyTorch, also at stride 2) + optional BatchNorm + optional SiLU."""

    def __init__(self, filters: int, kernel_size: int = 1, strides: int = 1, depthwise: bool = False,
                 use_bias: bool = False, use_norm: bool = True, activation: str | None = "swish", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = int(filters), int(kernel_size), int(strides)
        self.depthwise, self.use_bias, self.use_norm, self.activation = bool(depthwise), bool(use_bias), bool(use_norm), activation
        pad = (kernel_size - 1) // 2
        self.pad = keras.layers.ZeroPadding2D(pad, dtype=self.dtype_policy) if strides > 1 and pad else None
        padding = "valid" if self.pad is not None or pad == 0 else "same"
        if depthwise:
            self.conv = keras.layers.DepthwiseConv2D(kernel_size, strides, padding, use_bias=use_bias, dtype=self.dtype_policy, name="conv")
        else:
            self.conv = keras.layers.Conv2D(filters, kernel_size, strides, padding, use_bias=use_bias, dtype=self.dtype_policy, name="conv")
        self.bn = BatchNorm(epsilon=1e-5, momentum=0.9, synchronized=True, dtype=self.dtype_policy, name="bn") if use_norm else None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        shape = input_shape
        if self.pad is not None:
            shape = self.pad.compute_output_shape(shape)
        self.conv.build(shape)
        if self.bn is not None:
            self.bn.build(self.conv.compute_output_shape(shape))

    def call(self, x, training=False):
        if self.pad is not None:
            x = self.pad(x)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        if self.activation:
            x = keras.activations.get(self.activation)(x)
        return x

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "depthwise": self.depthwise, "use_bias": self.use_bias, "use_norm": self.use_norm, "activation": self.activation}


@register
class InvertedResidual(keras.layers.Layer):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear reduce, residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, strides: int = 1, expand_ratio: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels, self.strides, self.expand_ratio = int(in_channels), int(out_channels), int(strides), float(expand_ratio)
        hidden = make_divisible(int(round(in_channels * expand_ratio)), 8)
        self.expand_1x1 = ConvNormAct(hidden, 1, dtype=self.dtype_policy, name="expand_1x1")
        self.conv_3x3 = ConvNormAct(hidden, 3, strides, depthwise=True, dtype=self.dtype_policy, name="conv_3x3")
        self.reduce_1x1 = ConvNormAct(out_channels, 1, activation=None, dtype=self.dtype_policy, name="reduce_1x1")
        self.use_residual = strides == 1 and in_channels == out_channels

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.expand_1x1.build(input_shape)
        shape = input_shape[:-1] + (self.expand_1x1.filters,)
        self.conv_3x3.build(shape)
        h = None if shape[1] is None else shape[1] // self.strides
        w = None if shape[2] is None else shape[2] // self.strides
        self.reduce_1x1.build((shape[0], h, w, self.expand_1x1.filters))

    def call(self, x, training=False):
        y = self.reduce_1x1(self.conv_3x3(self.expand_1x1(x, training=training), training=training), training=training)
        return x + y if self.use_residual else y

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "out_channels": self.out_channels,
                "strides": self.strides, "expand_ratio": self.expand_ratio}


@register
class LinearAttentionTransformer(keras.layers.Layer):
    """One MobileViT-v2 transformer layer on (B, N, P, C): GroupNorm -> separable linear self-attention
    (softmax over the N patches of a context score) -> residual; GroupNorm -> 1x1 FFN -> residual."""

    def __init__(self, dim: int, ffn_dim: int, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.ffn_dim, self.epsilon = int(dim), int(ffn_dim), float(epsilon)
        self.layernorm_before = GroupNormOneGroup(epsilon, dtype=self.dtype_policy, name="layernorm_before")
        self.qkv_proj = keras.layers.Conv2D(1 + 2 * dim, 1, dtype=self.dtype_policy, name="qkv_proj")
        self.out_proj = keras.layers.Conv2D(dim, 1, dtype=self.dtype_policy, name="out_proj")
        self.layernorm_after = GroupNormOneGroup(epsilon, dtype=self.dtype_policy, name="layernorm_after")
        self.ffn_conv1 = keras.layers.Conv2D(ffn_dim, 1, activation="swish", dtype=self.dtype_policy, name="ffn_conv1")
        self.ffn_conv2 = keras.layers.Conv2D(dim, 1, dtype=self.dtype_policy, name="ffn_conv2")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for layer in (self.layernorm_before, self.qkv_proj, self.out_proj, self.layernorm_after, self.ffn_conv1):
            layer.build(input_shape)
        self.ffn_conv2.build(input_shape[:-1] + (self.ffn_dim,))

    def call(self, x):
        qkv = self.qkv_proj(self.layernorm_before(x))
        # one split (its gradient is one concat) rather than three slices (three zero-padded gradients)
        query, key, value = tf.split(qkv, [1, self.dim, self.dim], axis=-1)
        scores = tf.nn.softmax(query, axis=1)  # over patches; the SOFTMAX op has int8 kernels in every runtime
        context = tf.reduce_sum(key * scores, axis=1, keepdims=True)  # (B, 1, P, C)
        x = x + self.out_proj(tf.nn.relu(value) * context)
        return x + self.ffn_conv2(self.ffn_conv1(self.layernorm_after(x)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "ffn_dim": self.ffn_dim, "epsilon": self.epsilon}


@register
class MobileViTV2Block(keras.layers.Layer):
    """Stride-2 inverted residual, local depthwise conv + 1x1, global linear-attention transformer over
    2x2 patches, GroupNorm, fold, 1x1 projection (with BatchNorm)."""

    def __init__(self, in_channels: int, out_channels: int, attn_dim: int, num_blocks: int, ffn_multiplier: float = 2.0,
                 expand_ratio: float = 2.0, patch_size: int = 2, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels, self.attn_dim, self.num_blocks = int(in_channels), int(out_channels), int(attn_dim), int(num_blocks)
        self.ffn_multiplier, self.expand_ratio, self.patch_size, self.epsilon = float(ffn_multiplier), float(expand_ratio), int(patch_size), float(epsilon)
        self.downsample = InvertedResidual(in_channels, out_channels, 2, expand_ratio, dtype=self.dtype_policy, name="downsample")
        self.conv_kxk = ConvNormAct(out_channels, 3, depthwise=True, dtype=self.dtype_policy, name="conv_kxk")
        self.conv_1x1 = ConvNormAct(attn_dim, 1, use_norm=False, activation=None, dtype=self.dtype_policy, name="conv_1x1")
        ffn_dim = int(ffn_multiplier * attn_dim) // 16 * 16
        self.transformer = [LinearAttentionTransformer(attn_dim, ffn_dim, epsilon, dtype=self.dtype_policy, name=f"transformer_{i}") for i in range(num_blocks)]
        self.layernorm = GroupNormOneGroup(epsilon, dtype=self.dtype_policy, name="layernorm")
        self.conv_projection = ConvNormAct(out_channels, 1, activation=None, dtype=self.dtype_policy, name="conv_projection")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.downsample.build(input_shape)
        h, w = input_shape[1] // 2, input_shape[2] // 2
        self.conv_kxk.build((None, h, w, self.out_channels))
        self.conv_1x1.build((None, h, w, self.out_channels))
        p = self.patch_size
        patches = (None, (h // p) * (w // p), p * p, self.attn_dim)
        for layer in self.transformer:
            layer.build(patches)
        self.layernorm.build(patches)
        self.conv_projection.build((None, h, w, self.attn_dim))

    def call(self, x, training=False):
        x = self.downsample(x, training=training)
        x = self.conv_1x1(self.conv_kxk(x, training=training))
        h, w, p = x.shape[1], x.shape[2], self.patch_size
        if h % p or w % p:
            raise ValueError(f"feature map {h}x{w} is not divisible by patch size {p}")
        patches = tf.reshape(tf.nn.space_to_depth(x, p), [-1, (h // p) * (w // p), p * p, self.attn_dim])
        for layer in self.transformer:
            patches = layer(patches)
        patches = self.layernorm(patches)
        x = tf.nn.depth_to_space(tf.reshape(patches, [-1, h // p, w // p, p * p * self.attn_dim]), p)
        return self.conv_projection(x, training=training)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "out_channels": self.out_channels,
                "attn_dim": self.attn_dim, "num_blocks": self.num_blocks, "ffn_multiplier": self.ffn_multiplier,
                "expand_ratio": self.expand_ratio, "patch_size": self.patch_size, "epsilon": self.epsilon}
