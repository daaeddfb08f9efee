"""Adaptive Wing loss (Wang et al., ICCV 2019) with the dilated foreground weight map, as STAR uses it
for the AAM point and edge maps."""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="landmark_kd")
class AdaptiveWingLoss(keras.losses.Loss):
    """`loss(y_true=target maps (B, H, W, C) in [0, 1], y_pred=predicted maps)`, mean over all elements."""

    def __init__(self, omega: float = 14.0, theta: float = 0.5, epsilon: float = 1.0, alpha: float = 2.1,
                 use_weight_map: bool = True, weight: float = 10.0, threshold: float = 0.2,
                 name: str = "adaptive_wing_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.omega, self.theta, self.epsilon, self.alpha = float(omega), float(theta), float(epsilon), float(alpha)
        self.use_weight_map, self.weight, self.threshold = bool(use_weight_map), float(weight), float(threshold)

    def call(self, y_true, y_pred):
        target = tf.cast(y_true, tf.float32)
        pred = tf.cast(y_pred, tf.float32)
        delta = tf.abs(pred - target)
        power = self.alpha - target
        ratio = self.theta / self.epsilon
        a = self.omega / (1 + tf.pow(ratio, power)) * power * tf.pow(ratio, power - 1) / self.epsilon
        c = self.theta * a - self.omega * tf.math.log1p(tf.pow(ratio, power))
        loss = tf.where(delta < self.theta, self.omega * tf.math.log1p(tf.pow(delta / self.epsilon, power)), a * delta - c)
        if self.use_weight_map:
            dilated = tf.nn.max_pool2d(target, 3, 1, "SAME")
            loss = loss * (self.weight * tf.cast(dilated >= self.threshold, tf.float32) + 1)
        return tf.reduce_mean(loss, axis=[1, 2, 3])

    def get_config(self):
        return {**super().get_config(), "omega": self.omega, "theta": self.theta, "epsilon": self.epsilon,
                "alpha": self.alpha, "use_weight_map": self.use_weight_map, "weight": self.weight,
                "threshold": self.threshold}
