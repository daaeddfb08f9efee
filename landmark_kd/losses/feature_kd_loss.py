"""Feature-level L_KD: channel-wise distillation (CWD, Shu et al., ICCV 2021) of the head's last features.

Heatmap L_KD hands the student one map per landmark; the features those maps are read from hold more (every
channel of the teacher's stride-4 feature map). CWD turns each channel into a distribution over positions (a
softmax over H x W at temperature `tau`) and asks the student's channel to place its mass where the teacher's
does (KL divergence, times tau^2 so its gradients keep their size as tau changes, averaged over channels). The
student's channels pass through a trained 1x1 projection to the teacher's count first (the trainer owns it; it is
not part of the shipped student).
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="landmark_kd")
class ChannelDistillationLoss(keras.losses.Loss):
    """`loss(y_true=teacher features, y_pred=projected student features)`, both (B, H, W, C): per image, the mean
    over channels of tau^2 * KL(teacher || student) between their spatial softmaxes. A teacher map of another
    size is resized to the student's first (both cover the same crop)."""

    def __init__(self, tau: float = 4.0, name: str = "feature_kd_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        self.tau = float(tau)

    def call(self, y_true, y_pred):
        teacher = tf.stop_gradient(tf.cast(y_true, tf.float32))
        student = tf.cast(y_pred, tf.float32)
        if teacher.shape[-1] != student.shape[-1]:
            raise ValueError(f"teacher features have {teacher.shape[-1]} channels, the student's {student.shape[-1]}: "
                             "project the student's first")
        if teacher.shape[1:3] != student.shape[1:3]:
            teacher = tf.image.resize(teacher, tf.shape(student)[1:3], method="bilinear")
        h, w, c = student.shape[1], student.shape[2], student.shape[3]
        t_logits = tf.reshape(teacher, [-1, h * w, c]) / self.tau
        s_logits = tf.reshape(student, [-1, h * w, c]) / self.tau
        t_log = tf.nn.log_softmax(t_logits, axis=1)
        s_log = tf.nn.log_softmax(s_logits, axis=1)
        kl = tf.reduce_sum(tf.exp(t_log) * (t_log - s_log), axis=1)  # (B, C)
        return self.tau ** 2 * tf.reduce_mean(kl, axis=-1)

    def get_config(self):
        return {**super().get_config(), "tau": self.tau}
