import numpy as np
import pytest

from landmark_kd.decode import (crop_to_image, image_to_crop, local_soft_argmax, normalised_to_pixels, peak_share,
                                soft_argmax)
from landmark_kd.errors import DataError
from landmark_kd.metrics import (auc, ced, failure_rate, nme_inner51, nme_per_image, normalising_distance,
                                 paired_ratio, summarize, yaw_index)
from landmark_kd.schemes import custom_scheme, get_scheme


def test_nme_inter_ocular_hand_computed():
    scheme = get_scheme("68")
    gt = np.zeros((1, 68, 2))
    gt[0, 36] = (0, 0)
    gt[0, 45] = (10, 0)
    pred = gt.copy()
    pred[0, :, 0] += 1.0  # every point 1 px off; inter-ocular distance 10 -> NME 0.1
    assert nme_per_image(pred, gt, scheme, "inter_ocular")[0] == pytest.approx(0.1)


def test_inter_pupil_and_bbox_normalisation():
    scheme = get_scheme("68")
    gt = np.zeros((1, 68, 2))
    gt[0, 36:42] = (2, 0)
    gt[0, 42:48] = (22, 0)
    gt[0, 0] = (0, -5)
    gt[0, 8] = (30, 25)
    assert normalising_distance(gt, scheme, "inter_pupil")[0] == pytest.approx(20)
    assert normalising_distance(gt, scheme, "bbox")[0] == pytest.approx(np.sqrt(30 * 30))
    with pytest.raises(ValueError, match="no eye corners"):
        normalising_distance(gt[:, :3], custom_scheme(3), "inter_ocular")


def test_fr_auc_ced_hand_computed():
    errors = np.array([0.0, 0.05, 0.2, 0.1])
    assert failure_rate(errors, 0.1) == pytest.approx(0.25)  # only 0.2 exceeds 0.1
    xs, ys = ced(errors, 0.1, 11)
    assert ys[0] == pytest.approx(0.25) and ys[5] == pytest.approx(0.5) and ys[-1] == pytest.approx(0.75)
    # CED is 0.25 on [0, 0.05) then 0.5 on [0.05, 0.1) then 0.75 at 0.1: area ~ (0.25 + 0.5) / 2
    assert auc(errors, 0.1, 100001) == pytest.approx(0.375, abs=1e-3)
    assert auc(np.zeros(5)) == pytest.approx(1.0)
    summary = summarize(errors, "inter_ocular", 68)
    assert summary["num_images"] == 4 and summary["nme"] == pytest.approx(0.0875)


def _gaussian(x: float, y: float, size: int = 32, sigma: float = 1.5) -> np.ndarray:
    """(size, size) Gaussian blob with its peak at heatmap-grid (x, y)."""
    g = np.arange(size)
    return np.exp(-((g[None, :] - x) ** 2 + (g[:, None] - y) ** 2) / (2 * sigma ** 2))


def test_decoders_find_a_gaussian_peak():
    hm = _gaussian(12.3, 20.6)[None, :, :, None]
    assert np.allclose(soft_argmax(hm)[0, 0], [12.3, 20.6], atol=0.02)
    assert np.allclose(local_soft_argmax(hm, 4)[0, 0], [12.3, 20.6], atol=0.02)
    # Negative values (a quantised or fp16 map's noise) are clipped to 0, not weighted: a negative patch far from
    # the peak would otherwise push the mean away from it.
    dipped = hm.copy()
    dipped[0, 0:6, 0:6, 0] = -0.05
    assert np.allclose(soft_argmax(dipped)[0, 0], [12.3, 20.6], atol=0.02)
    assert np.allclose(local_soft_argmax(dipped, 32)[0, 0], [12.3, 20.6], atol=0.02)


