"""Face tracking for video: each face is followed from frame to frame through its own landmarks, so the face
detector runs only now and then.

Why: running the detector on every frame costs a detection per frame, and its box wobbles from frame to frame
on a noisy picture; the landmark crop, and so the landmarks, inherit that wobble. The landmark model itself
says where the face is: the bounding box of a frame's landmarks is the box the model's crop was trained around
(what `LandmarkDetector` crops from, and what `BlazeFaceDetector` estimates from its own box), so it is the
next frame's box. The box is held still while the landmark box overlaps it by IoU >= `hold_iou` (0.9: within
about 5% of the face size): moving it on every frame's noisy landmarks feeds the landmark noise back into the
crop and adds jitter (benchmarks/video_tracking.py's still astronaut clip, a partly trained 68-point teacher,
no smoothing: 0.50 px when the box follows every frame, 0.22 px held, 0.36 px with a detection every frame).
With a landmarker that aligns (`LandmarkDetector`'s default), the crop is also turned by the landmarks' eye line,
so a tilted head is upright in the crop as in training; the turn is held with the box while it changes by less
than `hold_roll` (5 degrees). A face the detector finds is cropped from its box (turned by the detector's eye
keypoints), then once more from a crop framed on those landmarks, as `LandmarkDetector` refines.
The detector runs only
- when there are no tracks (the first frame, or once every face is gone);
- every `redetect_every` frames, to pick up new faces and confirm the followed ones: detections are matched to
  tracks by IoU; a track no detection overlaps is dropped (it may have drifted onto background), a track whose
  landmark box disagrees with its detection is re-cropped from the detection box (drift correction) and keeps
  its id, unless the face found there has jumped in size or place from the track's last landmarks (a shot cut,
  another person in the same spot): that starts a new track, whose smoothing does not blend in the old face;
  a detection no track claims starts a new track;
- at once when the picture cuts to another shot: the mean absolute difference of two successive frames' 32x32
  grey thumbnails above `cut_change` grey levels (benchmarks/shot_cuts.py: 14 to 53 at cuts between real
  faces, under 0.2 between noisy frames of one shot; a fast pan or zoom can pass it too, which costs one
  detection). A face model answers a face-shaped set of points for any crop, so the landmarks of a crop left
  on the old face's place after a cut do not jump and the tracker would follow empty background until the next
  scheduled detection (benchmarks/shot_cuts.py: 94% mean error on the first frame after the cut, 78% on the
  next five). Every track is then matched afresh, as a lost one is;
- at once when a track looks lost: compared with the previous frame's, its landmark box (the model's own idea
  of where the face is) changed width or height by more than `max_scale_change`, or its centre moved by more
  than `max_shift` of its size; or it shrank below `min_size` pixels; or less than `min_inside` of it is still
  inside the image (the face is leaving the picture); or, where the landmarker has a `min_quality`, the mean
  peak share of its landmark heatmaps fell below it (the crop holds no face). Landmarks of a lost track are
  never output: the detection on that frame re-crops the face (same id when a detection overlaps the track) or
  the track is dropped. With `min_quality`, a detection whose landmarks fall below it starts or keeps no track.

Only numpy here (and `inference` / `face_detector`, which need OpenCV): it runs on devices with tflite_runtime and no TensorFlow.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import ConfigError
from .face_detector import as_rgb_uint8, iou_matrix
from .head_pose import HeadPose
from .inference import Face, OneEuroFilter

Detections = Sequence[tuple[np.ndarray, float]]  # [(box x0 y0 x1 y1, score), ...], as detectors return them


class Landmarker(Protocol):
    """What the tracker needs of `inference.LandmarkDetector`."""

    frames_by_landmarks: bool  # the model's crops were trained around its landmarks' own box
    min_quality: float | None  # faces whose mean landmark peak share is below it are no faces (None: no test)

    def find_faces(self, image: np.ndarray) -> Sequence[tuple[np.ndarray, float, float]]: ...

    def landmarks_and_scores(self, image: np.ndarray, boxes: Sequence, rolls: Sequence[float] | None = None
                             ) -> tuple[np.ndarray, np.ndarray | None]: ...

    def landmark_crop(self, landmarks: np.ndarray, roll: float = 0.0) -> tuple[np.ndarray, float]: ...

    def refine_pass(self, image: np.ndarray, landmarks: np.ndarray, rolls: Sequence[float],
                    scores: np.ndarray | None = None
                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, float]], list[bool], np.ndarray | None]: ...

    def pose_of(self, landmarks: np.ndarray, image_shape: Sequence[int]) -> HeadPose | None: ...


def landmark_box(points: np.ndarray) -> np.ndarray:
    """x0 y0 x1 y1 (float32) bounding box of (N, 2) points: the box a landmark crop is made around."""
    points = np.asarray(points, np.float32)
    return np.concatenate([points.min(0), points.max(0)])


def jump_reason(previous_box: np.ndarray, landmarks: np.ndarray, max_scale_change: float = 0.3,
                max_shift: float = 0.5) -> str | None:
    """Why finite `landmarks` cannot be the face whose landmark box was `previous_box` one frame earlier: their
    box changed width or height by more than `max_scale_change`, or its centre moved by more than `max_shift` of
    the previous size (None: they can be)."""
    x0, y0, x1, y1 = (float(v) for v in landmark_box(landmarks))
    w, h = x1 - x0, y1 - y0
    px0, py0, px1, py1 = (float(v) for v in previous_box)
    pw, ph = max(px1 - px0, 1e-6), max(py1 - py0, 1e-6)
    limit = 1.0 + max_scale_change
    if not (1 / limit <= w / pw <= limit and 1 / limit <= h / ph <= limit):
        return f"box changed from {pw:.0f}x{ph:.0f} to {w:.0f}x{h:.0f} px in one frame"
    shift = np.hypot((x0 + x1 - px0 - px1) / 2, (y0 + y1 - py0 - py1) / 2)
    if shift > max_shift * max(pw, ph):
        return f"box moved {shift:.0f} px in one frame"
    return None


class ShotCutDetector:
    """`detector(frame) -> bool`: whether a frame (RGB uint8) starts another shot than the one before it: the
    mean absolute difference of the two frames' 32x32 grey thumbnails above `change` grey levels (None or 0:
    never). See the module docstring for why tracking and smoothing need it, and the figures behind 12."""

    def __init__(self, change: float | None = 12.0):
        self.change = change
        self.reset()

    def reset(self) -> None:
        self._thumbnail: np.ndarray | None = None
        self.last_change: float | None = None  # the last frame's difference from the one before (None: first)

    def __call__(self, image: np.ndarray) -> bool:
        import cv2

        step = max(1, min(image.shape[:2]) // 256)  # every step-th pixel: a 1080p frame costs 0.7 ms, not 3.4
        sample = np.ascontiguousarray(image[::step, ::step])
        thumbnail = cv2.resize(cv2.cvtColor(sample, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
        previous, self._thumbnail = self._thumbnail, thumbnail.astype(np.float32)
        self.last_change = None if previous is None else float(np.abs(self._thumbnail - previous).mean())
        return bool(self.change) and self.last_change is not None and self.last_change > self.change


def greedy_pairs(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(row, column) pairs of an IoU matrix, best overlap first, each row and column used once, none below
    `min_iou`."""
    pairs, rows, columns = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        r, c = (int(i) for i in np.unravel_index(flat, iou.shape))
        if iou[r, c] < min_iou:
            break
        if r not in rows and c not in columns:
            pairs.append((r, c))
            rows.add(r)
            columns.add(c)
    return pairs


