import numpy as np
import tensorflow as tf

from landmark_kd.crop import box_crop_matrix, crop_matrix


def test_numpy_and_tensorflow_give_the_same_matrix(rng):
    for _ in range(5):
        cx, cy, side = rng.uniform(50, 150), rng.uniform(50, 150), rng.uniform(40, 120)
        angle, scale, tx, ty, flip = rng.uniform(-1, 1), rng.uniform(0.8, 1.2), rng.uniform(-5, 5), rng.uniform(-5, 5), bool(rng.integers(2))
        ours = crop_matrix(cx, cy, side, 64, angle, scale, tx, ty, flip)
        theirs = crop_matrix(tf.constant(cx, tf.float32), tf.constant(cy, tf.float32), tf.constant(side, tf.float32), 64,
                             tf.constant(angle, tf.float32), scale, tx, ty, tf.constant(flip), xp=tf).numpy()
        assert np.allclose(ours, theirs, atol=1e-4)


def test_box_crop_centres_the_box_with_the_margin():
    m = box_crop_matrix([10, 20, 110, 100], 64, margin=0.25)
    centre = m[:, :2] @ np.array([60.0, 60.0]) + m[:, 2]
    assert np.allclose(centre, [31.5, 31.5])
    assert np.isclose(m[0, 0], 64 / 125)  # the longer side (100) grown by 25% fills the crop
    flipped = crop_matrix(60.0, 60.0, 125.0, 64, flip=True)
    assert np.isclose(flipped[0, 0], -64 / 125) and np.allclose(flipped[1], m[1])
