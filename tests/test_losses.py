import numpy as np
import pytest
import tensorflow as tf

from conftest import reference
from landmark_kd.losses import AdaptiveWingLoss, ChannelDistillationLoss, HeatmapDistillationLoss, STARLoss


def _value_and_grad(loss, y_true, y_pred):
    y_pred = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss(y_true=tf.constant(y_true), y_pred=y_pred)
    return float(value), tape.gradient(value, y_pred).numpy()


@pytest.mark.parametrize("case", ["star_peaked_68", "star_peaked_51_w2", "star_peaked_98_l2"])
def test_star_loss_matches_official(case):
    ref = np.load(reference("losses.npz"))
    loss = STARLoss(w=float(ref[f"{case}/w"]), dist=str(ref[f"{case}/dist"]))
    value, grad = _value_and_grad(loss, ref[f"{case}/landmarks_xy"], ref[f"{case}/heatmaps_nhwc"])
    expected = float(ref[f"{case}/loss"])
    assert abs(value - expected) <= 1e-5 * abs(expected)
    ref_grad = ref[f"{case}/grad_nhwc"]
    assert np.abs(grad - ref_grad).max() <= 1e-3 * np.abs(ref_grad).max()


@pytest.mark.parametrize("case", ["awing_68", "awing_9edges"])
def test_awing_loss_matches_official(case):
    ref = np.load(reference("losses.npz"))
    value, grad = _value_and_grad(AdaptiveWingLoss(), ref[f"{case}/target_nhwc"], ref[f"{case}/pred_nhwc"])
    expected = float(ref[f"{case}/loss"])
    assert abs(value - expected) <= 1e-5 * abs(expected)
    ref_grad = ref[f"{case}/grad_nhwc"]
    assert np.abs(grad - ref_grad).max() <= 1e-3 * np.abs(ref_grad).max()


def test_star_loss_is_small_for_a_sharp_correct_heatmap_and_grows_with_error():
    size = 32
    grid = np.arange(size)
    hm = np.exp(-((grid[None, :] - 10) ** 2 + (grid[:, None] - 20) ** 2) / 2.0)[None, :, :, None].astype(np.float32)
    right = np.array([[[10 / 31 * 2 - 1, 20 / 31 * 2 - 1]]], np.float32)
    wrong = right + 0.3
    loss = STARLoss()
    assert float(loss(right, hm)) < float(loss(wrong, hm))


def test_kd_loss_l2_is_sum_over_landmarks_of_l2_norms():
    teacher = np.zeros((1, 2, 2, 2), np.float32)
    student = np.zeros((1, 2, 2, 2), np.float32)
    student[0, 0, 0, 0] = 3.0
    student[0, 1, 1, 0] = 4.0  # landmark 0 differs by (3, 4) -> norm 5
    student[0, 0, 1, 1] = 1.0  # landmark 1 differs by 1 -> norm 1
    loss = HeatmapDistillationLoss(mode="l2", normalize=False)
    assert float(loss(teacher, student)) == pytest.approx(6.0, rel=1e-5)
    mse = HeatmapDistillationLoss(mode="mse", normalize=False)
    assert float(mse(teacher, student)) == pytest.approx((9 + 16 + 1) / 8, rel=1e-6)


def test_kd_loss_normalized_ignores_scale_and_batch_mean():
    rng = np.random.default_rng(0)
    teacher = rng.uniform(0.1, 1, (2, 4, 4, 3)).astype(np.float32)
    loss = HeatmapDistillationLoss()
    assert float(loss(teacher, teacher * 7.0)) == pytest.approx(0.0, abs=1e-5)
    student = rng.uniform(0.1, 1, (2, 4, 4, 3)).astype(np.float32)
    t = teacher / teacher.sum((1, 2), keepdims=True)
    s = student / student.sum((1, 2), keepdims=True)
    expected = np.sqrt(((t - s) ** 2).sum((1, 2))).sum(-1).mean()
    assert float(loss(teacher, student)) == pytest.approx(expected, rel=1e-4)


