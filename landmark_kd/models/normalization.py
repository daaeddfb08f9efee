"""Normalisation layers and GELU with training-time fast paths.

TensorFlow differentiates Keras' LayerNormalization, BatchNormalization and exact GELU op by op: a dozen
element-wise kernels (and Tile-ing reductions) per layer in the backward pass, where PyTorch runs one fused
kernel. On a CPU that made our train step slower than the PyTorch reference (`benchmarks/train_throughput.py`).
Here the training path uses closed-form gradients (`tf.custom_gradient`) and TensorFlow's fused batch-norm
kernel; inference runs the parent's plain ops, so exported TFLite graphs are unchanged.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from .common import register


def _standardize(x: tf.Tensor, axes: list[int], epsilon: float) -> tuple[tf.Tensor, tf.Tensor]:
    """(x - mean) * rstd over `axes`, and rstd: the plain ops both paths share (and TFLite converts)."""
    mean = tf.reduce_mean(x, axes, keepdims=True)
    centred = x - mean
    rstd = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axes, keepdims=True) + epsilon)
    return centred * rstd, rstd


def normalize_affine(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, axes: list[int], epsilon: float) -> tf.Tensor:
    """(x - mean) / sqrt(var + eps) * gamma + beta, statistics over `axes`, affine per last-axis channel, with a
    fused closed-form gradient. float32 inside."""
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    channel_axes = list(range(len(x.shape) - 1))

    @tf.custom_gradient
    def forward(x, gamma, beta):
        xhat, rstd = _standardize(x, axes, epsilon)

        def grad(dy):
            dy_xhat = dy * xhat
            dxhat = dy * gamma
            dx = rstd * (dxhat - tf.reduce_mean(dxhat, axes, keepdims=True)
                         - xhat * tf.reduce_mean(dy_xhat * gamma, axes, keepdims=True))
            return dx, tf.reduce_sum(dy_xhat, channel_axes), tf.reduce_sum(dy, channel_axes)

        return xhat * gamma + beta, grad

    return tf.cast(forward(x, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32)), dtype)


@tf.custom_gradient
def _gelu_exact(x):
    cdf = 0.5 * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))

    def grad(dy):
        return dy * (cdf + x * tf.exp(-0.5 * tf.square(x)) * (1.0 / math.sqrt(2.0 * math.pi)))

    return x * cdf, grad


def gelu(x: tf.Tensor, training: bool = False) -> tf.Tensor:
    """Exact (erf) GELU, as SwinV2 uses; the training path has a two-op gradient instead of TF's eight."""
    return _gelu_exact(x) if training else tf.nn.gelu(x, approximate=False)


@register
class LayerNorm(keras.layers.LayerNormalization):
    """keras LayerNormalization (same weights and config) whose training step uses `normalize_affine`."""

    def call(self, inputs, training=None):
        axes = sorted(a % len(inputs.shape) for a in (self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]))
        if training and self.scale and self.center and not self.rms_scaling and axes == [len(inputs.shape) - 1]:
            return tf.cast(normalize_affine(inputs, self.gamma, self.beta, axes, self.epsilon), self.compute_dtype)
        return super().call(inputs)


@register
class BatchNorm(keras.layers.BatchNormalization):
    """keras BatchNormalization (same weights and config) that trains with TensorFlow's fused kernel
    (FusedBatchNormV3 and its gradient) on one replica. With several replicas and `synchronized`, it keeps
    Keras' cross-replica statistics."""

    def call(self, inputs, training=None, mask=None):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        fast = (training and self.trainable and mask is None and len(inputs.shape) == 4
                and self.axis in (-1, 3) and not self.renorm and inputs.dtype == tf.float32
                and (replicas == 1 or not self.synchronized))
        if not fast:
            return super().call(inputs, training=training, mask=mask)
        gamma = self.gamma if self.scale else tf.ones(inputs.shape[-1])
        beta = self.beta if self.center else tf.zeros(inputs.shape[-1])
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, is_training=True, data_format="NHWC")
        # The fused kernel reports the unbiased (n - 1) variance; Keras' moving variance uses the biased one.
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * (n - 1.0) / tf.maximum(n, 2.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


@register
class GroupNormOneGroup(keras.layers.Layer):
    """GroupNorm with a single group (MobileViT-v2): normalise over all of H, W and C per sample, affine per
    channel. Inference is written out (mean/variance/rsqrt) so it converts to plain TFLite builtins."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = tuple(input_shape)[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x, training=None):
        if training:
            return normalize_affine(x, self.gamma, self.beta, [1, 2, 3], self.epsilon)
        return _standardize(x, [1, 2, 3], self.epsilon)[0] * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
