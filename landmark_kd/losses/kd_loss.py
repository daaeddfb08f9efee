"""L_KD: distillation between teacher and student heatmaps (arXiv 2404.06029).

`l2` is the paper's form: per image, the sum over landmarks of the L2 norm of the heatmap difference;
`mse` is the mean squared difference. With `normalize` (default) both maps are first scaled to sum 1,
the distributions the STAR decoder reads, so the student copies the teacher's shape, not its scale.
"""
from __future__ import annotations

import keras
import tensorflow as tf

MODES = ("l2", "mse")


@keras.saving.register_keras_serializable(package="landmark_kd")
class HeatmapDistillationLoss(keras.losses.Loss):
    """`loss(y_true=teacher heatmaps, y_pred=student heatmaps)`, both (B, H, W, N)."""

    def __init__(self, mode: str = "l2", normalize: bool = True, name: str = "kd_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.normalize = mode, bool(normalize)

    def call(self, y_true, y_pred):
        teacher = tf.cast(y_true, tf.float32)
        student = tf.cast(y_pred, tf.float32)
        if teacher.shape[1:3] != student.shape[1:3]:
            teacher = tf.image.resize(teacher, tf.shape(student)[1:3], method="bilinear")
        if self.normalize:
            teacher = teacher / tf.maximum(tf.reduce_sum(teacher, [1, 2], keepdims=True), 1e-6)
            student = student / tf.maximum(tf.reduce_sum(student, [1, 2], keepdims=True), 1e-6)
        sq = tf.square(student - teacher)
        if self.mode == "mse":
            return tf.reduce_mean(sq, axis=[1, 2, 3])
        return tf.reduce_sum(tf.sqrt(tf.reduce_sum(sq, axis=[1, 2]) + 1e-12), axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "normalize": self.normalize}
