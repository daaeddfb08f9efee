"""The training fast paths (closed-form LayerNorm/GroupNorm/GELU gradients, fused BatchNorm) give the same
outputs, gradients and moving statistics as the plain Keras / TF ops they replace."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from landmark_kd.models.normalization import BatchNorm, GroupNormOneGroup, LayerNorm, gelu


def _value_and_grads(fn, x, variables):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        # a weighted sum, so every output element gets its own upstream gradient
        loss = tf.reduce_sum(y * tf.reshape(tf.sin(tf.range(tf.size(y), dtype=tf.float32)), y.shape))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x] + variables)]


def _random(shape, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(1.0, 2.0, shape).astype(np.float32))


def _assert_same(a, b, atol=2e-5):
    (ya, ga), (yb, gb) = a, b
    np.testing.assert_allclose(ya, yb, atol=atol, rtol=1e-4)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, atol=atol, rtol=1e-4)


def test_layer_norm_training_path_matches_keras():
    x = _random((2, 5, 7, 16))
    fast, plain = LayerNorm(epsilon=1e-5), keras.layers.LayerNormalization(epsilon=1e-5)
    for layer in (fast, plain):
        layer.build(x.shape)
    plain.set_weights([w + 0.1 * np.arange(w.size).reshape(w.shape) for w in fast.get_weights()])
    fast.set_weights(plain.get_weights())
    _assert_same(_value_and_grads(lambda t: fast(t, training=True), x, fast.trainable_variables),
                 _value_and_grads(plain, x, plain.trainable_variables))
    np.testing.assert_allclose(fast(x, training=False).numpy(), plain(x).numpy(), atol=1e-6)


def test_group_norm_training_path_matches_its_inference_formula():
    x = _random((3, 4, 4, 8), seed=1)
    layer = GroupNormOneGroup(1e-5)
    layer.build(x.shape)
    layer.set_weights([np.linspace(0.5, 2, 8, dtype=np.float32), np.linspace(-1, 1, 8, dtype=np.float32)])
    _assert_same(_value_and_grads(lambda t: layer(t, training=True), x, layer.trainable_variables),
                 _value_and_grads(lambda t: layer(t, training=False), x, layer.trainable_variables))


def test_gelu_gradient_matches_tf():
    x = _random((4, 33), seed=2)
    _assert_same(_value_and_grads(lambda t: gelu(t, training=True), x, []),
                 _value_and_grads(lambda t: tf.nn.gelu(t, approximate=False), x, []))


@pytest.mark.parametrize("synchronized", [False, True])
def test_fused_batch_norm_matches_keras_including_moving_statistics(synchronized):
    x = _random((4, 6, 6, 8), seed=3)
    fast = BatchNorm(epsilon=1e-5, momentum=0.9, synchronized=synchronized)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, synchronized=synchronized)
    for layer in (fast, plain):
        layer.build(x.shape)
    weights = [np.linspace(0.5, 2, 8, dtype=np.float32), np.linspace(-1, 1, 8, dtype=np.float32),
               np.zeros(8, np.float32), np.ones(8, np.float32)]
    fast.set_weights(weights)
    plain.set_weights(weights)
    _assert_same(_value_and_grads(lambda t: fast(t, training=True), x, fast.trainable_variables),
                 _value_and_grads(lambda t: plain(t, training=True), x, plain.trainable_variables), atol=5e-5)
    np.testing.assert_allclose(fast.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(fast.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5)
    assert not np.allclose(fast.moving_variance.numpy(), 1.0)  # the statistics did move
    np.testing.assert_allclose(fast(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-5)
