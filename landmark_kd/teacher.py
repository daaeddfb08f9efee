"""The frozen teacher of distillation: one model, or an ensemble whose heatmaps are averaged, each optionally
averaged with its mirror-image prediction (flip test).

The teacher is trained once, so anything that makes its heatmaps better at training time is worth its extra
forward passes: on real faces, the shipped teacher and a distilled student, each averaged with its mirror-image
answer, beat the teacher alone by 4% (`benchmarks/real_faces.py --teacher`, figures in the model card).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError, MissingFileError
from .predictor import Predictor, resolve_model_path
from .schemes import LandmarkScheme


class Teacher:
    """Frozen models whose mean heatmaps (B, H, W, N) the student learns to copy."""

    def __init__(self, models: Sequence, flip_permutation: np.ndarray | None = None):
        """`flip_permutation` (the scheme's, new[i] = old[perm[i]]): also run each model on the mirrored batch,
        mirror its heatmaps back, swap left and right points, and average the two."""
        if not models:
            raise ConfigError("a teacher needs at least one model")
        self.models = list(models)
        for model in self.models:
            model.trainable = False
        self.flip_permutation = None if flip_permutation is None else np.asarray(flip_permutation, np.int32)
        self._view = None  # the first model with its head features as an output, made when first asked for

    @property
    def input_size(self) -> int:
        """The largest input side among the models: the crop size that gives every model its full detail."""
        from .models import model_image_size

        return max(model_image_size(model) for model in self.models)

    def heatmaps(self, x, size: Sequence[int] | None = None, large=None):
        """Mean teacher heatmaps for images `x` (B, S, S, 3) in [0, 1], resized to `size` (H, W) if given (else the
        first model's map size). `large`: the same crops cut at a larger size (`LandmarkPipeline.dataset`'s
        `teacher_size`). Each model sees the crops of its own input size, else the closest larger ones resized."""
        return self._forward(x, size, large, with_features=False)[0]

    def heatmaps_and_features(self, x, size: Sequence[int] | None = None, large=None):
        """(`heatmaps(x, size, large)`, the first model's head features (`models.with_head_features`) on the crops
        as they are): features of different models, or of a mirrored view, do not line up channel by channel, so
        they are never averaged."""
        return self._forward(x, size, large, with_features=True)

    @property
    def feature_channels(self) -> int:
        """How many channels `heatmaps_and_features` gives: the first model's head width."""
        return int(self._feature_view().output["features"].shape[-1])

    def _feature_view(self):
        if self._view is None:
            from .models import with_head_features

            self._view = with_head_features(self.models[0])
        return self._view

    def _forward(self, x, size, large, with_features: bool):
        import tensorflow as tf

        batch = tf.shape(x)[0]
        size = None if size is None else list(size)
        maps, features = [], None
        for i, model in enumerate(self.models):
            side = int(model.input_shape[1])
            source = large if large is not None and side > x.shape[1] else x
            tx = source if source.shape[1] == side else tf.image.resize(source, [side, side], antialias=True)
            if self.flip_permutation is not None:
                tx = tf.concat([tx, tf.reverse(tx, axis=[2])], axis=0)  # one forward pass for both views
            if with_features and i == 0:
                result = self._feature_view()(tx, training=False)
                features = tf.stop_gradient(tf.cast(result["features"][:batch], tf.float32))
            else:
                result = model(tx, training=False)
            out = tf.cast(result["heatmaps"], tf.float32)
            if self.flip_permutation is not None:
                mirrored = tf.gather(tf.reverse(out[batch:], axis=[2]), self.flip_permutation, axis=-1)
                out = 0.5 * (out[:batch] + mirrored)
            if size is None:
                size = list(out.shape[1:3])
            elif list(out.shape[1:3]) != size:
                out = tf.image.resize(out, size, method="bilinear")
            maps.append(out)
        mean = maps[0] if len(maps) == 1 else tf.add_n(maps) / float(len(maps))
        return tf.stop_gradient(mean), features


class TeacherPredictor(Predictor):
    """A `Teacher` as a `Predictor` (crops -> landmarks in crop pixels), decoded as the models decode their own
    heatmaps, so an ensemble can be scored like any model (`benchmarks/real_faces.py --teacher`). `crop_size`:
    cut the crops at this size instead of the first model's input (each model gets them scaled to its own)."""

    path = None

    def __init__(self, teacher: Teacher, crop_size: int | None = None):
        from .models import model_image_size, model_scheme

        self.teacher = teacher
        self.image_size = crop_size or model_image_size(teacher.models[0])
        self.scheme = model_scheme(teacher.models[0])

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        from .decode import heatmap_to_pixels, soft_argmax

        maps = self.teacher.heatmaps(tf.constant(np.asarray(crops, np.float32))).numpy()
        return heatmap_to_pixels(soft_argmax(maps), self.image_size // maps.shape[2]).astype(np.float32)


def teacher_paths(teacher: str | Sequence[str] | None) -> list[str]:
    """`TrainConfig.teacher` as a list of model paths (one path or several); a run folder holding best.keras
    (train.py's --output) stands for that file, and a shipped model may be named by its file name
    (`real_teacher.keras`), as `predictor.resolve_model_path` reads any model path."""
    if not teacher:
        return []
    paths = [teacher] if isinstance(teacher, str) else list(teacher)
    return [resolve_model_path(p) for p in paths]


def load_teacher(teacher: str | Sequence[str], scheme: LandmarkScheme, flip: bool = False) -> Teacher:
    """The models at `teacher` (one path or several), each checked to predict `scheme`."""
    from .models import load_model, model_scheme

    models = []
    for path in teacher_paths(teacher):
        model = load_model(path)
        t_scheme = model_scheme(model)
        if t_scheme.num_points != scheme.num_points or t_scheme.name != scheme.name:
            raise ConfigError(f"{path}: teacher predicts scheme {t_scheme.name!r} ({t_scheme.num_points} points), "
                              f"the student is set up for {scheme.name!r} ({scheme.num_points}); pass --scheme {t_scheme.name}")
        models.append(model)
    permutation = scheme.mirror_permutation("--teacher-flip") if flip else None
    return Teacher(models, permutation)


def check_teacher_files(teacher: str | Sequence[str]) -> None:
    """Every teacher file exists, checked before any work, with what to run if one is missing."""
    for path in teacher_paths(teacher):
        if os.path.isdir(path):
            raise MissingFileError(f"{path} is a folder without best.keras, not a teacher model; pass the teacher's "
                                   ".keras file or the run folder train.py wrote it to (runs/teacher holds "
                                   "runs/teacher/best.keras)")
        if not os.path.isfile(path):
            raise MissingFileError(f"no teacher at {path}. Train one first with `python train.py` (it writes "
                                   "runs/teacher/best.keras), pass --teacher PATH, or run the no-teacher ablation "
                                   "with --no-kd.")
