"""Heatmap head with the Anisotropic Attention Module (ADNet / STAR).

Multi-scale features are fused at stride 4, then three 1x1 outputs predict landmark heatmaps (N), point
maps (N) and edge maps (E). The fused heatmaps are heatmaps * sigmoid(points) * E2H(sigmoid(edges)),
where E2H sends each edge map to the points on it (and a constant 1 to points no edge covers).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from ..schemes import LandmarkScheme
from .common import register
from .normalization import BatchNorm


@dataclass
class HeadConfig:
    """The AAM head's size: the teacher's full head by default; `light` is the student's cheaper one."""
    dim: int = 128  # fused feature channels
    num_convs: int = 2  # 3x3 refinement blocks at stride 4
    light: bool = False  # depthwise-separable refinement (student)

    def to_dict(self) -> dict:
        return asdict(self)


@register
class EdgeToHeatmap(keras.layers.Layer):
    """STAR's E2H transform: a fixed 1x1 map from E edge maps to N point weights. Carries the scheme,
    so a saved model knows its landmark layout."""

    def __init__(self, scheme: dict, **kwargs):
        kwargs["trainable"] = False  # fixed weights, nothing to learn
        super().__init__(**kwargs)
        self.scheme = LandmarkScheme.from_config(scheme) if isinstance(scheme, dict) else scheme
        matrix, bias = self.scheme.edge_to_point_matrix()
        self._kernel = matrix.T[None, None]  # (1, 1, E, N)
        self._bias = bias

    def call(self, edges):
        out = tf.nn.conv2d(edges, tf.constant(self._kernel, edges.dtype), 1, "VALID")
        return out + tf.constant(self._bias, edges.dtype)

    def get_config(self):
        return {**super().get_config(), "scheme": self.scheme.get_config()}


@register
class SpatialSoftmax(keras.layers.Layer):
    """Softmax over H x W per channel: positive everywhere (no dead maps, unlike ReLU) yet with a background
    that falls to ~0, which normalised (soft-argmax) decoding and L_STAR need. Uses the SOFTMAX op, whose
    int8 kernel every target runtime has (an int8 EXP would need tflite-runtime 2.12)."""

    def call(self, logits):
        logits = tf.cast(logits, tf.float32)
        h, w, n = logits.shape[1], logits.shape[2], logits.shape[3]
        flat = tf.nn.softmax(tf.reshape(logits, [-1, h * w, n]), axis=1)
        return tf.reshape(flat, [-1, h, w, n])


@register
class SoftArgmax(keras.layers.Layer):
    """(B, H, W, N) non-negative maps -> (B, N, 2) input-pixel (x, y): the normalised weighted mean, the
    quantity L_STAR trains, mapped from the heatmap grid to input pixels."""

    def __init__(self, stride: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, heatmaps):
        h, w = heatmaps.shape[1], heatmaps.shape[2]
        total = tf.maximum(tf.reduce_sum(heatmaps, axis=[1, 2]), 1e-12)  # (B, N)
        xs = tf.constant(np.arange(w, dtype=np.float32).reshape(1, w, 1), heatmaps.dtype)
        ys = tf.constant(np.arange(h, dtype=np.float32).reshape(1, h, 1), heatmaps.dtype)
        x = tf.reduce_sum(tf.reduce_sum(heatmaps, axis=1) * xs, axis=1) / total
        y = tf.reduce_sum(tf.reduce_sum(heatmaps, axis=2) * ys, axis=1) / total
        return tf.stack([x, y], axis=-1) * self.stride + (self.stride - 1) / 2.0

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


def _conv_bn_relu(x, filters: int, light: bool, name: str):
    if light:
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = BatchNorm(synchronized=True, name=f"{name}_dw_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_dw_relu")(x)
        x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    else:
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = BatchNorm(synchronized=True, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def aam_head(features: list, scheme: LandmarkScheme, config: HeadConfig, stride: int = 4) -> dict:
    """Features ordered from stride `stride` upward; returns the model's output tensors by name."""
    base = features[0].shape[1]
    fused = None
    for i, feature in enumerate(features):
        y = keras.layers.Conv2D(config.dim, 1, name=f"head_lateral{i}")(feature)
        factor = base // feature.shape[1]
        if factor > 1:
            y = keras.layers.UpSampling2D(factor, interpolation="bilinear", name=f"head_up{i}")(y)
        fused = y if fused is None else keras.layers.Add(name=f"head_add{i}")([fused, y])
    x = fused
    for i in range(config.num_convs):
        x = _conv_bn_relu(x, config.dim, config.light, f"head_refine{i}")
    n, e = scheme.num_points, max(scheme.num_edges, 1)
    # The decode tail runs in float32 under mixed precision: bf16 coordinates would be ~0.5 px coarse.
    heat = SpatialSoftmax(dtype="float32", name="head_heatmaps_softmax")(keras.layers.Conv2D(n, 1, name="head_heatmaps")(x))
    points = keras.layers.Conv2D(n, 1, activation="sigmoid", name="point_maps")(x)
    edges = keras.layers.Conv2D(e, 1, activation="sigmoid", name="edge_maps")(x)
    attention = EdgeToHeatmap(scheme.get_config(), dtype="float32", name="edge_to_heatmap")(edges)
    heatmaps = keras.layers.Multiply(dtype="float32", name="heatmaps")([heat, points, attention])
    landmarks = SoftArgmax(stride, dtype="float32", name="landmarks")(heatmaps)
    return {"heatmaps": heatmaps, "point_maps": points, "edge_maps": edges, "landmarks": landmarks}
