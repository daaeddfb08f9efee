"""Pose-balanced sampling: turned faces are rare in photo sets (a tenth of ytf68/train is strongly turned),
so a model trained on them as they come is weakest exactly where challenge sets test it. Repeating the turned
faces in the training list lets each epoch show them more often, each time differently augmented; the
number of steps per epoch stays that of the set as loaded, so the training budget is unchanged."""
from __future__ import annotations

import numpy as np

from ..metrics import FRONTAL_YAW, LARGE_POSE_YAW, yaw_index
from ..schemes import LandmarkScheme
from .records import Sample

# (|yaw index| at least, copies): a face is repeated by the first bound it reaches.
POSE_COPIES = ((LARGE_POSE_YAW, 3), (FRONTAL_YAW, 2))


def pose_copies(landmarks: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """(M, N, 2) landmarks -> (M,) how many times each face appears in a pose-balanced list."""
    yaw = np.abs(yaw_index(landmarks, scheme))
    copies = np.ones(len(yaw), np.int64)
    for bound, times in reversed(POSE_COPIES):
        copies[yaw >= bound] = times
    return copies


def pose_balanced(samples: list[Sample], scheme: LandmarkScheme) -> list[Sample]:
    """`samples` with each turned face repeated `pose_copies` times (order kept; the pipeline shuffles)."""
    if not samples:
        return []
    copies = pose_copies(np.stack([s.landmarks for s in samples]), scheme)
    return [s for s, n in zip(samples, copies) for _ in range(int(n))]


__all__ = ["POSE_COPIES", "pose_copies", "pose_balanced"]
