"""One way to run a landmark model, Keras or TFLite, on face crops: `Predictor.from_path(path)`.

Evaluation, inference, the export checks and the benchmarks all go through it, so a `.keras` and its
`.tflite` are loaded, batched and decoded the same way. The TFLite path imports neither TensorFlow nor Keras
(a device has only numpy, OpenCV and tflite_runtime).
"""
from __future__ import annotations

import importlib
import os
import zipfile
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .errors import ConfigError, DataError, MissingFileError, ModelFileError
from .schemes import LandmarkScheme

OVERLAY_FACES = 16  # faces kept, with their crops, for the overlay plot
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")


def resolve_model_path(path: str | os.PathLike) -> str:
    """`path` itself when it exists (a run folder holding best.keras, as train.py and distill.py write it, stands
    for that file); otherwise, for a bare file name (`real_fast_fp16.tflite`) or one under
    `landmark_kd/pretrained/` (typed from outside the checkout), the shipped model of that name, so the shipped
    models can be named from any folder once the package is installed. Any other path stays as given and is
    reported missing by the loader: `runs/x/real_student.keras` that is not there is a mistake, not a request
    for the shipped model of the same name. A `pathlib.Path` is taken as its string: the loaders test suffixes."""
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "best.keras")):
        return os.path.join(path, "best.keras")
    if os.path.exists(path):
        return path
    folder = os.path.normpath(os.path.dirname(path)).replace(os.sep, "/")
    if folder not in (".", "landmark_kd/pretrained") and not folder.endswith("/landmark_kd/pretrained"):
        return path
    shipped = os.path.join(PRETRAINED_DIR, os.path.basename(path))
    return shipped if os.path.basename(path) and os.path.isfile(shipped) else path


def check_keras_file(path: str) -> None:
    """One clear line, without importing Keras, for a path that cannot be a .keras model: missing, a folder, a
    .tflite, or not a zip archive (Keras itself reports such a file as "not found")."""
    if os.path.isdir(path):
        raise MissingFileError(f"{path}: a folder, not a model file (a run folder stands for its best.keras, and "
                               "this one has none)")
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: model file not found")
    if path.lower().endswith(".tflite"):
        raise ModelFileError(f"{path}: a .tflite model; this needs the .keras model it was converted from")
    suffix = os.path.splitext(path)[1].lower()
    if suffix != ".keras":  # Keras 3 picks the format by the extension and loads nothing else of ours
        raise ModelFileError(f"{path}: not a model landmark_kd runs ({suffix or 'no extension'}); it runs .keras models "
                             "(train.py, distill.py) and their .tflite exports (convert.py)")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            looks = "; it is a TFLite flatbuffer: name it .tflite" if handle.read(8)[4:8] == b"TFL3" else ""
        raise ModelFileError(f"{path}: not a loadable .keras model (a .keras file is a zip archive, this is not "
                             f"one or is damaged{looks})")


@dataclass
class DatasetPrediction:
    """Predictions over an evaluation dataset, in the order the dataset yielded them."""

    landmarks: np.ndarray  # (M, N, 2) original-image pixels
    index: np.ndarray  # (M,) position of each face in the sample list
    affine: np.ndarray  # (M, 2, 3) image -> crop matrices
    overlay_crops: np.ndarray  # (K <= 16, S, S, 3) the first crops, for plots
    overlay_landmarks: np.ndarray  # (K, N, 2) their predictions in crop pixels


