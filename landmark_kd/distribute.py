"""Training on several devices and machines with TensorFlow's own tf.distribute.

`--batch-size` is the *global* batch: each of R replicas gets batch/R, losses are per-replica means
scaled by 1/R (Keras does this inside `Loss.__call__`), and the gradient all-reduce sums them, so the step
equals one device's step on the same global batch. The learning rate is not changed automatically; when
you grow the global batch, the usual linear rule (lr x new/old batch) is a good start.
"""
from __future__ import annotations

import os
import sys
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


def global_batch(batch_size: int, replicas: int, strategy: str, faces: int | None = None) -> int:
    """The global batch to train with: `batch_size`, refused unless it splits evenly over the `replicas` (Keras
    cannot train on unequal parts: fit died deep in tf.distribute with an AddN shape error), and cut to the
    largest multiple of `replicas` that `faces` training faces fill, with a warning, when it is larger."""
    on = f"the {replicas} replicas of --strategy {strategy}"
    if batch_size % replicas:
        lower, upper = batch_size // replicas * replicas, (batch_size // replicas + 1) * replicas
        near = f"{lower} or {upper}" if lower else f"{upper}"
        raise ConfigError(f"--batch-size {batch_size} does not split evenly over {on}: pass a multiple of "
                          f"{replicas}, e.g. {near}")
    if faces is None or batch_size <= faces:
        return batch_size
    usable = faces // replicas * replicas
    if not usable:
        raise ConfigError(f"--batch-size {batch_size}: the {faces} training face(s) cannot give each of {on} "
                          "one face per step; train on more faces or with fewer replicas")
    print(f"warning: --batch-size {batch_size} is more than the {faces} training faces: batches of {usable} are used"
          + (f" (a multiple of {on})" if replicas > 1 else ""), file=sys.stderr)
    return usable


def check_xla(xla: bool, mixed_precision: str, gpus: int) -> None:
    """XLA's CPU compiler cannot compile these models' mixed-precision train step (it upcasts some float16 and
    bfloat16 convolutions to float32, then rejects their sum: "Seen floating point types of different precisions");
    on a machine without GPUs the pair is refused before any work instead of dying in the first step."""
    if xla and mixed_precision != "no" and not gpus:
        raise ConfigError(f"--xla with --mixed-precision {mixed_precision} does not compile on a CPU (XLA's CPU "
                          "compiler rejects the mixed-precision gradients): pass one of them")


def shared_overflow(grads: list) -> list:
    """Gradients that are non-finite on every replica when they are on any. Keras' LossScaleOptimizer decides to
    skip a step from the first replica's gradients alone (it takes them as all-reduced already, which they are
    not yet), so an overflow on another replica was applied, and mixed_float16 weights turned NaN."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    values = [g.values if isinstance(g, tf.IndexedSlices) else g for g in grads if g is not None]
    bad = tf.cast(tf.logical_not(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in values])), tf.float32)
    poison = tf.where(context.all_reduce(tf.distribute.ReduceOp.SUM, bad) > 0, float("nan"), 0.0)

    def poisoned(g):
        if isinstance(g, tf.IndexedSlices):
            return tf.IndexedSlices(g.values + tf.cast(poison, g.values.dtype), g.indices, g.dense_shape)
        return g + tf.cast(poison, g.dtype)

    return [None if g is None else poisoned(g) for g in grads]


def unscale(value: tf.Tensor) -> tf.Tensor:
    """Undo Keras' 1/replicas loss scaling, for reporting."""
    import tensorflow as tf

    return value * tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, value.dtype)
