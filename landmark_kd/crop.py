"""The one crop formula that training, evaluation and inference share: a square around the face box,
side * (1 + margin), with optional augmentation. Written against an array module (numpy or TensorFlow), so
inference on a device needs only numpy."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Sequence

import numpy as np

CROP_MARGIN = 0.25  # the crop side grows by this fraction around the face box
MAX_REFINE = 5  # re-crops around a face's own landmarks: each is one more model run, a huge count looks like a hang


Scalar = Any  # a float, or a scalar array of the array module `xp` (a tf.Tensor inside the tf.data pipeline)


def crop_matrix(cx: Scalar, cy: Scalar, side: Scalar, out_size: Scalar, angle: Scalar = 0.0, scale: Scalar = 1.0,
                tx: Scalar = 0.0, ty: Scalar = 0.0, flip: Scalar = False, xp: ModuleType = np) -> Any:
    """Forward 2x3 matrix mapping image pixels to crop pixels (augmentation parameters default to none).
    `xp` is the array module: numpy, or tensorflow inside the tf.data pipeline."""
    s = out_size / (side * scale)
    cos, sin = xp.cos(angle) * s, xp.sin(angle) * s
    fx = xp.where(flip, -1.0, 1.0)
    centre = (out_size - 1) / 2.0
    # p_out = F (R s (p - c)) + centre + t, F mirrors x about the crop centre.
    a = xp.stack([fx * cos, fx * sin, -fx * (cos * cx + sin * cy) + centre + tx])
    b = xp.stack([-sin, cos, sin * cx - cos * cy + centre + ty])
    return xp.stack([a, b])


def box_crop_matrix(box: Sequence[float] | np.ndarray, size: int, margin: float = CROP_MARGIN,
                    roll: float = 0.0) -> np.ndarray:
    """The evaluation crop of a face box (x0, y0, x1, y1) as a float32 2x3 matrix; `roll` (radians, the eye
    line's angle in the image) turns the crop so that the face comes out upright."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1 + margin)
    return np.asarray(crop_matrix((x0 + x1) / 2, (y0 + y1) / 2, side, size, angle=roll), np.float32)


def eye_line_roll(points: np.ndarray, outer_eye_corners: tuple[int, int]) -> float:
    """A face's in-plane roll in radians from its own landmarks: the angle of the line from the first outer eye
    corner to the second against the image x axis (y down); 0 for a level face. Why: a face detector's eye
    keypoints are coarse, and tilted well past 45 degrees barely right; the landmarks are precise."""
    (x0, y0), (x1, y1) = np.asarray(points, np.float64)[list(outer_eye_corners)]
    return float(np.arctan2(y1 - y0, x1 - x0))


def upright_box(points: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """The points' bounding box in the face's upright frame (the image turned by -`roll`), set level about its
    centre in the image: x0, y0, x1, y1 (float32) whose crop, turned by `roll`, frames the points as training
    framed its faces (box_crop_matrix takes the centre and the longer side). At roll 0 it is the points' box.
    Why: the model's crop was trained around the landmarks' box, which a detector's box only approximates."""
    points = np.asarray(points, np.float64)
    cos, sin = np.cos(roll), np.sin(roll)
    to_upright = np.array([[cos, -sin], [sin, cos]])  # row vectors: p @ to_upright turns p by -roll
    upright = points @ to_upright
    low, high = upright.min(0), upright.max(0)
    centre = ((low + high) / 2) @ to_upright.T  # back into the image
    half = (high - low) / 2
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


def warp_square(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """`image` (H, W[, C]) resampled into a `size` x `size` square by the 2x3 `matrix` (a model's crop, a face
    chip). A face much larger than the square is first shrunk by averaging k x k blocks of its source region
    (whole k: OpenCV's fast path, 2 ms for a 1,500 px face where a fractional factor takes 20): bilinear sampling
    at under half scale skips pixels, aliasing fine detail (hair, glasses, stubble) and keeping a
    high-resolution photo's sensor noise at full strength (`benchmarks/crop_resampling.py`)."""
    import cv2

    matrix = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        k = max(2, int(round(1.0 / (1.5 * scale))))  # what is left to the bilinear warp: a scale of 2/3 or more
        corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
        source = cv2.transform(corners[None], cv2.invertAffineTransform(matrix))[0]
        pad = 2 * k + 2  # two shrunk pixels beyond the square: its edge samples the image, not the black border
        (x0, y0), high = np.maximum(np.floor(source.min(0)) - pad, 0).astype(int), np.ceil(source.max(0)) + pad + 1
        width, height = [int(n) // k for n in np.minimum(high, [image.shape[1], image.shape[0]]) - (x0, y0)]
        if width >= 2 and height >= 2:  # else the square lies (almost) outside the image: nothing to shrink
            region = image[y0:y0 + height * k, x0:x0 + width * k]
            image = cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA)
            # a shrunk pixel centre p is the mean of region pixels p*k .. p*k + k - 1: region coordinate
            # (p + 0.5) * k - 0.5, offset by (x0, y0)
            offset = np.array([x0 + 0.5 * k - 0.5, y0 + 0.5 * k - 0.5])
            matrix = np.hstack([matrix[:, :2] * k, (matrix[:, :2] @ offset + matrix[:, 2])[:, None]])
    return cv2.warpAffine(image, matrix, (int(size), int(size)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
