"""STAR loss (Zhou et al., CVPR 2023, `starLoss_v2`): self-adaptive ambiguity reduction.

Each heatmap is normalised to a distribution; its mean is the prediction and its covariance gives the
principal axes. The error is split along the axes and each part divided by the axis' spread, plus an
eigenvalue penalty that shrinks the spread. The 2x2 eigen-decomposition is closed form (deterministic,
differentiable, and with the same eigenvector orientation, det = -1, as the LAPACK call the official
code uses; the official code reads rows of the eigenvector matrix, and so do we, to match it).
"""
from __future__ import annotations

import keras
import tensorflow as tf

DISTANCES = ("smoothl1", "l1", "l2")


def _distance(error: tf.Tensor, kind: str, scale: float = 0.01) -> tf.Tensor:
    sq = tf.square(error)
    if kind == "smoothl1":
        return tf.where(sq < scale * scale, 0.5 / scale * sq, tf.sqrt(tf.maximum(sq, 1e-6)) - 0.5 * scale)
    if kind == "l1":
        return tf.abs(error)
    return sq


def heatmap_moments(heatmaps: tf.Tensor,
                    epsilon: float = 1e-5) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """(B, H, W, N) -> means (B, N, 2) on the [-1, 1] grid and unbiased covariance entries (a, b, c)."""
    shape = tf.shape(heatmaps)
    h, w = shape[1], shape[2]
    total = tf.maximum(tf.reduce_sum(heatmaps, [1, 2], keepdims=True), 1e-6)
    hm = heatmaps / total
    xs = tf.cast(tf.range(w), hm.dtype) / tf.cast(w - 1, hm.dtype) * 2 - 1
    ys = tf.cast(tf.range(h), hm.dtype) / tf.cast(h - 1, hm.dtype) * 2 - 1
    xs = tf.reshape(xs, [1, 1, -1, 1])
    ys = tf.reshape(ys, [1, -1, 1, 1])
    mx = tf.reduce_sum(hm * xs, [1, 2], keepdims=True)
    my = tf.reduce_sum(hm * ys, [1, 2], keepdims=True)
    dx, dy = xs - mx, ys - my
    v1 = tf.reduce_sum(hm, [1, 2]) + epsilon
    v2 = tf.reduce_sum(tf.square(hm), [1, 2]) + epsilon
    denom = v1 - v2 / v1
    a = tf.reduce_sum(hm * dx * dx, [1, 2]) / denom
    b = tf.reduce_sum(hm * dx * dy, [1, 2]) / denom
    c = tf.reduce_sum(hm * dy * dy, [1, 2]) / denom
    means = tf.stack([tf.squeeze(mx, [1, 2]), tf.squeeze(my, [1, 2])], -1)
    return means, (a, b, c)


@keras.saving.register_keras_serializable(package="landmark_kd")
class STARLoss(keras.losses.Loss):
    """`loss(y_true=landmarks (B, N, 2) in [-1, 1], y_pred=heatmaps (B, H, W, N) >= 0)`."""

    def __init__(self, w: float = 1.0, dist: str = "smoothl1", epsilon: float = 1e-5, name: str = "star_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if dist not in DISTANCES:
            raise ValueError(f"dist must be one of {DISTANCES}, got {dist!r}")
        self.w, self.dist, self.epsilon = float(w), dist, float(epsilon)

    def call(self, y_true, y_pred):
        heatmaps = tf.cast(y_pred, tf.float32)
        landmarks = tf.cast(y_true, tf.float32)
        means, (a, b, c) = heatmap_moments(heatmaps, self.epsilon)
        half_trace = (a + c) / 2
        # +1e-12 keeps the gradient finite for isotropic (or empty) maps; its effect on values is < 1e-6.
        radius = tf.sqrt(tf.square((a - c) / 2) + tf.square(b) + 1e-12)
        evalues = (half_trace - radius, half_trace + radius)  # ascending, as eigh returns them
        diff = a - c
        diff = tf.where(tf.abs(diff) + tf.abs(b) < 1e-12, diff + 1e-12, diff)  # atan2(0, 0) has no gradient
        theta = 0.5 * tf.atan2(2 * b, diff)  # angle of the major axis
        cos, sin = tf.cos(theta), tf.sin(theta)
        error = landmarks - means
        # Rows of V = [v_minor, v_major] = [[-sin, cos], [cos, sin]].
        normal = -sin * error[..., 0] + cos * error[..., 1]
        tangent = cos * error[..., 0] + sin * error[..., 1]
        trans = (_distance(normal, self.dist) / tf.sqrt(evalues[0] + self.epsilon)
                 + _distance(tangent, self.dist) / tf.sqrt(evalues[1] + self.epsilon))
        eigen = tf.abs(evalues[0]) + tf.abs(evalues[1])
        return tf.reduce_mean(trans + self.w * eigen, axis=-1)

    def get_config(self):
        return {**super().get_config(), "w": self.w, "dist": self.dist, "epsilon": self.epsilon}
