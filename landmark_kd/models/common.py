"""Small layers shared by both backbones and the head."""
from __future__ import annotations

import keras
import tensorflow as tf


def register(cls):
    return keras.saving.register_keras_serializable(package="landmark_kd")(cls)


@register
class GroupNormOneGroup(keras.layers.Layer):
    """GroupNorm with a single group: normalise over all of H, W and C per sample, affine per channel.

    Written out (mean/variance/rsqrt) so it converts to plain TFLite builtins.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        centred = x - mean
        var = tf.reduce_mean(tf.square(centred), axis=[1, 2, 3], keepdims=True)
        return centred * tf.math.rsqrt(var + self.epsilon) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class ImagePreprocessing(keras.layers.Layer):
    """[0, 1] RGB in, the normalisation a backbone's pretrained weights expect out."""

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), flip_channels: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.flip_channels = [float(v) for v in mean], [float(v) for v in std], bool(flip_channels)

    def call(self, x):
        x = (x - tf.constant(self.mean, x.dtype)) / tf.constant(self.std, x.dtype)
        if self.flip_channels:
            x = tf.reverse(x, axis=[-1])
        return x

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "flip_channels": self.flip_channels}


def roll_2d(x: tf.Tensor, shift: int) -> tf.Tensor:
    """torch.roll(x, (shift, shift), dims=(1, 2)) by slice + concat (no TFLite ROLL op needed)."""
    if shift == 0:
        return x
    h, w = x.shape[1], x.shape[2]
    sh, sw = shift % h, shift % w
    x = tf.concat([x[:, h - sh:], x[:, : h - sh]], axis=1)
    return tf.concat([x[:, :, w - sw:], x[:, :, : w - sw]], axis=2)
