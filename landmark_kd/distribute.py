"""Training on several devices and machines with TensorFlow's own tf.distribute.

`--batch-size` is the *global* batch: each of R replicas gets batch/R, losses are per-replica means
scaled by 1/R (Keras does this inside `Loss.__call__`), and the gradient all-reduce sums them, so the step
equals one device's step on the same global batch. The learning rate is not changed automatically; when
you grow the global batch, the usual linear rule (lr x new/old batch) is a good start.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:  # TensorFlow loads when a strategy is made, not when the CLIs import this
    import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multiworker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The tf.distribute strategy `name` (auto, one_device, mirrored, multiworker) for this machine. Make it before
    any other TensorFlow call of the process: MultiWorkerMirroredStrategy refuses a runtime already started."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose from {STRATEGIES}")
    if name == "multiworker":  # first: collective ops are set up before anything starts TensorFlow's runtime
        if "TF_CONFIG" not in os.environ:  # (listing the devices below would start it)
            raise ConfigError("--strategy multiworker needs TF_CONFIG describing the cluster (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) <= 1:
            return tf.distribute.get_strategy()  # TensorFlow's default: plain single-device training
        name = "mirrored"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)  # e.g. logical CPUs in tests
    raise AssertionError(name)  # every name in STRATEGIES is handled above


def unscale(value: tf.Tensor) -> tf.Tensor:
    """Undo Keras' 1/replicas loss scaling, for reporting."""
    import tensorflow as tf

    return value * tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, value.dtype)