def test_local_decode_ignores_a_far_second_mode_that_pulls_the_full_mean():
    hm = np.stack([_gaussian(8.0, 10.0) + 0.5 * _gaussian(24.0, 10.0), _gaussian(0.2, 31.0)], -1)[None]  # (1, 32, 32, 2)
    assert np.allclose(soft_argmax(hm)[0, 0], [(8 + 0.5 * 24) / 1.5, 10.0], atol=0.05)  # pulled to the middle
    local = local_soft_argmax(hm, 3)
    assert np.allclose(local[0, 0], [8.0, 10.0], atol=0.02)
    assert 0 <= local[0, 1, 0] < 1.5 and 29.5 < local[0, 1, 1] <= 31  # a corner peak: the window is clipped, not wrapped
    assert np.allclose(local_soft_argmax(hm, 32), soft_argmax(hm), atol=1e-5)  # a window over everything


def test_peak_share_runs_from_a_flat_map_to_a_single_cell_and_ignores_scale():
    one_cell = np.zeros((16, 16))
    one_cell[3, 5] = 7.0
    sharp, wide = _gaussian(8.0, 8.0, 16, 1.0), _gaussian(8.0, 8.0, 16, 3.0)
    hm = np.stack([one_cell, np.ones((16, 16)), sharp, 50.0 * sharp, wide, np.zeros((16, 16))], -1)[None]
    share = peak_share(hm)
    assert share.shape == (1, 6) and share.dtype == np.float32
    np.testing.assert_allclose(share[0, :2], [1.0, 1 / 256], rtol=1e-6)
    np.testing.assert_allclose(share[0, 2], 1 / sharp.sum(), rtol=1e-5)  # the peak cell holds 1 of the blob's sum
    np.testing.assert_allclose(share[0, 3], share[0, 2], rtol=1e-6)  # a share: the map's scale does not matter
    assert share[0, 4] < share[0, 2] / 5  # a spread-out map shares far less
    assert share[0, 5] == 0  # an empty map: no peak, and no division by zero
    dipped = hm.copy()
    dipped[0, 10:, 10:, 0] = -1.0  # negative noise (an fp16 or int8 map) is clipped, as the decoders clip it
    assert peak_share(dipped)[0, 0] == 1.0


def test_coordinate_mapping_inverts_crop():
    # normalised -1/+1 are the centres of the first/last heatmap cells in input pixels
    assert np.allclose(normalised_to_pixels(np.array([-1.0, 1.0]), 32, 4), [1.5, 125.5])
    affine = np.array([[[2.0, 0.0, 5.0], [0.0, 2.0, -3.0]]])
    image_pts = np.array([[[10.0, 20.0]]])
    crop = np.einsum("bij,bnj->bni", affine[:, :, :2], image_pts) + affine[:, None, :, 2]
    assert np.allclose(crop_to_image(crop, affine), image_pts)
    assert np.allclose(image_to_crop(image_pts, affine), [[[25.0, 37.0]]])  # 2 * 10 + 5, 2 * 20 - 3


def test_inner51_ignores_the_jaw_and_divides_by_the_outer_eye_corners():
    gt = np.zeros((1, 68, 2))
    gt[0, 36], gt[0, 45] = [0, 0], [50, 0]
    pred = gt.copy()
    pred[0, :17] += 100  # the jaw is not scored
    pred[0, 17:] += [3, 4]  # 5 px off everywhere else
    assert nme_inner51(pred, gt)[0] == pytest.approx(5 / 50)


def test_yaw_index_is_zero_for_a_frontal_face_and_flips_sign_with_the_mirror_image():
    face = np.zeros((1, 68, 2))
    face[0, 0], face[0, 16], face[0, 30] = [-50, 0], [50, 0], [0, 20]
    assert yaw_index(face)[0] == pytest.approx(0.0)
    face[0, 30] = [25, 20]  # nose moved towards point 16: distances 77.6 and 32.0 px
    expected = (np.hypot(75, 20) - np.hypot(25, 20)) / (np.hypot(75, 20) + np.hypot(25, 20))
    assert yaw_index(face)[0] == pytest.approx(expected)
    mirrored = face * [-1, 1]
    mirrored[0, [0, 16]] = mirrored[0, [16, 0]]  # the mirror image relabelled: its jaw ends swap sides
    assert yaw_index(mirrored)[0] == pytest.approx(-expected)


