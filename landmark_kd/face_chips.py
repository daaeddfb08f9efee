"""Aligned face chips: each face turned upright and scaled so that its eyes, nose tip and mouth corners land on
the five reference points face recognisers are trained with (InsightFace's ArcFace alignment, 112 x 112).

Why: a recogniser, an expression or an attribute model expects faces placed as its training faces were; this is
the step between a landmark detector and them. A least-squares similarity (rotation, scale, shift; never a
mirror) maps the face's five points onto the reference, so a turned or tilted face is still placed as well as a
rigid transform can. numpy + OpenCV only: it runs on a board.
"""
from __future__ import annotations

import numpy as np

from .crop import warp_square
from .errors import ConfigError, DataError
from .schemes import LandmarkScheme, get_scheme

# The ArcFace reference points in a 112 x 112 chip (pixel centres at integers, as cv2.warpAffine places them):
# image-left eye centre, image-right eye centre, nose tip, image-left mouth corner, image-right mouth corner.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
TEMPLATE_SIZE = 112

# Per built-in layout, the points whose mean is each of the five: left eye, right eye, nose tip, left and right
# mouth corner (None: the layout has no such point; COFW marks no nose tip). Which eye comes first in the image is
# checked on each face (`_image_left_first`), not assumed from the dataset's naming.
FIVE_POINT_GROUPS: dict[str, tuple[tuple[int, ...] | None, ...]] = {
    "68": (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)),
    "51": (tuple(range(19, 25)), tuple(range(25, 31)), (13,), (31,), (37,)),
    "98": ((96,), (97,), (54,), (76,), (82,)),
    "29": ((16,), (17,), None, (22,), (23,)),
}


def five_point_groups(scheme: LandmarkScheme | str) -> tuple[tuple[int, ...] | None, ...]:
    """The five point groups of a layout; ConfigError for a layout without them (a custom one)."""
    scheme = get_scheme(scheme)
    groups = FIVE_POINT_GROUPS.get(scheme.name)
    if groups is None or max(i for g in groups if g for i in g) >= scheme.num_points:
        raise ConfigError(f"face chips need the eyes, nose tip and mouth corners of a built-in layout (68, 51, 98, "
                          f"29); the {scheme.num_points}-point layout {scheme.name!r} does not name them")
    return groups


def _image_left_first(points: np.ndarray) -> bool:
    """Whether the first eye is on the image's left of the face as it is seen upright: with y down, going from
    the first eye to the second turns clockwise towards the mouth. True for every real (unmirrored) face whatever
    its roll, so a layout that numbers the eyes the other way round is recognised on its own faces."""
    (e0, e1), mouth = points[:2], points[3:].mean(0)
    cross = (e1[0] - e0[0]) * (mouth[1] - e0[1]) - (e1[1] - e0[1]) * (mouth[0] - e0[0])
    return bool(cross >= 0)


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity (rotation, uniform scale, shift; no mirror) taking `source` (n, 2) onto
    `target` (n, 2), n >= 2. Written with points as complex numbers: the scaled rotation is one complex factor."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    s = (source[:, 0] - source[:, 0].mean()) + 1j * (source[:, 1] - source[:, 1].mean())
    t = (target[:, 0] - target[:, 0].mean()) + 1j * (target[:, 1] - target[:, 1].mean())
    energy = float(np.sum(np.abs(s) ** 2))
    if not np.isfinite(energy) or energy < 1e-12:
        raise DataError("the face's reference points coincide (or are not finite): no chip can be placed")
    a = np.sum(np.conj(s) * t) / energy
    rotation = np.array([[a.real, -a.imag], [a.imag, a.real]])
    shift = target.mean(0) - rotation @ source.mean(0)
    return np.hstack([rotation, shift[:, None]])


def chip_template(size: int = TEMPLATE_SIZE, padding: float = 0.0) -> np.ndarray:
    """The five reference points in a `size` chip: ArcFace's, scaled about the chip's centre; `padding` adds room
    around the face (0.25: the face spans 1/1.25 of what it does at 0), for models that want more than the
    recogniser's tight crop."""
    if int(size) != size or size < 16:
        raise ConfigError(f"chip size must be a whole number of pixels, at least 16; got {size}")
    if not (np.isfinite(padding) and 0.0 <= padding <= 4.0):
        raise ConfigError(f"chip padding must be between 0 and 4; got {padding}")
    scaled = (ARCFACE_112 + 0.5) * (size / TEMPLATE_SIZE) - 0.5  # pixel centres stay on pixel centres
    centre = (size - 1) / 2.0
    return centre + (scaled - centre) / (1.0 + padding)


def five_points(landmarks: np.ndarray, scheme: LandmarkScheme | str) -> np.ndarray:
    """(5, 2) float64: a face's left eye, right eye, nose tip, left and right mouth corner in the layout's own
    order (NaN for a point the layout lacks)."""
    groups = five_point_groups(scheme)
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 2 or landmarks.shape[1] != 2 or len(landmarks) != get_scheme(scheme).num_points:
        raise DataError(f"expected ({get_scheme(scheme).num_points}, 2) landmarks, got {landmarks.shape}")
    return np.array([landmarks[list(g)].mean(0) if g else np.full(2, np.nan) for g in groups])


def chip_matrix(landmarks: np.ndarray, scheme: LandmarkScheme | str, size: int = TEMPLATE_SIZE,
                padding: float = 0.0) -> np.ndarray:
    """The 2x3 matrix taking image pixels to the face's chip: `cv2.transform(points[None], m)[0]` maps its
    landmarks into the chip, `cv2.invertAffineTransform(m)` maps chip points back into the image."""
    groups = five_point_groups(scheme)
    points = five_points(landmarks, scheme)
    if not _image_left_first(points):
        points = points[[1, 0, 2, 4, 3]]
    template = chip_template(size, padding)
    keep = [i for i, g in enumerate(groups) if g]
    return similarity_matrix(points[keep], template[keep])


def face_chip(image: np.ndarray, landmarks: np.ndarray, scheme: LandmarkScheme | str, size: int = TEMPLATE_SIZE,
              padding: float = 0.0) -> np.ndarray:
    """The aligned chip of one face: `size` x `size` pixels of `image` (any channel order; it is kept), the
    face's eyes, nose tip and mouth corners on ArcFace's reference points (scaled to `size`, with `padding`).
    Parts of the chip outside the image are black."""
    return warp_square(image, chip_matrix(landmarks, scheme, size, padding), size)


def chip_points(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Landmarks (N, 2) in image pixels -> the same points in the chip `matrix` was made for."""
    landmarks = np.asarray(landmarks, np.float64)
    return landmarks @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]

