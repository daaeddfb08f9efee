"""BlazeFace face detection (MediaPipe's short- and full-range face detector .tflite models) on tflite_runtime.

Why this module exists: OpenCV's Haar cascade misses tilted, dim and tightly cropped faces and is slow on large
photos; MediaPipe's BlazeFace models are small (0.2 / 0.7 MB) and run in a few ms on one CPU thread (see
benchmarks/face_detection.py for detection rates on real photos). It imports
only numpy, OpenCV and tflite_runtime (TensorFlow's copy of the interpreter only where tflite_runtime is not
installed), so it runs on devices without TensorFlow. The models ship in `landmark_kd/assets/` (Apache-2.0,
from the `mediapipe==0.10.21` wheel, see assets/README.md); nothing is downloaded.

The pre/post-processing follows MediaPipe's graphs (`mediapipe/modules/face_detection/face_detection*.pbtxt`)
and calculators, re-implemented here:
- input: the whole image letterboxed (kept aspect, zero border, centred) to 128x128 (short) / 192x192 (full),
  RGB float in [-1, 1] (`output_tensor_float_range {min: -1 max: 1}`, `border_mode: BORDER_ZERO`);
- SSD anchors (`SsdAnchorsCalculator`): fixed anchor size (w = h = 1), offset 0.5; short range: strides
  8, 16, 16, 16 with an interpolated anchor per layer (16*16*2 + 8*8*6 = 896); full range: stride 4, one
  anchor per cell (48*48 = 2304). Consecutive layers of equal stride share one grid, anchors of a cell adjacent;
- decoding (`TensorsToDetectionsCalculator`, XYWH order): 16 values = box centre x, y, width, height, then 6
  keypoints (x, y), all in input pixels relative to the anchor centre (scale = input size);
  score = sigmoid(clip(logit, -100, 100)), kept where >= 0.5 (short) / 0.6 (full);
- weighted NMS (`NonMaxSuppressionCalculator`, WEIGHTED, IoU > 0.3): each kept detection is the score-weighted
  mean of the boxes and keypoints that overlap the best remaining one, with the best one's score.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .errors import ConfigError, DataError, MissingFileError, ModelFileError
from .export.tflite_runner import make_interpreter

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

# Keypoint order of the models' 6 keypoints (the subject's right/left, so "right eye" is on the image's left
# in a frontal, unmirrored photo).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion")

# Detector box -> estimated bounding box of the 68 iBUG landmarks (jaw, brows, chin), per model, in units of the
# detector box: centre shift (dx, dy) and size ratios (sw, sh): landmark box = detector box moved by
# (dx * w, dy * h), sized (sw * w, sh * h). Measured with `python benchmarks/face_detection.py --fit`: each
# ytf68/train face's best-IoU detection (IoU >= 0.3), medians of the per-face ratios (IQR in brackets).
#   short, 3,805 faces: dx -0.002 [-0.021, +0.016], dy +0.049 [+0.023, +0.073], sw 0.976 [0.922, 1.030],
#          sh 0.942 [0.892, 0.992]. Mean IoU with the 68-point box, raw -> fitted: ytf68/val 0.831 -> 0.857
#          (426 faces), dlib_faces 0.807 -> 0.815 (11 faces).
#   full,  3,656 faces: dx +0.001 [-0.060, +0.070], dy +0.086 [+0.066, +0.107], sw 0.914 [0.862, 0.972],
#          sh 0.881 [0.843, 0.924]. Mean IoU raw -> fitted: ytf68/val 0.702 -> 0.779 (410 faces),
#          dlib_faces 0.670 -> 0.769 (42 faces).
# So on these labels the detector box is about the 68-point box's size (the full-range box ~10% larger), and
# the 68-point box sits lower (it reaches the chin; the detector box reaches up to the forehead).
LANDMARK_BOX_FITS = {"short": (-0.002, 0.049, 0.976, 0.942), "full": (0.001, 0.086, 0.914, 0.881)}

# Auto mode: a full-range face with over this share of its box inside a short-range face's box is that face (see
# BlazeFaceDetector._merge). On dlib_faces (43 faces, 9 group photos) this takes auto from 44 detections to 42 with
# the same 42 faces found; ytf68/val and 500 LFW photos find every face, as before.
CONTAINED_SHARE = 0.6

# Close-ups: where nothing is found, BlazeFace looks again in the image with a black border of half its longer
# side all round (a face that fills the picture or is cut by its edges, such as a face crop or a headshot, then has
# the room around it that BlazeFace's training faces had), keeping what scores at least this much (short range's
# own threshold is 0.5: the second look's false faces score lower than most true ones). `python
# benchmarks/face_detection.py --close-ups`: of 107 ytf68/val faces cut to 1.0x / 1.1x / 1.25x their 68-point box,
# 95 / 99 / 105 found at the first look and 105 / 106 / 107 with the second; on 174 background patches, 13 false
# faces against 9.
CLOSE_UP_MIN_SCORE = 0.6


@dataclass(frozen=True)
class _ModelSpec:
    """What MediaPipe's graph configures for one detector model."""
    name: str
    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # 2 where interpolated_scale_aspect_ratio > 0, else 1
    min_score: float


