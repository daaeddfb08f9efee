"""NME (inter-ocular, inter-pupil, bbox), failure rate and AUC at a threshold, and the CED curve."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError, DataError
from .schemes import LandmarkScheme, get_scheme

if TYPE_CHECKING:
    from .data.records import LoadReport

NORMALIZATIONS = ("inter_ocular", "inter_pupil", "bbox")


def normalising_distance(gt: np.ndarray, scheme: LandmarkScheme, normalization: str) -> np.ndarray:
    """(B, N, 2) ground truth -> (B,) distances that divide the mean point error."""
    gt = np.asarray(gt, np.float64)
    if normalization == "inter_ocular":
        if scheme.outer_eye_corners is None:
            raise ConfigError(f"scheme {scheme.name!r} has no eye corners; use normalization='bbox'")
        a, b = scheme.outer_eye_corners
        return np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
    if normalization == "inter_pupil":
        if scheme.pupils is None:
            raise ConfigError(f"scheme {scheme.name!r} has no pupils; use normalization='bbox'")
        left = gt[:, list(scheme.pupils[0])].mean(1)
        right = gt[:, list(scheme.pupils[1])].mean(1)
        return np.linalg.norm(left - right, axis=-1)
    if normalization == "bbox":
        size = gt.max(1) - gt.min(1)
        return np.sqrt(size[:, 0] * size[:, 1])
    raise ConfigError(f"unknown normalization {normalization!r}; choose from {NORMALIZATIONS}")


def default_normalization(scheme: LandmarkScheme) -> str:
    """inter_ocular where the scheme knows the outer eye corners, else bbox."""
    return "inter_ocular" if scheme.outer_eye_corners is not None else "bbox"


def _checked_faces(pred: np.ndarray, gt: np.ndarray, num_points: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """`pred` and `gt` as float64 (M, num_points, 2), or DataError: the normalising points are read by index, so
    a single face (N, 2) or another layout's points (51 given to a 68-point scheme) would be scored on the wrong
    points without a word."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise DataError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    if gt.ndim != 3 or gt.shape[1:] != (num_points, 2):
        one = " (one face: landmarks[None])" if gt.shape == (num_points, 2) else ""
        raise DataError(f"landmarks of shape {gt.shape}: expected (faces, {num_points}, 2) for the {layout}{one}")
    return pred, gt


def _nonzero(norm: np.ndarray) -> np.ndarray:
    """The faces' normalising distances, or a DataError naming the faces where one is zero."""
    if np.any(norm <= 0):
        raise DataError(f"normalising distance is zero for image(s) {np.flatnonzero(norm <= 0).tolist()}")
    return norm


def nme_per_image(pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme | str,
                  normalization: str = "inter_ocular") -> np.ndarray:
    """Mean point-to-point error of each face divided by its `normalization` distance: (M,) from (M, N, 2).
    `scheme`: a layout or a built-in layout's name ("68", "98", ...), as the yaw index takes."""
    if isinstance(scheme, str):
        scheme = get_scheme(scheme)
    pred, gt = _checked_faces(pred, gt, scheme.num_points, f"{scheme.num_points}-point layout {scheme.name!r}")
    norm = normalising_distance(gt, scheme, normalization)
    return np.linalg.norm(pred - gt, axis=-1).mean(-1) / _nonzero(norm)


