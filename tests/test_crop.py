import cv2
import numpy as np
import tensorflow as tf

from conftest import posed_face
from landmark_kd.crop import box_crop_matrix, crop_matrix, eye_line_roll, upright_box, warp_square
from landmark_kd.face_chips import chip_matrix


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


def test_upright_box_frames_turned_points_in_their_own_frame():
    """A 40 x 20 rectangle of points turned by 60 degrees: its eye line gives the turn back, and the box is the
    rectangle's own, set level about its centre (what the crop, turned by that roll, then frames)."""
    corners = np.array([[-20, -10], [20, -10], [20, 10], [-20, 10]], np.float64)
    angle = np.radians(60)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = corners @ turn.T + [100.0, 50.0]
    roll = eye_line_roll(points, (0, 1))
    assert np.isclose(roll, angle)
    assert np.allclose(upright_box(points, roll), [80, 40, 120, 60], atol=1e-4)
    assert np.allclose(upright_box(corners + [100.0, 50.0]), [80, 40, 120, 60])
    # unturned, the turned rectangle's axis-aligned box is larger: the roll is what keeps the face's framing
    x0, y0, x1, y1 = upright_box(points)
    assert max(x1 - x0, y1 - y0) > 44  # 40 sin 60 + 20 cos 60 = 44.6 against the rectangle's 40
    assert np.isclose(eye_line_roll(points[[1, 0]], (0, 1)), angle - np.pi)  # the corners' order sets the sense


def test_large_faces_are_shrunk_by_area_so_fine_detail_does_not_alias():
    """A 1-pixel checkerboard face 15 times the square's size (a face chip here; a model's crop is the same
    call) averages to grey (bilinear sampling alone keeps picking black or white pixels); on a smooth picture
    the shrunk path gives the plain warp."""
    points = posed_face(0.0, at=(0.0, 0.0, 150.0), size=(1400, 1400))
    m = chip_matrix(points, "68", 112)
    assert np.sqrt(np.linalg.det(m[:, :2])) < 0.1  # the face ~15x the chip's size
    checker = ((np.indices((1400, 1400)).sum(0) % 2) * 255).astype(np.uint8)
    plain = cv2.warpAffine(checker, m, (112, 112), flags=cv2.INTER_LINEAR)
    shrunk = warp_square(checker, m, 112)
    covered = cv2.warpAffine(np.ones_like(checker), m, (112, 112))  # chip pixels from the image, edges left out:
    inside = cv2.erode(covered, np.ones((5, 5)), borderType=cv2.BORDER_CONSTANT, borderValue=0) == 1
    assert inside.mean() > 0.5
    assert plain[inside].std() > 40 and shrunk[inside].std() < 3, (plain[inside].std(), shrunk[inside].std())
    ys, xs = np.indices((1400, 1400))
    smooth = np.dstack([128 + 100 * np.sin(xs / 150.0), 128 + 100 * np.cos(ys / 170.0), (xs + ys) / 11.0])
    smooth = smooth.astype(np.float32)
    np.testing.assert_allclose(warp_square(smooth, m, 112)[inside],
                               cv2.warpAffine(smooth, m, (112, 112), flags=cv2.INTER_LINEAR)[inside], atol=1.0)


def test_crop_matrix_parameters_scale_shift_turn_and_mirror_about_the_crop_centre():
    """Each augmentation parameter against its meaning: `scale` > 1 takes in more of the image, (tx, ty) shift
    the crop's output in x and y, `angle` turns an image offset (d, 0) from the centre to s d (cos, -sin), and
    `flip` mirrors x about the crop centre (out_size - 1) / 2."""
    def apply(m, p):
        return np.asarray(m)[:, :2] @ np.asarray(p, np.float64) + np.asarray(m)[:, 2]

    cx, cy, side, out = 70.0, 40.0, 100.0, 64
    centre = (out - 1) / 2
    assert np.allclose(apply(crop_matrix(cx, cy, side, out), (cx + 50, cy + 25)), [centre + 32, centre + 16])
    assert np.allclose(apply(crop_matrix(cx, cy, side, out, scale=2.0), (cx + 50, cy - 50)), [centre + 16, centre - 16])
    assert np.allclose(apply(crop_matrix(cx, cy, side, out, tx=3.0, ty=-7.0), (cx, cy)), [centre + 3, centre - 7])
    angle = np.radians(30)
    turned = apply(crop_matrix(cx, cy, side, out, angle=angle), (cx + 50, cy))
    assert np.allclose(turned, [centre + 32 * np.cos(angle), centre - 32 * np.sin(angle)])
    flipped = apply(crop_matrix(cx, cy, side, out, tx=3.0, ty=-7.0, flip=True), (cx + 50, cy + 25))
    assert np.allclose(flipped, [centre - 32 + 3, centre + 16 - 7])


def test_a_tall_box_is_framed_by_its_height():
    m = box_crop_matrix([10, 20, 50, 120], 64, margin=0.25)  # 40 wide, 100 high
    assert np.isclose(m[0, 0], 64 / 125) and np.isclose(m[1, 1], 64 / 125)
    assert np.allclose(m[:, :2] @ [30.0, 70.0] + m[:, 2], [31.5, 31.5])


def test_the_shrunk_warp_samples_the_same_image_points_as_the_plain_warp():
    """On a linear ramp (each pixel's value its own x and y) area and bilinear resampling are exact, so each output
    pixel must hold the image coordinates that the inverse matrix assigns it: the shrunk path's block centres are
    placed at (p + 0.5) k - 0.5, not half a source pixel off."""
    points = posed_face(0.0, at=(0.0, 0.0, 150.0), size=(1400, 1400))
    m = chip_matrix(points, "68", 112)
    assert np.sqrt(np.linalg.det(m[:, :2])) < 0.1
    ys, xs = np.indices((1400, 1400), dtype=np.float32)
    ramp = np.dstack([xs, ys, np.zeros_like(xs)])
    out = warp_square(ramp, m, 112)
    covered = cv2.warpAffine(np.ones((1400, 1400), np.uint8), m, (112, 112))
    inside = cv2.erode(covered, np.ones((5, 5)), borderType=cv2.BORDER_CONSTANT, borderValue=0) == 1
    assert inside.mean() > 0.5
    inv = cv2.invertAffineTransform(m)
    cy, cx = np.indices((112, 112), dtype=np.float64)
    expected_x = inv[0, 0] * cx + inv[0, 1] * cy + inv[0, 2]
    expected_y = inv[1, 0] * cx + inv[1, 1] * cy + inv[1, 2]
    for got, expected in ((out[..., 0], expected_x), (out[..., 1], expected_y)):
        error = (got - expected)[inside]
        # OpenCV's warp places its samples to 1/32 of a (shrunk) pixel: up to ~0.2 source pixels, but unbiased
        assert abs(error.mean()) < 0.05 and np.abs(error).max() < 0.35, (error.mean(), np.abs(error).max())
