"""Landmarks on whole images: face detection -> square crop -> landmark model -> image pixels.

`LandmarkDetector` takes a `.keras` or `.tflite` landmark model (by default the shipped real-face student).
Faces come from MediaPipe's BlazeFace (`detector="blazeface"`, the default: short- and full-range models
shipped in `landmark_kd/assets`, run by tflite_runtime), OpenCV's Haar cascade (`"haar"`, a choice for when
BlazeFace misses a face, never taken automatically), boxes you pass, or any callable `image -> [(box, score), ...]`;
`detector="full"` treats the whole image as one face (pre-cropped input).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from .crop import CROP_MARGIN, MAX_REFINE, box_crop_matrix, eye_line_roll, upright_box, warp_square
from .decode import crop_to_image, mirror_points
from .errors import ConfigError, DataError, MissingFileError
from .head_pose import POSE_SCHEMES, HeadPose, draw_pose_axes, head_pose
from .predictor import PRETRAINED_DIR, Predictor, resolve_model_path

Box = Sequence[float]  # x0, y0, x1, y1 in image pixels


@dataclass
class Face:
    """One detected face: its box, its landmarks in image pixels, the detector score, its track id, for 68-
    and 51-point models its head pose (`head_pose.HeadPose`: yaw, pitch, roll in degrees), and each landmark's
    heatmap peak share (`decode.peak_share`; None from a model that does not give it)."""
    box: np.ndarray  # (4,) x0, y0, x1, y1
    landmarks: np.ndarray  # (N, 2) image pixels
    score: float
    track_id: int | None = None  # set by `tracking.FaceTracker`: the same face keeps its id across frames
    pose: HeadPose | None = None
    landmark_scores: np.ndarray | None = None  # (N,)

    @property
    def quality(self) -> float | None:
        """The mean peak share of the landmarks: low when the crop holds no face, or a face the model finds hard
        (README, "Landmark quality"); comparable between faces run by one model only."""
        return None if self.landmark_scores is None else float(np.mean(self.landmark_scores))

    def to_dict(self) -> dict:
        out = {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
               "landmarks": np.round(np.asarray(self.landmarks, np.float64), 2).tolist()}  # float64: no 132.17999267578125
        if self.quality is not None:
            out["quality"] = round(self.quality, 4)
        if self.track_id is not None:
            out["track_id"] = int(self.track_id)
        if self.pose is not None:
            out["head_pose"] = self.pose.to_dict()
        return out


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade; scores are the cascade's level weights."""

    def __init__(self, min_size: int = 40, scale_factor: float = 1.1, min_neighbors: int = 5):
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"{path}: OpenCV's Haar cascade could not be loaded")
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors
        self._lock = threading.Lock()  # OpenCV does not promise one cascade object is safe across threads

    def __call__(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        with self._lock:
            boxes, _, weights = self.cascade.detectMultiScale3(grey, self.scale_factor, self.min_neighbors,
                                                               minSize=(self.min_size, self.min_size),
                                                               outputRejectLevels=True)
        out = []
        for (x, y, w, h), weight in zip(boxes, np.ravel(weights) if len(boxes) else []):
            out.append((np.array([x, y, x + w, y + h], np.float32), float(weight)))
        return sorted(out, key=lambda item: -item[1])


FACE_DETECTORS = ("blazeface", "auto", "short", "full_range", "haar")


def make_face_detector(name: str, any_angle: bool = False) -> Callable[[np.ndarray], list[tuple[np.ndarray, float]]]:
    """A detector `image_rgb -> [(box, score)]` by name: BlazeFace ("blazeface" = "auto", "short", "full_range"),
    whose boxes are its 68-landmark box estimates, or OpenCV's Haar cascade ("haar", its raw box). `any_angle`
    (BlazeFace only): also find faces on their side or upside down."""
    if name not in FACE_DETECTORS:
        raise ConfigError(f"face detector {name!r}: expected one of {', '.join(FACE_DETECTORS)}")
    if name == "haar":
        if any_angle:
            raise ConfigError("the any-angle search needs a BlazeFace detector, not haar")
        return HaarFaceDetector()
    from .face_detector import BlazeFaceDetector

    return BlazeFaceDetector({"blazeface": "auto", "full_range": "full"}.get(name, name), threads=1, any_angle=any_angle)


crop_affine = box_crop_matrix  # the training pipeline's evaluation crop
LANDMARK_FRAMED_SCHEMES = ("68", "98")  # layouts whose points outline the face: their box is the crop's box


DEFAULT_MODEL_NAME = "real_student_fp16.tflite"  # int8 is ~8x slower on x86 tflite_runtime 2.14


def default_model_path() -> str:
    """The shipped real-face student (see landmark_kd/pretrained/README.md): what runs when no model is given."""
    path = os.path.join(PRETRAINED_DIR, DEFAULT_MODEL_NAME)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: the shipped model is missing from this installation; pass a model path")
    return path


MAX_BOX_TO_IMAGE = 10  # a face box at most this many times the image's longer side (a close-up overfills it)


def checked_box(box: Box, image_shape: Sequence[int]) -> np.ndarray:
    """`box` as float32 x0 y0 x1 y1, or DataError when it is not four finite numbers, has no area, lies wholly
    outside the image (its crop would be blank and its landmarks made up) or is absurdly larger than the image
    (a typo: its crop would be a smear of one pixel). A box partly outside is kept (faces cut by the border)."""
    try:
        values = np.asarray(box, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"box {box!r}: expected four numbers x0 y0 x1 y1") from None
    if values.size != 4:
        raise DataError(f"box {box!r}: expected four numbers x0 y0 x1 y1, got {values.size}")
    x0, y0, x1, y1 = (float(v) for v in values)
    text = f"box {x0:g} {y0:g} {x1:g} {y1:g}"
    if not np.all(np.isfinite(values)):
        raise DataError(f"{text}: every corner must be a finite number")
    height, width = image_shape[:2]
    if not (x1 > x0 and y1 > y0):
        raise DataError(f"{text}: X1 > X0 and Y1 > Y0 needed")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise DataError(f"{text} lies outside the {width}x{height} image")
    if max(x1 - x0, y1 - y0) > MAX_BOX_TO_IMAGE * max(width, height):
        raise DataError(f"{text} is over {MAX_BOX_TO_IMAGE} times the size of the {width}x{height} image")
    return np.array([x0, y0, x1, y1], np.float32)


def checked_boxes(boxes: Sequence[Box], image_shape: Sequence[int]) -> list[np.ndarray]:
    """`checked_box` for each of a list of boxes; four bare numbers (one box not put in a list) are named as
    such rather than read as four boxes."""
    if len(boxes) == 4 and all(np.isscalar(v) for v in boxes):
        raise DataError(f"boxes {list(boxes)!r}: a list of boxes is expected; one face's box is [[x0, y0, x1, y1]]")
    return [checked_box(b, image_shape) for b in boxes]


def whole_image_face(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """`detector="full"`: the whole image as one face, its box through the corner pixels' centres (as the landmarks'
    box is taken). A one-pixel image has no such box: a DataError naming its size, not a division by zero."""
    height, width = image.shape[:2]
    if max(width, height) < 2:
        raise DataError(f"a {width}x{height} image is too small to be one face (detector 'full')")
    return [(np.array([0, 0, width - 1, height - 1], np.float32), 1.0)]


def _checked_detections(found, detector) -> list[tuple[np.ndarray, float]]:
    """A face detector's answer as [(box (4,) float32, score)], or a ConfigError saying what a user's callable
    returned instead (unchecked, a bare box or a 3-number one died deep inside as an unpacking error)."""
    name = getattr(detector, "__name__", type(detector).__name__)
    try:
        items = list(found)
    except TypeError:
        raise ConfigError(f"detector {name}: must return a list of (box [x0, y0, x1, y1], score), got "
                          f"{type(found).__name__}") from None
    checked = []
    for item in items:
        try:
            box, score = item
            checked.append((np.asarray(box, np.float32).reshape(4), float(score)))
        except (TypeError, ValueError):
            raise ConfigError(f"detector {name}: each face must be (box [x0, y0, x1, y1], score), got "
                              f"{repr(item)[:80]}") from None
    return checked


class LandmarkDetector:
    """Faces -> landmarks in image pixels. With no `model_path`, the shipped real-face student (fp16 .tflite),
    which needs only numpy, OpenCV and tflite_runtime."""

    def __init__(self, model_path: str | os.PathLike | Predictor | None = None, detector: str | Callable = "blazeface",
                 threads: int = 1, margin: float = CROP_MARGIN, scheme=None, align: bool = True, flip_test: bool = False,
                 refine: int | None = None, any_angle: bool = False, min_quality: float | None = None):
        """`model_path`: a .keras or .tflite file, or a ready `Predictor`. `scheme`: a .tflite's landmark layout (a
        built-in name or a .json file), where no `.scheme.json` lies beside it. `threads`: TFLite threads; 1 by default
        because a second thread only pays while the other core is idle, and costs several times the latency when
        it is not (README, "Deploying on a board"). `align`: turn each crop upright by the detector's eye-keypoint
        roll (BlazeFace only). `flip_test`: also run each crop mirrored and average the two answers (the research
        codes' flip test): 1-2% lower NME on real faces for twice the model time. `refine`: passes that crop each
        detected face again around its own landmarks (the framing the model was trained on), turned upright by
        their eye line when `align` is on; each costs one more model run per face (README, "Rotated and tilted
        faces"). The default is 1 for 68- and 98-point models, whose landmarks outline the face; 0 for others (a
        51-point model has no jaw, and was trained on the 68 points' box). Boxes given to `__call__` are refined
        too: a box from another detector or a hand-drawn one frames the face differently from the training crops,
        and one pass makes the answer independent of that framing (README, "Your own face boxes"); `refine=0`
        crops each given box once, as research evaluation protocols do.
        `any_angle` (a BlazeFace detector): also find faces lying on their side or upside down, for four times
        the detector's time. `min_quality`: faces the detector finds whose `Face.quality` is below it are left
        out (counted in `low_quality_faces`): a detector's false faces on background give low quality; the scale
        is the model's own (README, "Landmark quality"). Boxes given to `__call__` are kept whatever their
        quality: the caller said a face is there."""
        if refine is not None and (not isinstance(refine, (int, np.integer)) or isinstance(refine, bool)
                                   or not 0 <= refine <= MAX_REFINE):
            raise ConfigError(f"refine must be a whole number of passes from 0 to {MAX_REFINE}, got {refine!r}")
        if not isinstance(margin, (int, float, np.number)) or not np.isfinite(margin) or margin < 0:
            raise ConfigError(f"margin must be a number of 0 or more (the fraction the crop grows around the face "
                              f"box; the models were trained with {CROP_MARGIN}), got {margin!r}")
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"threads must be a whole number of at least 1, got {threads!r}")
        if min_quality is not None and (isinstance(min_quality, bool) or not isinstance(min_quality, (int, float, np.number))
                                        or not 0 <= min_quality < 1):
            raise ConfigError(f"min_quality must be a number from 0 to below 1 (a mean heatmap peak share), got "
                              f"{min_quality!r}")
        # what a pickled detector is rebuilt from: a worker process loads its own interpreter (one cannot be pickled)
        self._init_args = None if isinstance(model_path, Predictor) else (
            model_path, detector, threads, margin, scheme, align, flip_test, refine, any_angle, min_quality)
        if isinstance(model_path, Predictor):  # a ready predictor (e.g. TeacherPredictor)
            self.predictor, model_path = model_path, getattr(model_path, "path", None) or type(model_path).__name__
        else:
            model_path = resolve_model_path(model_path or default_model_path())
            self.predictor = Predictor.from_path(model_path, threads=threads, scheme=scheme)
        self.model_path, self.margin, self.align = model_path, margin, align
        self.image_size, self.scheme = self.predictor.image_size, self.predictor.scheme
        if min_quality is not None and not getattr(self.predictor, "gives_scores", False):
            raise ConfigError(f"min_quality: {model_path} gives no landmark quality (a .tflite exported before it was "
                              "added: export it again with convert.py)")
        self.min_quality = min_quality
        self.low_quality_faces = 0  # faces the detector found that min_quality left out
        self._count_lock = threading.Lock()
        # the crop was trained around the landmarks' own box only where they outline the face (jaw included)
        self.frames_by_landmarks = self.scheme.name in LANDMARK_FRAMED_SCHEMES
        if refine and not self.frames_by_landmarks:
            raise ConfigError(f"refinement crops around the landmarks' box, the framing of 68- and 98-point models; "
                              f"this {self.scheme.num_points}-point model ({self.scheme.name}) was trained on another box")
        self.refine = (1 if self.frames_by_landmarks else 0) if refine is None else refine
        self.flip_permutation = self.scheme.mirror_permutation("flip test") if flip_test else None
        if any_angle and detector not in FACE_DETECTORS:
            raise ConfigError(f"the any-angle search needs a BlazeFace detector, not {detector!r}")
        if detector in FACE_DETECTORS:
            self.detector = make_face_detector(detector, any_angle)
        elif detector == "full":
            self.detector = whole_image_face
        elif callable(detector):
            self.detector = detector
        else:
            raise ConfigError(f"detector must be one of {', '.join(repr(d) for d in FACE_DETECTORS)}, 'full' or a "
                              f"callable, got {detector!r}")

    def __reduce__(self):
        """Pickled as its constructor's arguments, so multiprocessing and web-server workers can be handed one: each
        process loads the model again (a TFLite interpreter or a Keras model cannot be pickled)."""
        if self._init_args is None:
            raise TypeError("a LandmarkDetector built on a ready Predictor cannot be pickled: build one in each "
                            "process from a model path instead")
        return type(self), self._init_args

    def detect_faces(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        return _checked_detections(self.detector(image), self.detector)

    def find_faces(self, image: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        """[(box, score, roll)] for the faces in an RGB uint8 image: the detector's 68-landmark boxes and, with
        `align` and BlazeFace, the roll (radians) of its eye keypoints that the first crop is turned by; else 0."""
        if self.align and hasattr(self.detector, "detect"):  # BlazeFace: its eye keypoints give the roll
            return [(d.landmark_box(), d.score, d.eye_angle()) for d in self.detector.detect(image)]
        return [(box, score, 0.0) for box, score in self.detect_faces(image)]

    def landmark_crop(self, landmarks: np.ndarray, roll: float = 0.0) -> tuple[np.ndarray, float]:
        """The crop (box, roll) that frames a face as training did, from its landmarks: their box in the face's
        upright frame, turned by their eye line (`align` on and the scheme has eye corners), else by `roll`
        (0 with `align` off). What a refinement pass and the video tracker crop from."""
        corners = self.scheme.outer_eye_corners
        roll = (eye_line_roll(landmarks, corners) if corners else roll) if self.align else 0.0
        return upright_box(landmarks, roll), roll

    def resample(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """`image` cropped by the 2x3 `matrix` to the model's input size; a face far larger than the crop is
        block-averaged first (`crop.warp_square`): bilinear sampling alone aliases it."""
        return warp_square(image, matrix, self.image_size)

    def crops_for_boxes(self, image: np.ndarray, boxes: Sequence[Box], rolls: Sequence[float] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """The model's input for K boxes (K >= 1) in one RGB uint8 image: (K, S, S, 3) crops in [0, 1] and their
        (K, 2, 3) image -> crop matrices; `rolls` (radians per box) turn each crop upright."""
        rolls = [0.0] * len(boxes) if rolls is None else rolls
        affines = np.stack([crop_affine(b, self.image_size, self.margin, r) for b, r in zip(boxes, rolls)])
        crops = np.stack([self.resample(image, m) for m in affines]).astype(np.float32) / 255.0
        return crops, affines

    def landmarks_for_boxes(self, image: np.ndarray, boxes: Sequence[Box], rolls: Sequence[float] | None = None
                            ) -> np.ndarray:
        """(K, N, 2) image-pixel landmarks for K boxes in one RGB uint8 image; `rolls` (radians per box) turn
        each crop upright first."""
        return self.landmarks_and_scores(image, boxes, rolls)[0]

    def landmarks_and_scores(self, image: np.ndarray, boxes: Sequence[Box], rolls: Sequence[float] | None = None
                             ) -> tuple[np.ndarray, np.ndarray | None]:
        """`landmarks_for_boxes` and the (K, N) heatmap peak shares of those landmarks (None from a model that
        does not give them); with the flip test, the mean of both runs'."""
        if len(boxes) == 0:  # no model run (a custom predictor need not take an empty batch)
            return np.zeros((0, self.scheme.num_points, 2), np.float32), None
        crops, affines = self.crops_for_boxes(image, boxes, rolls)
        pred, scores = self._predict(crops)
        if self.flip_permutation is not None:
            mirrored, mirrored_scores = self._predict(np.ascontiguousarray(crops[:, :, ::-1]))
            pred = 0.5 * (pred + mirror_points(mirrored, self.image_size, self.flip_permutation))
            if scores is not None:
                scores = 0.5 * (scores + mirrored_scores[:, self.flip_permutation])
        return crop_to_image(pred, affines), scores

    def _predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The predictor's landmarks and peak shares; a plain callable put in its place gives no shares."""
        if hasattr(self.predictor, "predict_with_scores"):
            return self.predictor.predict_with_scores(crops)
        return self.predictor(crops), None

    def refine_pass(self, image: np.ndarray, landmarks: np.ndarray, rolls: Sequence[float],
                    scores: np.ndarray | None = None
                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, float]], list[bool], np.ndarray | None]:
        """One refinement pass over K faces: (K, N, 2) landmarks found again from crops framed on `landmarks`
        (`landmark_crop`, turned by their eye line or else by `rolls`), those crops, which faces were framed
        (landmarks collapsed to under 2 px frame no crop, and such a face keeps its answer and its `scores`), and
        the (K, N) peak shares of the answers (None from a model without them)."""
        crops = [self.landmark_crop(p, r) for p, r in zip(landmarks, rolls)]
        framed = [max(box[2] - box[0], box[3] - box[1]) >= 2 for box, _ in crops]
        usable = [i for i, ok in enumerate(framed) if ok]
        landmarks = np.array(landmarks, np.float32)
        if usable:
            found, found_scores = self.landmarks_and_scores(image, [crops[i][0] for i in usable],
                                                            [crops[i][1] for i in usable])
            landmarks[usable] = found
            if found_scores is None:
                scores = None
            else:
                scores = (np.zeros((len(landmarks), found_scores.shape[1]), np.float32) if scores is None
                          else np.array(scores, np.float32))
                scores[usable] = found_scores
        return landmarks, crops, framed, scores

    def refined_landmarks(self, image: np.ndarray, landmarks: np.ndarray, rolls: Sequence[float] | None = None,
                          passes: int | None = None, scores: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray | None]:
        """(K, N, 2) landmarks after `passes` refinement passes (default `self.refine`, see `refine_pass`), and
        their (K, N) peak shares (`scores`, those of the given landmarks, where no pass ran)."""
        landmarks = np.asarray(landmarks, np.float32)
        rolls = [0.0] * len(landmarks) if rolls is None else list(rolls)
        for _ in range(self.refine if passes is None else passes):
            landmarks, crops, framed, scores = self.refine_pass(image, landmarks, rolls, scores)
            if not any(framed):
                break
            rolls = [roll for _, roll in crops]
        return landmarks, scores

    def __call__(self, image: np.ndarray, boxes: Sequence[Box] | None = None) -> list[Face]:
        """Every face in an RGB uint8 image (H, W, 3; grey and RGBA are taken too), or in each of `boxes` (image
        pixels, [x0, y0, x1, y1]) when given."""
        from .face_detector import as_rgb_uint8

        if isinstance(image, (str, os.PathLike)):  # np.asarray would make it a 0-d array, named by its dtype only
            raise DataError(f"{os.fspath(image)}: a path, not an image; pass the RGB uint8 array "
                            "(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))")
        image = as_rgb_uint8(image)
        if boxes is not None:
            found = [(box, 1.0, 0.0) for box in checked_boxes(boxes, image.shape)]
        else:
            found = self.find_faces(image)
        rolls = [roll for _, _, roll in found]
        landmarks, scores = self.landmarks_and_scores(image, [b for b, _, _ in found], rolls)
        if self.refine and len(found):
            landmarks, scores = self.refined_landmarks(image, landmarks, rolls, scores=scores)
        scores = [None] * len(found) if scores is None else scores
        faces = [Face(b, lm, s, pose=self.pose_of(lm, image.shape), landmark_scores=sc)
                 for (b, s, _), lm, sc in zip(found, landmarks, scores)]
        if boxes is None and self.min_quality is not None:
            kept = [face for face in faces if face.quality >= self.min_quality]
            with self._count_lock:
                self.low_quality_faces += len(faces) - len(kept)
            faces = kept
        return faces

    @property
    def gives_pose(self) -> bool:
        """Whether this model's layout holds the 51 inner points of 68 that the head pose is fitted to."""
        return self.scheme.name in POSE_SCHEMES

    def pose_of(self, landmarks: np.ndarray, image_shape: Sequence[int]) -> HeadPose | None:
        """The head pose of one face's landmarks in an image of `image_shape` (H, W, ...): None for layouts
        without the 51 inner points of 68 (`head_pose.POSE_SCHEMES`), or landmarks it cannot fit."""
        if not self.gives_pose or len(landmarks) not in (68, 51):
            return None
        try:
            return head_pose(landmarks, (int(image_shape[1]), int(image_shape[0])))
        except DataError:  # NaN landmarks of a collapsed crop: no pose rather than no answer
            return None

    @property
    def gives_chips(self) -> bool:
        """Whether the model's layout names the eyes, nose tip and mouth corners that `chip` aligns by."""
        from .face_chips import FIVE_POINT_GROUPS

        return self.scheme.name in FIVE_POINT_GROUPS

    def chip(self, image: np.ndarray, face: Face, size: int = 112, padding: float = 0.0) -> np.ndarray:
        """`face` of `image` aligned for a face recogniser: a `size` x `size` chip with its eyes, nose tip and
        mouth corners on ArcFace's reference points (`face_chips.face_chip`; `padding` adds room around it)."""
        from .face_chips import face_chip

        return face_chip(image, face.landmarks, self.scheme, size, padding)

    def predict_batch(self, images: Sequence[np.ndarray],
                      boxes: Sequence[Sequence[Box] | None] | None = None) -> list[list[Face]]:
        """Faces for each image; `boxes`, when given, is one list of boxes per image (None: find its faces)."""
        if boxes is not None and len(boxes) != len(images):
            raise ConfigError(f"boxes: {len(boxes)} list(s) of boxes for {len(images)} image(s); give one list per "
                              "image (None for an image whose faces are to be found)")
        return [self(img, None if boxes is None else boxes[i]) for i, img in enumerate(images)]


class OneEuroFilter:
    """Speed-adaptive low-pass filter (Casiez et al., CHI 2012): steady landmarks stop jittering, fast ones
    do not lag."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    @staticmethod
    def _alpha(cutoff, dt: float):
        return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        """`x` smoothed, `dt` seconds after the previous call. A dt of 0 (two frames with one timestamp) is the
        filter's limit: no time passed, so the value holds; unchecked it divided 0 by 0, and the NaN stayed in the
        filter's state for every later frame. A negative or non-finite dt is a DataError."""
        x = np.asarray(x, np.float64)
        if not (np.isfinite(dt) and dt >= 0):
            raise DataError(f"dt {dt!r}: the seconds since the previous frame must be a finite number of 0 or more")
        if self.x is None or self.x.shape != x.shape:
            self.x, self.dx = x, np.zeros_like(x)
            return x.astype(np.float32)
        if dt == 0:
            return self.x.astype(np.float32)
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        return self.x.astype(np.float32)


MARK_SIZE_DIVISOR = 80  # landmark dot radius = face box side / this (at least 1 px)


def draw_faces(image: np.ndarray, faces: list[Face], pose_axes: bool = False) -> np.ndarray:
    """A copy of RGB `image` with each face box and its landmarks drawn, and with `pose_axes` the head pose's
    axes from the nose tip of each face that has one (`head_pose.draw_pose_axes`).

    Marks are sized by each face, not by the image: a dot sized for the picture covers the eyes and lips of a
    small face in a group photo, and the overlay is there to judge the points by eye."""
    out = image.copy()
    reach = 4 * max(image.shape[:2])  # coordinates beyond this draw nothing; clipped so OpenCV takes them
    for face in faces:
        box = np.nan_to_num(np.asarray(face.box, np.float64), nan=0.0)
        x0, y0, x1, y1 = (int(round(v)) for v in np.clip(box, -reach, reach))
        radius = min(max(1, int(round(max(x1 - x0, y1 - y0) / MARK_SIZE_DIVISOR))), max(image.shape[:2]))
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 200, 0), radius)
        points = np.asarray(face.landmarks, np.float64)
        for x, y in np.clip(points[np.all(np.isfinite(points), axis=1)], -reach, reach):
            cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 255, 0), -1, cv2.LINE_AA)
        if pose_axes and face.pose is not None:
            draw_pose_axes(out, face.pose, points, thickness=radius)
    return out