def test_paired_ratio_interval_is_tight_for_a_uniform_gain_and_spans_one_for_noise():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.02, 0.08, 400)
    uniform = paired_ratio(0.9 * b, b, resamples=2000)
    assert np.isclose(uniform["ratio"], 0.9) and np.isclose(uniform["low"], 0.9) and np.isclose(uniform["high"], 0.9)
    assert uniform["a_better_share"] == 1.0 and uniform["faces"] == 400
    noisy = paired_ratio(b + rng.normal(0, 0.01, 400), b, resamples=2000)
    assert noisy["low"] < 1 < noisy["high"] and 0.95 < noisy["ratio"] < 1.05
    assert paired_ratio(b + 0.001, b, resamples=2000, seed=1) == paired_ratio(b + 0.001, b, resamples=2000, seed=1)
    with pytest.raises(DataError, match="same faces"):
        paired_ratio(b[:10], b[:11])


def test_nme_refuses_landmarks_of_another_layout_or_a_single_face():
    """The normalising points are read by index: 51 points scored as 68 took points 36 and 45 of the 51 (the
    mouth) as eye corners, and one face (68, 2) took its x and y as faces; both must be one clear DataError."""
    scheme = get_scheme("68")
    gt = np.random.default_rng(0).uniform(0, 100, (2, 68, 2))
    with pytest.raises(DataError, match=r"\(2, 51, 2\): expected \(faces, 68, 2\)"):
        nme_per_image(gt[:, 17:] + 1, gt[:, 17:], scheme)
    with pytest.raises(DataError, match=r"one face: landmarks\[None\]"):
        nme_per_image(gt[0] + 1, gt[0], scheme)
    with pytest.raises(DataError, match=r"expected \(faces, 68, 2\)"):
        nme_inner51(gt[:, 17:] + 1, gt[:, 17:])
    with pytest.raises(DataError, match=r"one face: landmarks\[None\]"):
        nme_inner51(gt[0] + 1, gt[0])
    with pytest.raises(DataError, match="prediction shape"):
        nme_inner51(gt[:, 17:], gt)
    same_eyes = gt.copy()
    same_eyes[1, 45] = same_eyes[1, 36]
    with pytest.raises(DataError, match=r"zero for image\(s\) \[1\]"):
        nme_inner51(gt, same_eyes)


def test_ced_and_auc_refuse_a_threshold_not_above_0_or_under_2_steps():
    """auc(errors, 0) was NaN with a RuntimeWarning, a negative threshold gave -0.0 and one step gave an AUC of 0
    for perfect faces: each is one ConfigError naming the value."""
    from landmark_kd.errors import ConfigError

    errors = np.array([0.0, 0.02, 0.2])
    for threshold in (0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=f"threshold {threshold!r}: .*above 0"):
            auc(errors, threshold)
    with pytest.raises(ConfigError, match="steps 1: .*at least 2"):
        auc(np.zeros(3), 0.1, 1)
    assert auc(np.zeros(3), 0.1, 2) == pytest.approx(1.0)