class DetectionSmoother:
    """One-Euro smoothing of faces detected afresh on every frame (`predict --no-track`). Each face takes the
    filter of the previous frame's face its box overlaps most (IoU >= `match_iou`), unless its landmarks jumped
    from that face's (`jump_reason`: another person) or the frame starts another shot, else a new one: detectors list faces by score,
    an order that changes from frame to frame, and a filter kept per place in that order would blend one
    person's landmarks into another's."""

    def __init__(self, match_iou: float = 0.3, filter_factory: Callable[[], OneEuroFilter] = OneEuroFilter,
                 cut_change: float | None = 12.0):
        self.match_iou, self.filter_factory = match_iou, filter_factory
        self.is_cut = ShotCutDetector(cut_change)
        self.previous: list[tuple[np.ndarray, np.ndarray, OneEuroFilter]] = []  # box, raw landmarks' box, filter

    def __call__(self, faces: Sequence[Face], dt: float, image: np.ndarray | None = None) -> list[Face]:
        """`faces` with their landmarks smoothed in place (and returned); `image`, their frame, lets a shot cut
        (`ShotCutDetector`) start every face's smoothing afresh."""
        if image is not None and self.is_cut(image):
            self.previous = []
        boxes = np.array([np.asarray(f.box, np.float32).reshape(4) for f in faces], np.float32).reshape(-1, 4)
        before = np.array([box for box, _, _ in self.previous], np.float32).reshape(-1, 4)
        iou = iou_matrix(boxes, before) if len(boxes) and len(before) else np.zeros((len(boxes), len(before)))
        taken = {i: j for i, j in greedy_pairs(iou, self.match_iou)
                 if np.all(np.isfinite(faces[i].landmarks)) and not jump_reason(self.previous[j][1], faces[i].landmarks)}
        filters = [self.previous[taken[i]][2] if i in taken else self.filter_factory() for i in range(len(faces))]
        raw = [landmark_box(face.landmarks) for face in faces]
        for face, smoother in zip(faces, filters):
            face.landmarks = smoother(face.landmarks, dt)
            face.pose = face.pose.refit(face.landmarks) if face.pose is not None else None  # of what is shown
        self.previous = list(zip(boxes, raw, filters))
        return list(faces)