def test_kd_loss_star_is_star_error_against_teacher_means_at_any_teacher_size():
    """`star` mode: zero eigen weight, the teacher read at its maps' means; a larger teacher map covers the same
    crop (cell centres at half-cell offsets), so student cell 10 is teacher cell 20.5 on a 64-cell map."""
    size = 32
    grid = np.arange(size)
    student = np.exp(-((grid[None, :] - 10) ** 2 + (grid[:, None] - 20) ** 2) / 2.0)[None, :, :, None].astype(np.float32)
    star_error = STARLoss(w=0.0)
    loss = HeatmapDistillationLoss(mode="star")
    # a teacher that agrees with the student: the same map, or a 64-cell map peaked at the same place in the crop
    fine = np.arange(64)
    big = np.exp(-((fine[None, :] - 20.5) ** 2 + (fine[:, None] - 40.5) ** 2) / 8.0)[None, :, :, None]
    agreed = float(loss(student, student))
    assert agreed == pytest.approx(float(loss(big.astype(np.float32), student)), abs=1e-3)
    # against a shifted teacher it equals STAR's error term towards the shifted teacher's mean, and is larger
    shifted = np.roll(student, 4, axis=2)
    mean = np.array([[[14 / 31 * 2 - 1, 20 / 31 * 2 - 1]]], np.float32)
    assert float(loss(shifted, student)) == pytest.approx(float(star_error(mean, student)), rel=1e-4)
    assert float(loss(shifted, student)) > agreed + 0.1
    # only the student gets a gradient
    teacher_var, student_var = tf.Variable(shifted), tf.Variable(student)
    with tf.GradientTape() as tape:
        value = loss(teacher_var, student_var)
    g_teacher, g_student = tape.gradient(value, [teacher_var, student_var])
    assert g_teacher is None and float(tf.reduce_sum(tf.abs(g_student))) > 0
    # the distance is the ground-truth L_STAR's, when another is chosen
    l1 = HeatmapDistillationLoss(mode="star", star_dist="l1")
    assert float(l1(shifted, student)) == pytest.approx(float(STARLoss(w=0.0, dist="l1")(mean, student)), rel=1e-4)
    assert float(l1(shifted, student)) != pytest.approx(float(loss(shifted, student)), rel=1e-3)


def test_losses_round_trip_config():
    for loss in (STARLoss(w=2.0, dist="l2"), AdaptiveWingLoss(omega=10.0), HeatmapDistillationLoss(mode="mse"),
                 HeatmapDistillationLoss(mode="star", star_dist="l1"), ChannelDistillationLoss(tau=2.5)):
        clone = type(loss).from_config(loss.get_config())
        assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="dist must be"):
        STARLoss(dist="huber")


@pytest.mark.parametrize("dist", ["smoothl1", "l1", "l2"])
def test_star_loss_splits_the_error_along_the_heatmap_axes(dist):
    # Axis-aligned anisotropic Gaussians (wide in x, narrow in y): the major axis is x, so the x error is divided
    # by the larger spread and the y error by the smaller; checked against an independent numpy form for each
    # distance (the official reference covers smoothl1 and l2 only). Landmark 1's error is small enough to hit
    # the quadratic branch of smooth-L1.
    size, sx, sy = 33, 4.0, 1.5
    grid = np.arange(size, dtype=np.float64)
    centres = [(12.0, 18.0), (20.0, 14.0)]
    hm = np.stack([np.exp(-((grid[None, :] - cx) ** 2 / (2 * sx * sx) + (grid[:, None] - cy) ** 2 / (2 * sy * sy)))
                   for cx, cy in centres], -1)[None].astype(np.float32)
    offsets = np.array([[0.1, -0.2], [0.004, -0.003]])
    eps, w = 1e-5, 1.5
    xs = grid / (size - 1) * 2 - 1
    expected, landmarks = [], []
    for n in range(2):
        p = hm[0, :, :, n].astype(np.float64)
        p = p / p.sum()
        mx, my = (p * xs[None, :]).sum(), (p * xs[:, None]).sum()
        v1 = 1 + eps
        denom = v1 - ((p * p).sum() + eps) / v1
        a = (p * (xs[None, :] - mx) ** 2).sum() / denom
        c = (p * (xs[:, None] - my) ** 2).sum() / denom
        assert a > 2 * c  # x really is the major axis
        ex, ey = offsets[n]
        landmarks.append([mx + ex, my + ey])
        if dist == "l1":
            d = np.abs
        elif dist == "l2":
            d = np.square
        else:
            d = lambda e: np.where(abs(e) < 0.01, 50 * e * e, abs(e) - 0.005)  # noqa: E731
        expected.append(d(ey) / np.sqrt(c + eps) + d(ex) / np.sqrt(a + eps) + w * (a + c))
    loss = STARLoss(w=w, dist=dist, epsilon=eps)
    value = float(loss(np.array([landmarks], np.float32), hm))
    assert value == pytest.approx(np.mean(expected), rel=1e-4)