MODELS = {
    "short": _ModelSpec("short", "face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": _ModelSpec("full", "face_detection_full_range_sparse.tflite", 192, (4,), 1, 0.6),
}


def ssd_anchor_centres(input_size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1] of the input, in the order the model emits its rows.

    Why only centres: with MediaPipe's `fixed_anchor_size: true` every anchor is 1 x 1 (normalised), so the
    centre is all the decoding needs. Layers that share a stride share one feature map; each of its cells
    holds `anchors_per_layer` anchors per such layer, stored together (row-major over cells)."""
    centres = []
    start = 0
    while start < len(strides):
        stop = start
        while stop < len(strides) and strides[stop] == strides[start]:
            stop += 1
        cells = math.ceil(input_size / strides[start])
        per_cell = (stop - start) * anchors_per_layer
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        xy = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(xy, per_cell, axis=0))
        start = stop
    return np.concatenate(centres).astype(np.float32)


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw model rows -> (boxes (N, 4) x0 y0 x1 y1, keypoints (N, 6, 2), scores (N,)), coordinates normalised to
    the input square. Regressor values are input pixels relative to the anchor centre."""
    raw = np.asarray(regressors, np.float32).reshape(len(anchors), -1) / float(input_size)
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    clipped = np.clip(np.asarray(logits, np.float64).reshape(-1), -100.0, 100.0)  # float64: exp(100) fits
    scores = (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)
    return boxes, keypoints, scores


def _overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, M) intersection areas of K boxes with M boxes (x0 y0 x1 y1), and the (K,) and (M,) box areas; empty or
    inverted boxes have area 0."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)

    def area(boxes: np.ndarray) -> np.ndarray:
        return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)

    return ix * iy, area(a), area(b)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K, M) IoU of K boxes against M boxes (x0 y0 x1 y1); empty or inverted boxes have area 0."""
    inter, area_a, area_b = _overlaps(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0 y0 x1 y1 box against (N, 4) boxes."""
    return iou_matrix(box, boxes)[0]