def test_a_layout_name_is_taken_and_no_faces_is_an_error_for_every_score():
    """nme_per_image took only a scheme object (a name died in an AttributeError, where the yaw index takes
    names); no faces gave a NaN mean and failure rate with numpy warnings but an AUC of 0."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (3, 68, 2))
    pred = gt + rng.normal(0, 1, gt.shape)
    np.testing.assert_array_equal(nme_per_image(pred, gt, "68"), nme_per_image(pred, gt, get_scheme("68")))
    for score in (failure_rate, auc, ced, lambda e: summarize(e, "inter_ocular", 68)):
        with pytest.raises(DataError, match="no faces to score"):
            score(np.zeros(0))


def test_bbox_is_the_geometric_mean_of_width_and_height_and_pupils_are_eye_centres():
    scheme = get_scheme("68")
    gt = np.zeros((1, 68, 2))
    gt[0, :, :] = (5, 5)
    gt[0, 0], gt[0, 16] = (0, 2), (40, 12)  # box 40 wide, 10 high
    assert normalising_distance(gt, scheme, "bbox")[0] == pytest.approx(np.sqrt(40 * 10))
    # Eyes whose six points spread around centres (10, 4) and (30, 6): the pupil is the mean, not one corner.
    ring = np.array([[-3, 0], [-1, -2], [1, -2], [3, 0], [1, 2], [-1, 2]], float)
    gt[0, 36:42] = ring + (10, 4)
    gt[0, 42:48] = ring * 1.5 + (30, 6)
    assert normalising_distance(gt, scheme, "inter_pupil")[0] == pytest.approx(np.hypot(20, 2))


def test_inner51_averages_over_exactly_the_points_from_17_on():
    gt = np.zeros((1, 68, 2))
    gt[0, 36], gt[0, 45] = [0, 0], [50, 0]
    pred = gt.copy()
    pred[0, 17] += [30, 40]  # 50 px off on the first eyebrow point only: mean 50 / 51 px
    pred[0, 16] += 1000  # the last jaw point is not scored
    assert nme_inner51(pred, gt)[0] == pytest.approx(50 / 51 / 50)


def test_a_nan_error_is_a_failure_and_summarize_scores_at_its_own_threshold():
    assert failure_rate(np.array([0.01, np.nan, 0.02, 0.03]), 0.1) == pytest.approx(0.25)
    errors = np.array([0.01, 0.03, 0.06, 0.2])
    summary = summarize(errors, "bbox", 51, threshold=0.05)
    assert summary["fr"] == pytest.approx(0.5) and summary["threshold"] == 0.05
    assert summary["auc"] == pytest.approx(auc(errors, 0.05)) and summary["auc"] != pytest.approx(auc(errors, 0.1))
    assert summary["normalization"] == "bbox" and summary["num_points"] == 51


def test_pose_group_bounds_are_frontal_below_0_3_and_large_pose_from_0_5():
    from landmark_kd.metrics import pose_groups

    # Jaw ends at x = -50 and 50, the nose at x on the line: yaw index (x + 50 - (50 - x)) / 100 = x / 50.
    faces = np.zeros((5, 68, 2))
    faces[:, 0], faces[:, 16] = [-50, 0], [50, 0]
    faces[:, 30, 0] = [14, 15, 20, 25, -25]  # yaw 0.28, 0.3, 0.4, 0.5, -0.5
    groups = pose_groups(faces)
    assert groups["frontal"].tolist() == [True, False, False, False, False]
    assert groups["large_pose"].tolist() == [False, False, False, True, True]


def test_paired_ratio_interval_is_the_central_level_of_the_bootstrap_and_ties_are_not_wins():
    # With model B's errors all 1, each resampled ratio is a resampled mean of A's errors: for 400 faces the
    # central 95% is close to mean +- 1.96 standard errors (and the central 50% to +- 0.674).
    rng = np.random.default_rng(3)
    a = rng.normal(1.0, 0.2, 400)
    se = a.std() / np.sqrt(a.size)
    for level, z in ((0.95, 1.960), (0.5, 0.674)):
        result = paired_ratio(a, np.ones(400), resamples=10000, level=level)
        assert result["high"] - result["low"] == pytest.approx(2 * z * se, rel=0.05)
        assert result["low"] < a.mean() < result["high"] and result["level"] == level
    same = paired_ratio(a, a.copy(), resamples=500)
    assert same["ratio"] == 1.0 and same["a_better_share"] == 0.0  # a tie is not A being better


def test_faces_that_cannot_be_normalised_are_dropped_and_named():
    from landmark_kd.data.records import LoadReport, Sample
    from landmark_kd.metrics import drop_unnormalisable

    rng = np.random.default_rng(0)
    faces = rng.uniform(0, 100, (3, 68, 2)).astype(np.float32)
    faces[1, 45] = faces[1, 36]  # no inter-ocular distance
    samples = [Sample(f"{i}.png", faces[i], source=f"list:{i}") for i in range(3)]
    report = LoadReport(loaded=3)
    kept = drop_unnormalisable(samples, get_scheme("68"), None, report)
    assert [s.source for s in kept] == ["list:0", "list:2"] and report.loaded == 2
    assert len(report.skipped) == 1 and report.skipped[0][0] == "list:1"
    assert "inter_ocular distance is zero" in report.skipped[0][1]
    assert len(drop_unnormalisable(samples, get_scheme("68"), "bbox")) == 3  # its box is not empty