@dataclass
class Track:
    """One followed face."""
    track_id: int
    landmarks: np.ndarray  # (N, 2) the model's latest landmarks, unsmoothed: the next crop box comes from them
    crop_box: np.ndarray  # the box this frame's landmarks were cropped from
    score: float  # the score of the detection that last confirmed it
    filter: OneEuroFilter | None  # per track, so smoothing never mixes two faces
    age: int = 0  # frames since the track started
    roll: float = 0.0  # radians the crop was turned by (the face's eye line, with a landmarker that aligns)
    landmark_scores: np.ndarray | None = None  # (N,) the latest landmarks' heatmap peak shares

    @property
    def box(self) -> np.ndarray:
        """Where the face is now: its landmarks' bounding box."""
        return landmark_box(self.landmarks)


class FaceTracker:
    """Landmarks of every face in a video, frame after frame, with stable track ids (see the module docstring).

    `landmarker` is an `inference.LandmarkDetector` (or anything with the members of `Landmarker`); `detect`
    replaces its detector (e.g. a fixed box). `fps` gives the One-Euro time
    step when `update` gets no `dt`."""

    def __init__(self, landmarker: Landmarker, redetect_every: int = 15, smooth: bool = True, fps: float = 30.0,
                 detect: Callable[[np.ndarray], Detections] | None = None, match_iou: float = 0.3,
                 confirm_iou: float = 0.5, hold_iou: float = 0.9, max_scale_change: float = 0.3,
                 max_shift: float = 0.5, min_size: float = 8.0, min_inside: float = 0.5,
                 filter_factory: Callable[[], OneEuroFilter] = OneEuroFilter, hold_roll: float = np.radians(5),
                 cut_change: float | None = 12.0):
        if int(redetect_every) < 1:
            raise ConfigError(f"redetect_every must be at least 1, got {redetect_every}")
        if not fps > 0:
            raise ConfigError(f"fps must be above 0, got {fps}")
        if not 0 < match_iou <= confirm_iou <= 1:
            raise ConfigError(f"need 0 < match_iou <= confirm_iou <= 1, got {match_iou}, {confirm_iou}")
        # (box, score, roll) per face: the landmarker's own detection, whose roll turns the first crop, or a
        # `detect` of (box, score) pairs taken as level
        self.landmarker, self.detect = landmarker, detect or landmarker.find_faces
        self.redetect_every, self.smooth, self.fps = int(redetect_every), smooth, float(fps)
        self.match_iou, self.confirm_iou, self.hold_iou, self.hold_roll = match_iou, confirm_iou, hold_iou, hold_roll
        self.max_scale_change, self.max_shift = max_scale_change, max_shift
        self.min_size, self.min_inside, self.filter_factory = min_size, min_inside, filter_factory
        self.is_cut = ShotCutDetector(cut_change)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video)."""
        self.tracks: list[Track] = []
        self.frame_index = -1
        self.detector_runs = 0  # how often the detector ran
        self.lost = 0  # how often a followed face looked lost (each forced a detection)
        self.low_quality = 0  # faces found below the landmarker's min_quality, left out (a followed one is `lost`)
        self.cuts = 0  # shot cuts seen (each forced a detection)
        self.is_cut.reset()
        self._next_detection = 0
        self._next_id = 0

    @property
    def tracks_started(self) -> int:
        """How many tracks (distinct ids) there have been since the last reset."""
        return self._next_id

    def crop(self, track: Track) -> tuple[np.ndarray, float]:
        """The next frame's crop (box, roll) for a track: framed on its landmarks, or the current crop while the
        two overlap by IoU >= hold_iou and their rolls differ by under `hold_roll` (see the module docstring: why
        the crop is held)."""
        box, roll = self.landmarker.landmark_crop(track.landmarks, track.roll)
        turn = abs((roll - track.roll + np.pi) % (2 * np.pi) - np.pi)
        if turn < self.hold_roll and iou_matrix(box, track.crop_box)[0, 0] >= self.hold_iou:
            return track.crop_box, track.roll
        return box, roll

    def loss_reason(self, previous_box: np.ndarray, landmarks: np.ndarray, image_shape: tuple,
                    scores: np.ndarray | None = None) -> str | None:
        """Why a track's new landmarks do not look like the same face as its previous landmark box, one frame
        earlier (None: they do). A face moves and changes size only a little between frames; a crop that no
        longer holds it gives landmarks that jump, collapse or wander off the picture, or (with the landmarker's
        `min_quality`) landmark peak `scores` as low as a crop of background gives."""
        if not np.all(np.isfinite(landmarks)):
            return "landmarks are not finite"
        if self.below_quality(scores):
            return f"landmark quality {float(np.mean(scores)):.3f} is below {self.landmarker.min_quality:g}"
        x0, y0, x1, y1 = (float(v) for v in landmark_box(landmarks))
        w, h = x1 - x0, y1 - y0
        if min(w, h) < self.min_size:
            return f"box {w:.0f}x{h:.0f} px is smaller than {self.min_size:g} px"
        jump = self.jump_reason(previous_box, landmarks)
        if jump:
            return jump
        height, width = image_shape[:2]
        inside = max(0.0, min(x1, width) - max(x0, 0.0)) * max(0.0, min(y1, height) - max(y0, 0.0))
        if inside < self.min_inside * w * h:
            return "box is leaving the image"
        return None

    def below_quality(self, scores: np.ndarray | None) -> bool:
        """Whether landmarks of these peak scores hold no face by the landmarker's `min_quality` (never without
        one, or without scores)."""
        floor = getattr(self.landmarker, "min_quality", None)
        return floor is not None and scores is not None and float(np.mean(scores)) < floor

    def jump_reason(self, previous_box: np.ndarray, landmarks: np.ndarray) -> str | None:
        """Why finite `landmarks` cannot be the face of `previous_box` one frame later (`jump_reason`, with this
        tracker's limits): the test for a followed face that looks lost, and for a face found again after it: one
        that jumped is another face (a shot cut, another person in the same spot)."""
        return jump_reason(previous_box, landmarks, self.max_scale_change, self.max_shift)

    def update(self, image: np.ndarray, dt: float | None = None) -> list[Face]:
        """The faces in the next frame (RGB uint8 (H, W, 3)), each with its track id; `dt` is the seconds since
        the previous frame (default 1 / fps), for the One-Euro filters."""
        image = as_rgb_uint8(image)  # grey and RGBA frames too
        self.frame_index += 1
        dt = 1.0 / self.fps if dt is None else float(dt)
        crops = [self.crop(track) for track in self.tracks]
        followed, followed_scores = (self.landmarker.landmarks_and_scores(image, [b for b, _ in crops],
                                                                           [r for _, r in crops])
                                     if self.tracks else ([], None))
        followed_scores = [None] * len(followed) if followed_scores is None else followed_scores
        lost = [self.loss_reason(track.box, points, image.shape, scores) is not None
                for track, points, scores in zip(self.tracks, followed, followed_scores)]
        self.lost += sum(lost)
        if self.is_cut(image):
            self.cuts += 1
            lost = [True] * len(self.tracks)  # another shot: no track's crop can be trusted to hold its face
            for track in self.tracks:  # and no smoothing blends across the cut, whichever ids survive it
                track.filter = self.filter_factory() if self.smooth else None
        if not self.tracks or any(lost) or self.frame_index >= self._next_detection:
            self._detect(image, crops, followed, followed_scores, lost)
        else:
            for track, (box, roll), points, scores in zip(self.tracks, crops, followed, followed_scores):
                track.landmarks, track.crop_box, track.roll, track.age = points, box, roll, track.age + 1
                track.landmark_scores = scores
        faces = []
        for track in self.tracks:
            points = track.filter(track.landmarks, dt) if track.filter is not None else track.landmarks
            points = np.asarray(points, np.float32)
            faces.append(Face(track.crop_box, points, track.score, track.track_id,
                              self.landmarker.pose_of(points, image.shape), track.landmark_scores))
        return faces

    def _detect(self, image: np.ndarray, crops: list, followed, followed_scores, lost: list[bool]) -> None:
        """Run the detector and match its faces to the tracks (see the module docstring)."""
        self.detector_runs += 1
        self._next_detection = self.frame_index + self.redetect_every
        found = [(face[0], face[1], face[2] if len(face) > 2 else 0.0) for face in self.detect(image)]
        boxes = np.array([np.asarray(b, np.float32).reshape(4) for b, _, _ in found], np.float32).reshape(-1, 4)
        # where each track's face is now: its new landmarks' box; when it looked lost, its previous landmark box or
        # the box those were cropped from, whichever overlaps a detection more
        now = [track.box if gone else landmark_box(points) for track, points, gone in zip(self.tracks, followed, lost)]
        iou = iou_matrix(np.array(now, np.float32).reshape(-1, 4), boxes)
        for t, gone in enumerate(lost):
            if gone:
                iou[t] = np.maximum(iou[t], iou_matrix(self.tracks[t].crop_box, boxes)[0])
        pairs = greedy_pairs(iou, self.match_iou)
        used_boxes = {d for _, d in pairs}
        kept, recrop = [], []
        for t, d in pairs:
            track = self.tracks[t]
            track.score = float(found[d][1])
            if not lost[t] and iou[t, d] >= self.confirm_iou:  # confirmed: keep following it
                track.landmarks, (track.crop_box, track.roll), track.age = followed[t], crops[t], track.age + 1
                track.landmark_scores = followed_scores[t]
                kept.append(track)
            else:  # drifted or lost, but the detector still sees the face: re-crop from the detection
                recrop.append((track, d))
        recrop += [(None, d) for d in range(len(found)) if d not in used_boxes]
        if recrop:
            # from the detection's box (turned by its roll), then once more from a crop framed on those landmarks
            # (as LandmarkDetector refines): the detector's box only approximates the framing the model knows
            points, scores = self.landmarker.landmarks_and_scores(image, [boxes[d] for _, d in recrop],
                                                                  [found[d][2] for _, d in recrop])
            framed = [(boxes[d], found[d][2]) for _, d in recrop]
            if self.landmarker.frames_by_landmarks:  # not for a 51-point model (no jaw)
                points, crops, ok, scores = self.landmarker.refine_pass(image, points, [roll for _, roll in framed],
                                                                        scores)
                # a face whose landmarks collapsed keeps its detection's crop (and answer)
                framed = [crop if good else first for crop, good, first in zip(crops, ok, framed)]
            scores = [None] * len(recrop) if scores is None else scores
            for (track, d), face_points, face_scores, (box, roll) in zip(recrop, points, scores, framed):
                if self.below_quality(face_scores):  # a false face, or the track's face is gone from the box
                    self.low_quality += 1
                    continue
                if track is not None and np.all(np.isfinite(face_points)) and self.jump_reason(track.box, face_points):
                    # the detection overlaps where the track was, but the face found there is not the track's
                    # face one frame on (a shot cut, another person stepping in): a new id, and a fresh filter
                    # that does not pull the new face towards the old one
                    track = None
                if track is None:
                    track = Track(self._next_id, face_points, box, float(found[d][1]),
                                  self.filter_factory() if self.smooth else None)
                    self._next_id += 1
                else:
                    track.age += 1
                track.landmarks, track.crop_box, track.roll = face_points, box, roll
                track.landmark_scores = face_scores
                kept.append(track)
        self.tracks = sorted(kept, key=lambda track: track.track_id)  # unmatched tracks are dropped