def test_kd_loss_resizes_the_teacher_bilinearly_to_the_student_grid():
    # An 8x8 teacher against a 4x4 student: the teacher is resized (half-pixel bilinear, i.e. the mean of each 2x2
    # block) to the student's grid, so a student equal to the block means has zero loss and any other does not.
    rng = np.random.default_rng(1)
    teacher = rng.uniform(0.1, 1, (2, 8, 8, 3)).astype(np.float32)
    blocks = teacher.reshape(2, 4, 2, 4, 2, 3).mean((2, 4))
    for mode in ("l2", "mse"):
        for normalize in (True, False):
            loss = HeatmapDistillationLoss(mode=mode, normalize=normalize)
            bad = float(loss(teacher, teacher[:, ::2, ::2]))  # what nearest-neighbour resizing would match
            assert bad > 0
            assert float(loss(teacher, blocks)) <= 1e-3 * bad
    other = rng.uniform(0.1, 1, (2, 4, 4, 3)).astype(np.float32)
    loss = HeatmapDistillationLoss(mode="mse", normalize=False)
    assert float(loss(teacher, other)) == pytest.approx(((blocks - other) ** 2).mean(), rel=1e-4)


def test_channel_distillation_is_tau_squared_kl_between_spatial_softmaxes_averaged_over_channels():
    """CWD by hand in numpy: per image and channel, KL(softmax(teacher / tau) || softmax(student / tau)) over the
    H x W positions, times tau^2, averaged over channels; the gradient reaches the student only."""
    rng = np.random.default_rng(3)
    teacher = rng.normal(0, 2, (2, 4, 5, 3)).astype(np.float32)
    student = rng.normal(0, 2, (2, 4, 5, 3)).astype(np.float32)
    tau = 2.0

    def softmax(a):
        flat = a.reshape(a.shape[0], -1, a.shape[-1]) / tau
        e = np.exp(flat - flat.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(teacher.astype(np.float64)), softmax(student.astype(np.float64))
    expected = tau ** 2 * (p * np.log(p / q)).sum(axis=1).mean(axis=-1).mean()
    loss = ChannelDistillationLoss(tau=tau)
    value, grad = _value_and_grad(loss, teacher, student)
    assert value == pytest.approx(expected, rel=1e-5) and value > 0
    assert np.abs(grad).max() > 0
    t = tf.constant(teacher)
    with tf.GradientTape() as tape:
        tape.watch(t)
        teacher_value = loss(y_true=t, y_pred=tf.constant(student))
    assert tape.gradient(teacher_value, t) is None
    # a student placing every channel's mass as the teacher does owes nothing, whatever constant it adds
    assert float(loss(teacher, teacher + 5.0)) == pytest.approx(0.0, abs=1e-5)


def test_channel_distillation_resizes_the_teacher_and_refuses_unprojected_channels():
    rng = np.random.default_rng(4)
    small = rng.normal(0, 1, (1, 4, 4, 3)).astype(np.float32)
    large = tf.image.resize(small, [8, 8], method="bilinear").numpy()
    loss = ChannelDistillationLoss(tau=1.0)
    assert float(loss(large, tf.image.resize(small, [8, 8], method="bilinear"))) == pytest.approx(0.0, abs=1e-5)
    student = rng.normal(0, 1, (1, 4, 4, 3)).astype(np.float32)
    resized = tf.image.resize(large, [4, 4], method="bilinear")
    assert float(loss(large, student)) == pytest.approx(float(loss(resized, student)), rel=1e-6)
    with pytest.raises(ValueError, match="teacher features have 5 channels, the student's 3"):
        loss(rng.normal(0, 1, (1, 4, 4, 5)).astype(np.float32), student)
    with pytest.raises(ValueError, match="tau must be > 0"):
        ChannelDistillationLoss(tau=0.0)
