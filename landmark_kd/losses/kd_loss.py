"""L_KD: distillation between teacher and student heatmaps (arXiv 2404.06029).

`l2` is the paper's form: per image, the sum over landmarks of the L2 norm of the heatmap difference;
`mse` is the mean squared difference. With `normalize` (default) both maps are first scaled to sum 1,
the distributions the STAR decoder reads, so the student copies the teacher's shape, not its scale.
`star` distils coordinates instead of shapes: L_STAR's error term (no eigenvalue penalty: the ground-truth
L_STAR already has one) between the student's heatmaps and the landmarks the teacher's heatmaps decode to,
so the teacher is read where the decoder reads it, at each map's mean, and not mostly at its peak.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from .star_loss import STARLoss, heatmap_moments

MODES = ("l2", "mse", "star")


@keras.saving.register_keras_serializable(package="landmark_kd")
class HeatmapDistillationLoss(keras.losses.Loss):
    """`loss(y_true=teacher heatmaps, y_pred=student heatmaps)`, both (B, H, W, N)."""

    def __init__(self, mode: str = "l2", normalize: bool = True, star_dist: str = "smoothl1", name: str = "kd_loss",
                 **kwargs):
        """`star_dist`: the `star` mode's distance, the ground-truth L_STAR's (`TrainConfig.star_dist`)."""
        super().__init__(name=name, **kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.normalize, self.star_dist = mode, bool(normalize), star_dist
        self._star = STARLoss(w=0.0, dist=star_dist) if mode == "star" else None

    def call(self, y_true, y_pred):
        teacher = tf.stop_gradient(tf.cast(y_true, tf.float32))
        student = tf.cast(y_pred, tf.float32)
        if teacher.shape[1:3] != student.shape[1:3]:  # both maps cover the same crop, cell centres half a cell in
            teacher = tf.image.resize(teacher, tf.shape(student)[1:3], method="bilinear")
        if self._star is not None:
            return self._star(heatmap_moments(teacher)[0], student)
        if self.normalize:
            teacher = teacher / tf.maximum(tf.reduce_sum(teacher, [1, 2], keepdims=True), 1e-6)
            student = student / tf.maximum(tf.reduce_sum(student, [1, 2], keepdims=True), 1e-6)
        sq = tf.square(student - teacher)
        if self.mode == "mse":
            return tf.reduce_mean(sq, axis=[1, 2, 3])
        return tf.reduce_sum(tf.sqrt(tf.reduce_sum(sq, axis=[1, 2]) + 1e-12), axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "normalize": self.normalize, "star_dist": self.star_dist}