def box_containment(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Share of the smaller box that lies inside the other, for one box against (N, 4) boxes (0 where either is
    empty). Why beside IoU: a small box wholly inside a box four times its area has IoU 0.25, yet both may be
    one face."""
    inter, area_a, area_b = _overlaps(box, boxes)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)[0]


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3
                 ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's "blending" NMS: [(box, keypoints, score)], best first. Why weighted: the many anchors that
    fire on one face each carry a slightly different box; their score-weighted mean is steadier than the
    single best one. A group is every remaining box with IoU > `iou` against the best remaining box."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while len(order):
        best = order[0]
        overlap = box_iou(boxes[best], boxes[order]) > iou
        overlap[0] = True  # a degenerate best box still forms its own group
        group = order[overlap]
        weights = scores[group][:, None]
        total = weights.sum()
        box = (boxes[group] * weights).sum(0) / total
        kps = (keypoints[group] * weights[:, :, None]).sum(0) / total
        out.append((box.astype(np.float32), kps.astype(np.float32), float(scores[best])))
        order = order[~overlap]
    return out


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float, float]:
    """Image -> (size x size RGB uint8, scale_x, scale_y, pad_x, pad_y): aspect kept, centred, zero border,
    as MediaPipe's ImageToTensorCalculator with keep_aspect_ratio. Tensor pixel corners map to image pixel
    corners: u_tensor = x_corner * scale + pad."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    # INTER_AREA when shrinking: plain bilinear (MediaPipe's warp) aliases on large photos.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation)
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    out = np.zeros((size, size, 3), np.uint8)
    out[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    return out, nw / w, nh / h, float(pad_x), float(pad_y)


def _uint8_hint(image: np.ndarray) -> str:
    """How to make `image` uint8, read from its type and range: one hint for every array misled a float image
    already in 0-255 (times 255 again) and a 16-bit one."""
    if image.dtype == np.bool_ or not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        return ""
    finite = image[np.isfinite(image)] if np.issubdtype(image.dtype, np.floating) else image
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if np.issubdtype(image.dtype, np.floating) and low >= 0 and high <= 1:
        return " (values in [0, 1]: (image * 255).round().astype(np.uint8))"
    if low >= 0 and high <= 255:
        return " (values in 0-255: image.round().astype(np.uint8))" if np.issubdtype(image.dtype, np.floating) \
            else " (values in 0-255: image.astype(np.uint8))"
    if np.issubdtype(image.dtype, np.integer) and low >= 0 and high <= 65535:
        return " (16-bit values: (image // 257).astype(np.uint8))"
    return f" (values from {low:g} to {high:g}: scale them to 0-255 first)"


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """`image` as contiguous RGB uint8 (H, W, 3): grey (H, W) or (H, W, 1) repeated, RGBA's alpha dropped, as
    every entry point that takes a user's array reads it. Other pixel types are a
    DataError: clipped to 0-255, a float image in [0, 1] became black and a 16-bit one white, and no face was
    found without a word."""
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = np.repeat(image.reshape(image.shape[:2])[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if not image.size:  # the letterbox scale would divide by zero
        raise DataError(f"empty image ({image.shape[1]}x{image.shape[0]} pixels)")
    if image.dtype != np.uint8:
        raise DataError(f"expected an RGB uint8 image (0-255), got {image.dtype} {image.shape}{_uint8_hint(image)}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


@dataclass
class Detection:
    """One face: the detector's own box, its score and 6 keypoints (see KEYPOINT_NAMES), image pixels."""
    box: np.ndarray  # (4,) x0, y0, x1, y1, the raw detector box
    score: float
    keypoints: np.ndarray  # (6, 2) x, y
    model: str = "short"  # which BlazeFace model found it: "short" or "full" (their boxes differ in size)
    quarter_turns: int = 0  # found in the image turned this many times by 90 degrees anticlockwise (any_angle)

    def eye_angle(self) -> float:
        """In-plane roll in radians: the angle of the line from the right eye to the left eye against the
        image x axis (y down), 0 for a level face, positive when the face is turned clockwise on screen.
        Why: a crop can be rotated upright before the landmark model sees it."""
        (rx, ry), (lx, ly) = self.keypoints[0], self.keypoints[1]
        return float(math.atan2(ly - ry, lx - rx))

    def landmark_box(self, fit: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """Estimated bounding box of the 68 iBUG landmarks (x0, y0, x1, y1 float32). Why: the landmark model's
        crop was trained around that box (chin and jaw included), and BlazeFace's box is a different box, of a
        different size for each model. `fit` (centre shift dx, dy and size ratios sw, sh, in detector-box
        units) defaults to the conversion measured for this detection's model (LANDMARK_BOX_FITS)."""
        dx, dy, sw, sh = LANDMARK_BOX_FITS[self.model] if fit is None else fit
        x0, y0, x1, y1 = (float(v) for v in self.box)
        w, h = x1 - x0, y1 - y0
        # the fit is in the frame the face was found in: its x and y axes as image directions
        across, down = _TURNED_AXES[self.quarter_turns % 4]
        if across[0] == 0:  # a quarter turn: the face's width runs along the image's y axis
            w, h = h, w
        shift = dx * w * np.asarray(across) + dy * h * np.asarray(down)
        cx, cy = (x0 + x1) / 2 + shift[0], (y0 + y1) / 2 + shift[1]
        half = np.abs(np.asarray(across)) * sw * w / 2 + np.abs(np.asarray(down)) * sh * h / 2
        return np.array([cx - half[0], cy - half[1], cx + half[0], cy + half[1]], np.float32)


# Image directions of the x and y axes of an image turned by k quarter turns anticlockwise (np.rot90(image, k)).
_TURNED_AXES = {0: ((1, 0), (0, 1)), 1: ((0, 1), (-1, 0)), 2: ((-1, 0), (0, -1)), 3: ((0, -1), (1, 0))}


def unturn_points(points: np.ndarray, quarter_turns: int, shape: tuple) -> np.ndarray:
    """(..., 2) pixel coordinates in `np.rot90(image, quarter_turns)` -> the same pixels in `image` of `shape`
    (H, W, ...): how a face found in a turned image is placed back."""
    height, width = shape[:2]
    x, y = np.asarray(points, np.float32)[..., 0], np.asarray(points, np.float32)[..., 1]
    k = quarter_turns % 4
    back = {0: (x, y), 1: (width - 1 - y, x), 2: (width - 1 - x, height - 1 - y), 3: (y, height - 1 - x)}[k]
    return np.stack(back, -1).astype(np.float32)


class _BlazeFaceModel:
    """One .tflite detector with its anchors and default threshold."""

    def __init__(self, path: str, spec: _ModelSpec | None, threads: int):
        if not os.path.isfile(path):
            raise MissingFileError(f"{path}: face detection model not found")
        self.path = path
        self.interpreter = make_interpreter(path, threads)  # quiet: no XNNPACK INFO line in our CLIs' output
        inp = self.interpreter.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_size = int(inp["shape"][1])
        if spec is None:  # a model given by path: take MediaPipe's settings for its input size
            spec = next((s for s in MODELS.values() if s.input_size == self.input_size), None)
            if spec is None:
                raise ModelFileError(f"{path}: input {self.input_size}x{self.input_size} is neither BlazeFace short "
                                 "range (128) nor full range (192)")
        if spec.input_size != self.input_size:
            raise ModelFileError(f"{path}: input size {self.input_size}, expected {spec.input_size}")
        self.spec = spec
        self.anchors = ssd_anchor_centres(spec.input_size, spec.strides, spec.anchors_per_layer)
        outputs = self.interpreter.get_output_details()
        # Output names differ between the models ("regressors"/"classificators" vs "Identity"/"Identity_1"):
        # tell them apart by their last dimension, 16 coordinates vs 1 score.
        by_width = {int(o["shape"][-1]): o for o in outputs}
        if set(by_width) != {16, 1} or any(int(o["shape"][1]) != len(self.anchors) for o in outputs):
            raise ModelFileError(f"{path}: outputs {[tuple(o['shape']) for o in outputs]}, expected "
                             f"(1, {len(self.anchors)}, 16) and (1, {len(self.anchors)}, 1)")
        self.regressor_index, self.score_index = by_width[16]["index"], by_width[1]["index"]
        self._lock = threading.Lock()  # one invoke at a time: threads sharing a detector would mix their outputs

    def run(self, image: np.ndarray, min_score: float, iou: float) -> list[Detection]:
        size = self.input_size
        square, sx, sy, px, py = letterbox(image, size)
        tensor = square.astype(np.float32)[None] / 127.5 - 1.0
        with self._lock:
            self.interpreter.set_tensor(self.input_index, tensor)
            self.interpreter.invoke()
            regressors = self.interpreter.get_tensor(self.regressor_index)[0]
            logits = self.interpreter.get_tensor(self.score_index)[0]
        boxes, keypoints, scores = decode(regressors, logits, self.anchors, size)
        keep = (scores >= min_score) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        faces = weighted_nms(boxes[keep], keypoints[keep], scores[keep], iou)
        scale = np.array([sx, sy], np.float32)
        pad = np.array([px, py], np.float32)

        def to_image(points):  # normalised tensor -> 0-based image pixel centres
            return (points * size - pad) / scale - 0.5

        return [Detection(box=to_image(box.reshape(2, 2)).reshape(4).astype(np.float32), score=score,
                          keypoints=to_image(kps).astype(np.float32), model=self.spec.name)
                for box, kps, score in faces]


class BlazeFaceDetector:
    """MediaPipe BlazeFace on tflite_runtime. `model`: "short" (faces filling much of the picture, within about
    2 m of a camera), "full" (small and distant faces too, slower), "auto" (both: short range's faces, plus
    those only full range finds, such as small faces in a group photo) or a path to a BlazeFace .tflite. `min_score` defaults to MediaPipe's
    threshold per model (0.5 short, 0.6 full); `iou` is the weighted-NMS grouping threshold. `any_angle`: also
    look in the image turned by 90, 180 and 270 degrees (four times the time), for faces lying on their side or
    upside down, which BlazeFace, trained on upright faces, misses or places with wrong eye keypoints; where
    one face is found in several turns, the best-scoring turn's detection is kept. `close_ups`: where nothing is
    found, look again with a border around the image (CLOSE_UP_MIN_SCORE), for faces that fill the picture."""

    def __init__(self, model: str = "auto", min_score: float | None = None, iou: float = 0.3, threads: int = 1,
                 any_angle: bool = False, close_ups: bool = True):
        names = ("short", "full") if model == "auto" else (model,)
        self.models = []
        for name in names:
            if name in MODELS:
                self.models.append(_BlazeFaceModel(os.path.join(ASSETS_DIR, MODELS[name].file), MODELS[name], threads))
            elif name.endswith(".tflite"):
                self.models.append(_BlazeFaceModel(name, None, threads))
            else:
                raise ConfigError(f"model {model!r}: expected 'short', 'full', 'auto' or a .tflite path")
        self.model, self.min_score, self.iou, self.any_angle = model, min_score, iou, any_angle
        self.close_ups = close_ups

    def detect(self, image_rgb_uint8) -> list[Detection]:
        """Faces in an RGB uint8 image (H, W, 3), best score first, coordinates in image pixels."""
        image = as_rgb_uint8(image_rgb_uint8)
        faces = self._detect(image)
        if faces or not self.close_ups:
            return faces
        pad = max(image.shape[:2]) // 2
        framed = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        return [replace(face, box=face.box - pad, keypoints=face.keypoints - pad)
                for face in self._detect(framed) if face.score >= CLOSE_UP_MIN_SCORE]

    def _detect(self, image: np.ndarray) -> list[Detection]:
        if not self.any_angle:
            return self._detect_upright(image)
        found = []
        for turns in range(4):
            for face in self._detect_upright(np.ascontiguousarray(np.rot90(image, turns))):
                corners = unturn_points(face.box.reshape(2, 2), turns, image.shape)
                found.append(Detection(np.concatenate([corners.min(0), corners.max(0)]), face.score,
                                       unturn_points(face.keypoints, turns, image.shape), face.model, turns))
        kept: list[Detection] = []
        for face in sorted(found, key=lambda face: -face.score):  # the best turn of each face
            if not kept or not self._same_face(face.landmark_box(), np.stack([f.landmark_box() for f in kept])).any():
                kept.append(face)
        return kept

    def _detect_upright(self, image: np.ndarray) -> list[Detection]:
        faces: list[Detection] = []
        for runner in self.models:
            threshold = runner.spec.min_score if self.min_score is None else self.min_score
            for face in runner.run(image, threshold, self.iou):
                faces = self._merge(faces, face)
        return sorted(faces, key=lambda face: -face.score)

    def _same_face(self, box: np.ndarray, taken: np.ndarray) -> np.ndarray:
        """Which of `taken` are the face in `box`: IoU >= `iou` or containment above CONTAINED_SHARE."""
        return (box_iou(box, taken) >= self.iou) | (box_containment(box, taken) > CONTAINED_SHARE)

    def _merge(self, faces: list[Detection], face: Detection) -> list[Detection]:
        """`faces` with a later model's `face` (auto: short range's faces first, full range adding those it alone
        sees, such as small, distant ones). A face already kept by IoU >= `iou` or by containment (over
        CONTAINED_SHARE of the smaller box inside the other) is the same face, and the earlier model's box stays;
        except where the two meet by containment alone and the newcomer scores higher: short range can put one
        loose box around a small face in a group photo (box_containment's case), and the full-range box inside
        it is that face."""
        if not faces:
            return [face]
        box, taken = face.landmark_box(), np.stack([f.landmark_box() for f in faces])
        same = self._same_face(box, taken)
        if not same.any():
            return faces + [face]
        by_containment_alone = not (box_iou(box, taken) >= self.iou).any()
        if by_containment_alone and all(faces[i].score < face.score for i in np.flatnonzero(same)):
            return [f for f, s in zip(faces, same) if not s] + [face]
        return faces

    def __call__(self, image) -> list[tuple[np.ndarray, float]]:
        """[(68-landmark box estimate x0 y0 x1 y1 float32, score)], best first: the interface of the Haar
        detector callable that `LandmarkDetector` crops from, so this can replace it."""
        return [(face.landmark_box(), face.score) for face in self.detect(image)]
