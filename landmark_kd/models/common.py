"""Small layers shared by both backbones and the head, and the backbone base class."""
from __future__ import annotations

from typing import Any, Sequence, TypeVar

import keras
import tensorflow as tf


T = TypeVar("T")


def register(cls: type[T]) -> type[T]:
    """Registers `cls` under package landmark_kd, so a `.keras` file naming it loads with safe_mode=True."""
    return keras.saving.register_keras_serializable(package="landmark_kd")(cls)


@register
class ImagePreprocessing(keras.layers.Layer):
    """[0, 1] RGB in, the normalisation a backbone's pretrained weights expect out."""

    def __init__(self, mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 flip_channels: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.flip_channels = [float(v) for v in mean], [float(v) for v in std], bool(flip_channels)

    def call(self, x):
        x = (x - tf.constant(self.mean, x.dtype)) / tf.constant(self.std, x.dtype)
        if self.flip_channels:
            x = tf.reverse(x, axis=[-1])
        return x

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "flip_channels": self.flip_channels}


class Backbone(keras.Model):
    """A functional model built in a subclass's `__init__` from an architecture dataclass (keras-hub style).

    `get_config()` returns the constructor arguments, so a `.keras` file rebuilds the backbone by its class
    (with `safe_mode=True`, and saying what it is) instead of as an anonymous graph, and code that needs the
    architecture (the weight importer) reads `self.config` instead of probing layer names.
    """

    def __init__(self, inputs: keras.KerasTensor, outputs: list[keras.KerasTensor], config: Any,
                 dtype: str | keras.DTypePolicy | None = None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.config = config
        if dtype is not None:  # the layers got it already; kept so get_config() round-trips it
            self.dtype_policy = keras.dtype_policies.get(dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy), **self.config.to_dict()}


def roll_2d(x: tf.Tensor, shift: int) -> tf.Tensor:
    """torch.roll(x, (shift, shift), dims=(1, 2)) by slice + concat (no TFLite ROLL op needed)."""
    if shift == 0:
        return x
    h, w = x.shape[1], x.shape[2]
    sh, sw = shift % h, shift % w
    x = tf.concat([x[:, h - sh:], x[:, : h - sh]], axis=1)
    return tf.concat([x[:, :, w - sw:], x[:, :, : w - sw]], axis=2)