class Predictor:
    """Crops (B, S, S, 3) RGB in [0, 1] -> (B, N, 2) landmarks in crop pixels. Subclasses hold the model."""

    path: str | None = None
    image_size: int
    scheme: LandmarkScheme

    @staticmethod
    def from_path(path: str | os.PathLike, threads: int = 1, scheme: LandmarkScheme | str | None = None) -> "Predictor":
        """A `.tflite` (run by tflite_runtime, verified in a child process first) or a `.keras` model; a shipped
        model may be named by its file name alone (`resolve_model_path`). `scheme` (a .tflite's landmark layout:
        a LandmarkScheme, a built-in name or a .json file) overrides the `.scheme.json` beside the file; a .keras
        model carries its own."""
        path = resolve_model_path(path)
        if path.lower().endswith(".tflite"):
            return TFLitePredictor(path, threads, scheme)
        check_keras_file(path)  # missing, a folder or no zip: said before Keras is looked for
        try:
            importlib.import_module("keras")
        except ImportError:  # a device with only tflite_runtime
            raise ModelFileError(f"{path}: a .keras model needs TensorFlow, which is not installed here; run its "
                                 ".tflite export (convert.py) instead") from None
        from .models import float32_copy, load_model

        # a model trained with --mixed-precision computes in float16/bfloat16 as saved: slow on a CPU, and not
        # what its .tflite export (float32) computes
        predictor = KerasPredictor(float32_copy(load_model(path)))
        predictor.path = path
        if scheme is not None:  # a .keras model carries its layout: a different one given is a mistake
            from .schemes import get_scheme

            given = get_scheme(scheme)
            if (given.name, given.num_points) != (predictor.scheme.name, predictor.scheme.num_points):
                raise ConfigError(f"{path}: a .keras model carries its own landmark layout ({predictor.scheme.name}, "
                                  f"{predictor.scheme.num_points} points); the layout given ({given.name}, "
                                  f"{given.num_points} points) is only for a .tflite model")
        return predictor

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def gives_scores(self) -> bool:
        """Whether `predict_with_scores` gives peak shares (a .tflite exported before they were added does not)."""
        return False

    def predict_with_scores(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, N, 2) landmarks and (B, N) heatmap peak shares (`decode.peak_share`), or None for a model that
        does not give them."""
        return self(crops), None

    def checked_crops(self, crops: np.ndarray) -> np.ndarray:
        """`crops` as float32 (B, S, S, 3), or one DataError naming what was given: a single crop without its batch
        axis or one of another size died deep in the runtime (a Keras graph trace, a TFLite "Dimension
        mismatch"), and 0-255 pixels were taken for [0, 1] without a word."""
        crops = np.asarray(crops)
        size = self.image_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            one = " (one crop: crops[None])" if crops.shape == (size, size, 3) else ""
            raise DataError(f"crops of shape {crops.shape}: expected (B, {size}, {size}, 3){one}")
        if not np.issubdtype(crops.dtype, np.floating):
            raise DataError(f"crops of dtype {crops.dtype}: expected RGB floats in [0, 1] (0-255 pixels / 255)")
        return crops.astype(np.float32, copy=False)

    def predict_dataset(self, dataset: Iterable) -> DatasetPrediction:
        """Run over an evaluation `LandmarkPipeline.dataset` and map the landmarks back to image pixels."""
        from .decode import crop_to_image

        preds, indices, affines, crops, crop_preds = [], [], [], [], []
        for images, targets in dataset:
            images, affine = np.asarray(images), np.asarray(targets["affine"])
            crop_pred = self(images)
            preds.append(crop_to_image(crop_pred, affine))
            indices.append(np.asarray(targets["index"]))
            affines.append(affine)
            if sum(len(c) for c in crops) < OVERLAY_FACES:
                crops.append(images)
                crop_preds.append(crop_pred)
        return DatasetPrediction(np.concatenate(preds), np.concatenate(indices), np.concatenate(affines),
                                 np.concatenate(crops)[:OVERLAY_FACES], np.concatenate(crop_preds)[:OVERLAY_FACES])


class KerasPredictor(Predictor):
    """A Keras landmark model, run in batches of `batch_size` through one traced function."""

    def __init__(self, model, batch_size: int = 32):
        import tensorflow as tf

        from .models import model_image_size, model_scheme

        self.model, self.batch_size = model, batch_size
        self.image_size, self.scheme = model_image_size(model), model_scheme(model)

        @tf.function(reduce_retracing=True)
        def run(x):
            return model(x, training=False)["landmarks"]

        @tf.function(reduce_retracing=True)
        def run_with_heatmaps(x):
            out = model(x, training=False)
            return out["landmarks"], out["heatmaps"]

        self._run, self._run_with_heatmaps = run, run_with_heatmaps

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = self.checked_crops(crops)
        parts = [np.asarray(self._run(crops[i: i + self.batch_size]), np.float32)
                 for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.scheme.num_points, 2), np.float32)

    @property
    def gives_scores(self) -> bool:
        return isinstance(self.model.output, dict) and "heatmaps" in self.model.output

    def predict_with_scores(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        from .decode import peak_share

        crops = self.checked_crops(crops)
        if not self.gives_scores:
            return self(crops), None
        if not len(crops):
            return self(crops), np.zeros((0, self.scheme.num_points), np.float32)
        points, scores = [], []
        for i in range(0, len(crops), self.batch_size):
            landmarks, heatmaps = self._run_with_heatmaps(crops[i: i + self.batch_size])
            points.append(np.asarray(landmarks, np.float32))
            scores.append(peak_share(heatmaps))
        return np.concatenate(points), np.concatenate(scores)


class TFLitePredictor(Predictor):
    """A `.tflite` landmark model (path or bytes): one crop per invoke, int8 input/output handled."""

    def __init__(self, path_or_bytes, threads: int = 1, scheme: LandmarkScheme | str | None = None):
        from .export.tflite_runner import TFLiteLandmarkModel
        from .schemes import get_scheme

        scheme = None if scheme is None else get_scheme(scheme)  # a name ("68", "wflw") or a .json layout
        self.runner = TFLiteLandmarkModel(path_or_bytes, threads=threads, scheme=scheme)
        self.path = path_or_bytes if isinstance(path_or_bytes, str) else None
        self.image_size, self.scheme = self.runner.image_size, self.runner.scheme

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.predict_with_scores(crops)[0]

    @property
    def gives_scores(self) -> bool:
        return self.runner.score_output is not None

    def predict_with_scores(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        crops = self.checked_crops(crops)
        if not len(crops):  # as KerasPredictor answers no crops (np.stack of nothing raises)
            scores = np.zeros((0, self.scheme.num_points), np.float32) if self.gives_scores else None
            return np.zeros((0, self.scheme.num_points, 2), np.float32), scores
        return self.runner.predict(crops)