def nme_inner51(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image NME of 68-point predictions over the 51 inner points, divided by the outer-eye-corner
    distance of the full 68-point ground truth: (M,) from (M, 68, 2)."""
    pred, gt = _checked_faces(pred, gt, 68, "68-point layout (all 68 points, jaw included)")
    norm = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    return np.linalg.norm(pred[:, 17:] - gt[:, 17:], axis=-1).mean(-1) / _nonzero(norm)


# The points the yaw index reads, per built-in layout: one end of the jaw line, the nose tip, the other end.
YAW_POINTS = {"68": (0, 30, 16), "98": (0, 54, 32)}


def yaw_points(scheme: LandmarkScheme | str, purpose: str) -> tuple[int, int, int]:
    """The (jaw end, nose tip, other jaw end) indices of `scheme`; refused, naming `purpose`, for a layout without
    them."""
    name = scheme.name if isinstance(scheme, LandmarkScheme) else str(scheme)
    if name not in YAW_POINTS:
        raise ConfigError(f"{purpose} reads the yaw from the jaw line and nose tip of the "
                          f"{'- or '.join(YAW_POINTS)}-point layouts; scheme {name!r} is not one")
    return YAW_POINTS[name]


def yaw_index(gt: np.ndarray, scheme: LandmarkScheme | str = "68") -> np.ndarray:
    """How far each face is turned left or right, from its landmarks alone: (a - b) / (a + b) with a, b the nose
    tip's distances to the two ends of the jaw line. 0 is frontal; it is positive when the nose has moved
    towards the second jaw end's side of the image; |index| 0.5 means one side is 3x the other (a strongly
    turned face). Splits a labelled set into frontal and large-pose faces, as challenge test sets are split."""
    first, nose, last = yaw_points(scheme, "the yaw index")
    gt = np.asarray(gt, np.float64)
    a = np.linalg.norm(gt[:, nose] - gt[:, first], axis=-1)
    b = np.linalg.norm(gt[:, nose] - gt[:, last], axis=-1)
    return (a - b) / np.maximum(a + b, 1e-12)


# |yaw index| bounds of the pose groups reports split by: frontal below the first, large pose from the second.
FRONTAL_YAW, LARGE_POSE_YAW = 0.3, 0.5


def pose_groups(gt: np.ndarray, scheme: LandmarkScheme | str = "68") -> dict[str, np.ndarray]:
    """Boolean masks over the faces of `gt`: "frontal" (|yaw index| < 0.3) and "large_pose" (>= 0.5)."""
    yaw = np.abs(yaw_index(gt, scheme))
    return {"frontal": yaw < FRONTAL_YAW, "large_pose": yaw >= LARGE_POSE_YAW}


def _some_errors(errors: np.ndarray) -> np.ndarray:
    """`errors` as float64, or a DataError for none: their mean and failure rate were NaN with a numpy warning,
    while the AUC of none was 0."""
    errors = np.asarray(errors, np.float64)
    if not errors.size:
        raise DataError("no faces to score: the list of errors is empty")
    return errors


def ced(errors: np.ndarray, threshold: float = 0.1, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: x in [0, threshold], fraction of images with NME <= x. A threshold that is
    not above 0 or under 2 steps is a ConfigError: the AUC divided by it was NaN, of the wrong sign, or 0."""
    if not (np.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"threshold {threshold!r}: the CED and AUC need an error bound above 0 (e.g. 0.1)")
    if int(steps) != steps or steps < 2:
        raise ConfigError(f"steps {steps!r}: the CED needs a whole number of at least 2 points")
    xs = np.linspace(0, threshold, int(steps))
    errors = np.sort(_some_errors(errors))
    ys = np.searchsorted(errors, xs, side="right") / len(errors)
    return xs, ys


def failure_rate(errors: np.ndarray, threshold: float = 0.1) -> float:
    """Share of faces whose NME exceeds `threshold`; a NaN error (a prediction that is no number) is a failure.
    No faces is a DataError (`_some_errors`)."""
    return float(np.mean(~(_some_errors(errors) <= threshold)))


def auc(errors: np.ndarray, threshold: float = 0.1, steps: int = 1001) -> float:
    """Area under the CED up to `threshold`, divided by `threshold` (1.0 = every image perfect)."""
    xs, ys = ced(errors, threshold, steps)
    return float(np.trapz(ys, xs) / threshold)


def paired_ratio(errors_a: np.ndarray, errors_b: np.ndarray, resamples: int = 10000, seed: int = 0,
                 level: float = 0.95) -> dict:
    """Mean NME of model A over model B's on the same faces, with a paired bootstrap interval.

    A ratio such as "KD 0.97x no-KD" is only a finding if it holds beyond the luck of which faces were scored:
    the faces are resampled with replacement, both models' errors together, and the interval is the central
    `level` of the resampled ratios."""
    a, b = np.asarray(errors_a, np.float64), np.asarray(errors_b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise DataError(f"paired_ratio needs one error per face for both models on the same faces, got shapes "
                        f"{a.shape} and {b.shape}")
    picks = np.random.default_rng(seed).integers(0, a.size, (resamples, a.size))
    ratios = a[picks].mean(1) / b[picks].mean(1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return {"ratio": float(a.mean() / b.mean()), "low": float(low), "high": float(high), "level": level,
            "a_better_share": float(np.mean(ratios < 1)), "faces": int(a.size)}


def summarize(errors: np.ndarray, normalization: str, num_points: int, threshold: float = 0.1) -> dict:
    """nme, fr and auc (of the CED up to `threshold`) of per-face `errors`, with how they were measured."""
    errors = _some_errors(errors)
    return {
        "nme": float(errors.mean()),
        "fr": failure_rate(errors, threshold),
        "auc": auc(errors, threshold),
        "threshold": threshold,
        "normalization": normalization,
        "num_images": int(errors.size),
        "num_points": int(num_points),
    }


def drop_unnormalisable(samples: list, scheme: LandmarkScheme, normalization: str | None,
                        report: LoadReport | None = None) -> list:
    """Scoring divides by a per-face distance (eye corners, pupils or box); a face where it is zero cannot be
    scored. Such faces are skipped and counted (named in `report`) when loaded, not found after an epoch."""
    if not samples:
        return samples
    normalization = normalization or default_normalization(scheme)
    dist = normalising_distance(np.stack([s.landmarks for s in samples]), scheme, normalization)
    keep = []
    for sample, d in zip(samples, dist):
        if d > 0:
            keep.append(sample)
        elif report is not None:
            report.skip(sample.source, f"{normalization} distance is zero: the face cannot be scored")
    if report is not None:
        report.loaded = len(keep)
    return keep
