"""The one training pipeline behind `train.py` (teacher) and `distill.py` (student).

`TrainConfig` says what to train; `run_training` loads the data, builds the model and fits it with the
Keras pieces in `trainer.py` (the loss-computing `LandmarkTrainer`, per-epoch scoring and checkpoints, the
resumable backup). The command-line flags that fill a `TrainConfig` live in `cli.py`.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError, MissingFileError, OutputError, TrainingDivergedError
from .outputs import read_json, remove_dead_temporaries
from .evaluate import score_lines
from .predictor import DatasetPrediction
from .schemes import LandmarkScheme

if TYPE_CHECKING:  # TensorFlow loads with the data pipeline, after the flags are checked
    from .data.pipeline import PipelineConfig
    from .data.records import LoadReport, Sample


# What distill.py trains (and `TrainConfig.student` returns): the MobileViT-v2 student with a light 64-channel head,
# 12 epochs, distilled with alpha 1 from train.py's teacher. The teacher's defaults are TrainConfig's own.
STUDENT_DEFAULTS = dict(preset="mobilevitv2_050", output="runs/student", head_dim=64, learning_rate=2e-3, alpha=1.0,
                        epochs=12, teacher=os.path.join("runs", "teacher", "best.keras"))


@dataclass
class TrainConfig:
    """Defaults train the quick teacher on the synthetic set in 35 to 80 minutes on a 2-core CPU: 32 epochs, well
    past the student's 12, because a SwinV2 from scratch needs them to end clearly stronger than the student it
    teaches (at 24 epochs its lead was within the rerun spread).
    `TrainConfig.student()` starts from distill.py's defaults instead."""

    preset: str = "swinv2_nano"
    scheme: str = "68"
    image_size: int = 128
    head_dim: int = 96
    head_convs: int = 2
    light_head: bool | None = None  # None: light for MobileViT-v2, full for SwinV2
    pretrained: str | None = None
    init_from: str | None = None  # a trained .keras of the same architecture to fine-tune (e.g. a shipped model)
    train_data: str | list[str] | None = None  # None: the embedded synthetic faces; several paths are pooled
    val_data: str | None = None
    data_format: str = "auto"
    images_root: str | None = None
    synthetic_root: str = "data/synthetic"
    synthetic_train: int = 2000
    synthetic_test: int = 300
    epochs: int = 32
    batch_size: int = 16
    steps_per_epoch: int | None = None
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    # Per-variable gradient-norm clip. Under tf.distribute Keras clips each replica's gradient before the
    # all-reduce, so with clipping active a multi-replica step differs slightly from a one-device step.
    clipnorm: float | None = 5.0
    warmup_epochs: float = 1.0
    sigma: float = 1.5
    star_weight: float = 1.0
    star_w: float = 1.0
    star_dist: str = "smoothl1"
    point_weight: float = 10.0
    edge_weight: float = 10.0
    mixed_precision: str = "no"  # no, mixed_float16, mixed_bfloat16
    strategy: str = "auto"  # auto, one_device, mirrored, multiworker (landmark_kd.distribute)
    xla: bool = False
    # Untraced train steps: a debugger or print() sees each step; slower per step, but no tracing at the start
    # (a run of a step or two starts in half the time). Same arithmetic, so not a setting a resume compares.
    run_eagerly: bool = False
    seed: int = 0
    output: str = "runs/teacher"
    resume: bool = False
    restart: bool = False
    normalization: str | None = None
    threshold: float = 0.1
    # distillation
    teacher: str | list[str] | None = None  # several paths: an ensemble, its heatmaps averaged
    teacher_flip: bool = False  # average each teacher's heatmaps with its mirror-image prediction
    alpha: float = 0.0
    kd_mode: str = "l2"
    kd_normalize: bool = True
    feature_kd: float = 0.0  # weight of feature-level L_KD (ChannelDistillationLoss on the head's features); 0: off
    feature_kd_tau: float = 4.0  # its softmax temperature
    augment: bool = True
    augmentation: str = "auto"  # synthetic, real (PipelineConfig.real_photos) or auto: real unless synthetic data
    pose_balance: bool = False  # repeat turned faces in the training list (data.pose_balance), same steps per epoch
    unlabeled: str | None = None  # folder of unlabelled photos: the student also learns L_KD on them
    verbose: int | None = None

    @classmethod
    def student(cls, **changes) -> "TrainConfig":
        """distill.py's defaults (STUDENT_DEFAULTS) with `changes`: `TrainConfig()` alone is the teacher's setup,
        so a library user building the student starts here, as distill.py does. `alpha=0` (the no-KD ablation)
        drops the default teacher, which that run never uses."""
        defaults = dict(STUDENT_DEFAULTS)
        if changes.get("alpha", defaults["alpha"]) == 0:
            defaults["teacher"] = None
        return cls(**{**defaults, **changes})

    def check_teacher(self, has_teacher: bool) -> None:
        """L_KD (alpha > 0) and unlabelled photos, whose only loss is L_KD, both need a teacher."""
        if self.alpha > 0 and not has_teacher:
            raise ConfigError(f"alpha={self.alpha:g} weights L_KD, which needs a teacher model (config.teacher)")
        if self.unlabeled and not (has_teacher and self.alpha > 0):
            raise ConfigError("unlabelled photos need a teacher and alpha > 0: L_KD is the only loss on them")
        if self.feature_kd > 0 and not (has_teacher and self.alpha > 0):
            raise ConfigError(f"feature_kd={self.feature_kd:g} adds feature distillation to L_KD: it needs a teacher "
                              "and alpha > 0")
        if self.teacher_flip and not has_teacher:
            raise ConfigError("teacher_flip (--teacher-flip) averages a teacher's heatmaps, and this run has no teacher")


def _mean_shape_baseline(mean_shape: np.ndarray, val_result: DatasetPrediction, val_samples, scheme,
                         config: TrainConfig) -> float:
    """NME of always predicting `mean_shape` (the mean training shape in crop pixels): the floor a model must
    beat. Uses the validation crops' matrices of the final prediction, so the set is not decoded again."""
    from .decode import crop_to_image
    from .evaluate import evaluate_predictions

    affine = val_result.affine
    pred = crop_to_image(np.repeat(mean_shape[None], len(affine), 0), affine)
    metrics, _ = evaluate_predictions(pred, val_result.index, val_samples, scheme, config.normalization,
                                      config.threshold)
    return metrics["nme"]


def resolve_data(config: TrainConfig) -> TrainConfig:
    """A copy of `config` naming the data it will use: with no --train-data, the embedded synthetic faces
    (generated once, for this seed) and their test split."""
    if config.train_data is not None:
        return config
    from .data.synthetic import ensure_default_dataset

    train_path, val_path = ensure_default_dataset(config.synthetic_root, config.synthetic_train, config.synthetic_test,
                                                  seed=config.seed)
    return dataclasses.replace(config, train_data=train_path, val_data=config.val_data or val_path)


def load_data(config: TrainConfig, scheme: LandmarkScheme, skipped_file: str | None = None
              ) -> tuple[list[Sample], list[Sample]]:
    """(train, validation) samples of a resolved config; bad ones skipped and counted, the counts printed (the
    first five of each set named), and every skipped record written to `skipped_file` when there are any."""
    from .data import DatasetError, LoadReport, load_dataset

    paths = [config.train_data] if isinstance(config.train_data, str) else list(config.train_data)
    train, reports, sets = [], [], []
    for path in paths:
        samples, report = load_dataset(path, config.data_format, scheme.num_points, config.images_root)
        train += samples
        reports.append((path, report))
        sets.append(samples)
    from .metrics import drop_unnormalisable

    if config.val_data:
        val, val_report = load_dataset(config.val_data, config.data_format, scheme.num_points, config.images_root)
    else:  # hold out 10% of the training set, deterministically
        if len(train) < 2:  # the one face would be held out, leaving nothing to train on
            raise DatasetError(f"{', '.join(paths)}: {len(train)} usable face(s), too few to hold 10% out for "
                               "validation; pass --val-data")
        order = np.random.default_rng(config.seed).permutation(len(train))
        cut = max(1, len(train) // 10)
        val = [train[i] for i in order[:cut]]
        train = [train[i] for i in order[cut:]]
        val_report = LoadReport()
    val = drop_unnormalisable(val, scheme, config.normalization, val_report)
    if not val:
        raise DatasetError(f"{config.val_data or 'held-out validation faces'}: no face can be scored "
                           f"({val_report.skipped[0][0]}: {val_report.skipped[0][1]})")
    for path, report in reports:
        print(f"train {path}: {report.summary()}")
    if config.val_data or val_report.skipped:
        print(f"val   {config.val_data or 'held out'}: {val_report.summary()}")
    skipped = [{"set": "train", "record": src, "reason": why} for _, report in reports for src, why in report.skipped]
    skipped += [{"set": "val", "record": src, "reason": why} for src, why in val_report.skipped]
    if skipped and skipped_file:
        from .outputs import atomic_json

        atomic_json(skipped_file, {"skipped": skipped})
        print(f"every skipped record: {skipped_file} ({len(skipped)})")
    _warn_pooled_copies(paths, sets)
    if config.val_data:  # a validation face the model trained on makes the score (and the best checkpoint) flatter
        copies = _copied_images([s.image_path for s in val], [s.image_path for s in train])
        shared = [s for s in val if s.image_path in copies]
        if shared:
            print(f"warning: {len(shared)} of the {len(val)} validation faces' images are also training images "
                  f"(first: {shared[0].image_path}); the validation score will look better than it is")
    else:
        print(f"val   held out: {len(val)} faces, 10% of the training faces picked at random; near-duplicates "
              "(frames of one video, one person's photos) fall on both sides: pass --val-data for a fair score")
    return train, val


def record_skipped(skipped_file: str, set_name: str, report: LoadReport) -> None:
    """Add `report`'s skipped records to `skipped_file` (load_data's list) as set `set_name`, replacing that
    set's entries from an earlier load (a resumed run loads again) and keeping the other sets'."""
    from .outputs import atomic_json

    earlier = read_json(skipped_file)
    entries = earlier.get("skipped") if isinstance(earlier, dict) else None
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("set") == set_name)] if isinstance(
        entries, list) else []
    entries += [{"set": set_name, "record": src, "reason": why} for src, why in report.skipped]
    if report.skipped or earlier is not None:
        atomic_json(skipped_file, {"skipped": entries})
    if report.skipped:
        print(f"every skipped record: {skipped_file} ({len(entries)})")


def _warn_pooled_copies(paths: list[str], sets: list[list]) -> None:
    """Pooled training sets that hold the same images (one folder passed twice, a folder and its subfolder, a
    copy) train those faces twice per epoch, which the user rarely means: say so, naming one."""
    for i in range(1, len(sets)):
        earlier = [s.image_path for samples in sets[:i] for s in samples]
        copies = _copied_images([s.image_path for s in sets[i]], earlier)
        if copies:
            first = next(s.image_path for s in sets[i] if s.image_path in copies)
            print(f"warning: {len(copies)} of the {len({s.image_path for s in sets[i]})} images of {paths[i]} are "
                  f"also in an earlier --train-data set (first: {first}); their faces count twice per epoch")


def _copied_images(val_paths: list[str], train_paths: list[str]) -> set[str]:
    """The validation images that are training images: the same file, or a copy of one (same bytes; only files
    of equal size are read, so this costs little)."""
    import hashlib

    def digest(path: str) -> str | None:
        try:
            with open(path, "rb") as handle:
                return hashlib.sha1(handle.read()).hexdigest()
        except OSError:
            return None

    def size(path: str) -> int:
        try:
            return os.path.getsize(path)
        except OSError:
            return -1

    real = {os.path.realpath(p) for p in train_paths}
    by_size: dict[int, list[str]] = {}
    for path in real:
        by_size.setdefault(size(path), []).append(path)
    found, digests = set(), {}
    for path in val_paths:
        if os.path.realpath(path) in real:
            found.add(path)
            continue
        same_size = by_size.get(size(path), [])
        mine = digest(path) if same_size else None
        if mine is not None:
            for other in same_size:
                if other not in digests:
                    digests[other] = digest(other)
            if mine in {digests[o] for o in same_size}:
                found.add(path)
    return found


def _check_decodable(pipeline, train_samples, val_ds, val_samples, config: TrainConfig) -> np.ndarray:
    """Images can pass the load-time checks and still fail to decode; the pipeline drops those. If it would drop
    them all, the repeated training set would spin forever and scoring would fail after an epoch: say so now.
    Returns the mean shape (crop pixels) of the first 512 training faces that decode, for the mean-shape
    baseline; one pass over `val_ds`, the validation set as the run scores it, counts what decodes there."""
    from .data import DatasetError
    from .decode import normalised_to_pixels

    cfg, num_val = pipeline.config, len(val_samples)
    # The pipeline drops undecodable images before batching: 8 batches of 64 are the first 512 that decode (a set
    # with fewer is read to its end, and one with none raises below).
    batches = pipeline.dataset(train_samples, 64, training=False).take(8)
    shapes = [t["landmarks"].numpy() for _, t in batches]
    if not shapes:
        raise DatasetError(f"{config.train_data}: none of the {len(train_samples)} training images could be decoded")
    decoded = {int(i) for _, t in val_ds for i in t["index"].numpy()}
    if not decoded:
        raise DatasetError(f"{config.val_data or 'validation faces'}: none of the {num_val} validation images "
                           "could be decoded")
    if len(decoded) < num_val:
        lost = [val_samples[i].image_path for i in range(num_val) if i not in decoded]
        print(f"warning: {len(lost)} validation image(s) passed the load checks but cannot be decoded (first: "
              f"{lost[0]}); they are left out of the scores")
    return normalised_to_pixels(np.concatenate(shapes).mean(0), cfg.heatmap_size, cfg.heatmap_stride)


def pipeline_config(config: TrainConfig, synthetic: bool, scheme: LandmarkScheme) -> PipelineConfig:
    """Drawn faces keep the original augmentation; real photographs get the paper's real-photo recipe. A `scheme`
    (the layout trained) that names no flip pairs is not mirrored: with no points swapped, a mirrored face would
    teach each left point at its right counterpart's place (a layout of your own whose JSON leaves out
    "flip_pairs")."""
    from .data.pipeline import PipelineConfig

    kind = config.augmentation if config.augmentation != "auto" else ("synthetic" if synthetic else "real")
    if kind not in ("synthetic", "real"):
        raise ConfigError(f"augmentation must be auto, synthetic or real, got {config.augmentation!r}")
    flip = bool(scheme.flip_pairs)
    if not flip and config.augment:
        print(f"note: scheme {scheme.name!r} names no flip_pairs, so faces are not mirrored in training (add "
              "\"flip_pairs\" to the layout to have them mirrored)")
    if kind == "real":
        return PipelineConfig.real_photos(image_size=config.image_size, sigma=config.sigma, flip=flip)
    return PipelineConfig(image_size=config.image_size, sigma=config.sigma, flip=flip)


def _without_unused_teacher(config: TrainConfig) -> TrainConfig:
    """alpha 0 weights L_KD by nothing: a teacher named anyway would only cost a forward pass per step and put
    its name in metrics.json, so it is left out, and said so (distill.py refuses --no-kd with --teacher)."""
    if config.alpha > 0 or not config.teacher:
        return config
    from .teacher import teacher_paths

    print(f"alpha is 0: training without a teacher ({', '.join(teacher_paths(config.teacher))} not loaded)")
    return dataclasses.replace(config, teacher=None, teacher_flip=False)


def run_training(config: TrainConfig) -> dict:
    """Train a landmark model, or distil `config.teacher` into one when `config.alpha` > 0; returns the final
    metrics dict. Writes to `config.output`, which it holds locked for the run (a second run is refused)."""
    from .outputs import output_lock, prepare_output_dir

    if config.resume and config.restart:  # refused before anything is deleted: --restart would remove the run
        raise ConfigError("--resume and --restart contradict each other: --resume continues the interrupted run, "
                          "--restart deletes it")
    if config.xla and config.run_eagerly:  # Keras would drop XLA with a warning a CLI user never sees
        raise ConfigError("--xla and --run-eagerly contradict each other: XLA compiles the traced train step, "
                          "--run-eagerly runs it untraced")
    config = _without_unused_teacher(config)
    config.check_teacher(bool(config.teacher))
    from .models.landmark_model import check_image_size

    check_image_size(config.preset, config.image_size)  # before any data is loaded
    if config.train_data is not None:  # the synthetic faces are not generated: their flags would be ignored
        unused = [f"--{name.replace('_', '-')} {getattr(config, name)}"
                  for name in ("synthetic_train", "synthetic_test", "synthetic_root")
                  if getattr(config, name) != getattr(TrainConfig, name)]
        if unused:
            raise ConfigError(f"{', '.join(unused)}: the synthetic faces are used only without --train-data, which "
                              "is given; drop the flag")
    from .data import check_images_root

    sets = config.train_data if isinstance(config.train_data, (list, tuple)) else [config.train_data]
    check_images_root(config.images_root, [*sets, config.val_data], config.data_format)
    if config.pose_balance:
        from .metrics import yaw_points
        from .schemes import get_scheme

        yaw_points(get_scheme(config.scheme), "--pose-balance")  # refused before any work
    if config.init_from and config.pretrained:  # copy_weights replaces every weight: the backbone would be thrown away
        raise ConfigError(f"--init-from {config.init_from} replaces every weight, so the --pretrained backbone "
                          f"{config.pretrained} would be loaded and discarded: pass one of them")
    if config.init_from:
        from .predictor import resolve_model_path

        config = dataclasses.replace(config, init_from=resolve_model_path(config.init_from))  # a run folder: best.keras
        if os.path.isdir(config.init_from):
            raise MissingFileError(f"{config.init_from}: a folder without best.keras, not a model to start from "
                                   "(--init-from takes a .keras file or the run folder holding it as best.keras)")
        if not os.path.isfile(config.init_from):
            raise MissingFileError(f"{config.init_from}: no model to start from (--init-from)")
    if config.unlabeled and not os.path.isdir(config.unlabeled):  # before the output folder is made
        raise MissingFileError(f"{config.unlabeled}: " + ("a file; --unlabeled takes a folder of face photos"
                                                          if os.path.exists(config.unlabeled)
                                                          else "no such folder (--unlabeled)"))
    if config.pretrained:  # a missing or unusable checkpoint is refused before the data loads, not after
        from .models.transformers_import import check_checkpoint

        check_checkpoint(config.pretrained, config.preset)
    _refuse_data_folder_as_output(config)
    _refuse_foreign_folder(config.output)
    created = _first_missing_folder(config.output)
    out = prepare_output_dir(config.output)
    try:
        with output_lock(out):
            return _run_training(config, out)
    except BaseException:
        if created:  # a refused (or interrupted) run leaves no empty folder behind it; one with files stays
            _remove_empty_folders(out, created)
        raise


def _refuse_data_folder_as_output(config: TrainConfig) -> None:
    """--output may not be a folder of the training or validation data: checkpoints, logs and plots would land
    among the images (and a 300-W folder is read whole, so the next run would search them for faces)."""
    from .outputs import refuse_input_folder

    sets = config.train_data if isinstance(config.train_data, (list, tuple)) else [config.train_data]
    paths = [p for p in [*sets, config.val_data, config.unlabeled] if isinstance(p, str) and os.path.exists(p)]
    folders = {p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in paths}
    refuse_input_folder(config.output, folders, flag="--output")


def _is_run_record(path: str) -> bool:
    """Whether `path` is a config.json a training run wrote (its TrainConfig fields)."""
    record = read_json(path)
    return isinstance(record, dict) and {"preset", "image_size", "scheme", "epochs"} <= set(record)


def _refuse_foreign_folder(out: str) -> None:
    """An --output that holds files named as a run's (metrics.json, last.keras, logs/...) without a run's
    config.json is someone else's folder: a run would replace those files and --restart delete them."""
    if not os.path.isdir(out) or _is_run_record(os.path.join(out, "config.json")):
        return
    # skipped.json alone: a run stopped while loading its data (before config.json), whose record it is
    clashing = [name for name in RUN_FILES if name != "skipped.json" and os.path.lexists(os.path.join(out, name))]
    if clashing:
        record = ("a config.json that no training run wrote" if "config.json" in clashing else
                  "no training run's config.json")
        raise OutputError(f"{out}: holds {', '.join(clashing)} and {record}: a run would replace them; pass another "
                          "--output (nothing was changed)")


def _remove_tensorboard_logs(logs: str) -> None:
    """--restart: TensorBoard's train/ and validation/ event folders and event files go, anything else a user
    put in logs/ stays (and so does logs/ while it holds something)."""
    for name in os.listdir(logs):
        path = os.path.join(logs, name)
        if name in ("train", "validation") and os.path.isdir(path):
            shutil.rmtree(path)
        elif name.startswith("events.out.tfevents") and os.path.isfile(path):
            os.remove(path)
    if not os.listdir(logs):
        os.rmdir(logs)


def _first_missing_folder(path: str) -> str | None:
    """The outermost folder of `path` that does not exist yet (what `prepare_output_dir` will create)."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing


def _remove_empty_folders(path: str, top: str) -> None:
    """Remove `path` and its parents up to `top` while they are empty (what this run created and left unused)."""
    path = os.path.abspath(path)
    while True:
        try:
            os.rmdir(path)
        except OSError:
            return
        if path == top:
            return
        path = os.path.dirname(path)


def _evaluate_command(out: str, best: str) -> str:
    """The evaluate command that scores `best` on the data its run validated on (from the run's config.json):
    without --data, evaluate would score it on the drawn faces."""
    import shlex

    started = read_json(os.path.join(out, "config.json"))
    words = ["python", "-m", "landmark_kd.evaluate", "--model", best]
    if isinstance(started, dict) and isinstance(started.get("val_data"), str):
        words += ["--data", started["val_data"]]
        for flag, name, default in (("--data-format", "data_format", "auto"), ("--images-root", "images_root", None),
                                    ("--normalization", "normalization", None)):
            if started.get(name) not in (default, None):
                words += [flag, str(started[name])]
    return shlex.join(words)


# The TrainConfig fields that make a model's weights: an interrupted run resumes only into the same.
ARCHITECTURE_FIELDS = ("preset", "image_size", "scheme", "head_dim", "head_convs", "light_head")


def _refuse_to_overwrite(config: TrainConfig, out: str, backup_dir: str) -> None:
    """A run never trains over another's results. A finished run (its best.keras, no backup to resume) is kept
    unless --restart; an interrupted run resumes only with the architecture it was started with (its
    config.json): its backup would not load into another, and its best.keras would pass for the new model's."""
    best = os.path.join(out, "best.keras")
    if not os.path.isdir(backup_dir):
        if os.path.exists(best):
            done = os.path.exists(os.path.join(out, "metrics.json"))
            hint = "" if done else f" (its final report is missing: `{_evaluate_command(out, best)}` scores it)"
            raise ConfigError(f"{out} holds a finished run{hint}; pass --restart to train over it, or another "
                              "--output")
        return
    started = read_json(os.path.join(out, "config.json"))
    if not isinstance(started, dict):
        return  # no record of the interrupted run's flags: the backup's own check decides
    asked = dataclasses.asdict(config)
    changed = [f"{name} {started[name]!r} -> {asked[name]!r}" for name in ARCHITECTURE_FIELDS
               if name in started and started[name] != asked[name]]
    if changed:
        raise ConfigError(f"{out} holds an interrupted run with another architecture ({', '.join(changed)}); "
                          "pass its flags to resume it, --restart to start over, or another --output")


# What a run writes into its --output (the unlabelled photos' face boxes are a cache, valid for any run, and stay).
RUN_FILES = ("backup", "best.keras", "last.keras", "best.json", "metrics.json", "ced.png", "predictions.png", "logs",
             "skipped.json", "config.json")


def _check_restart(out: str, needed: list[str]) -> None:
    """--restart: a model this run still needs (`needed`: --init-from, --teacher) among the earlier run's files is
    refused rather than deleted."""
    doomed = {os.path.realpath(os.path.join(out, name)) for name in RUN_FILES}
    for path in needed:
        if os.path.realpath(path) in doomed:
            raise ConfigError(f"{path}: --restart would delete this model, which this run needs; copy it out of "
                              f"{out} first")


def _clear_earlier_run(out: str, names: tuple[str, ...] = RUN_FILES) -> None:
    """--restart: the earlier run's files (`names` of RUN_FILES) go before this run writes its own, so that an
    interrupted restart never leaves its new best.keras beside the old run's metrics.json, nor TensorBoard two
    runs' curves in one log folder; and only once the data, teacher and model have loaded, so that a restart
    refused for bad input (data of another point count, a teacher that does not load) keeps the earlier run."""
    removed = []
    for name in names:
        path = os.path.join(out, name)
        if name == "logs" and os.path.isdir(path):
            _remove_tensorboard_logs(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed.append(name + ("/" if name in ("backup", "logs") else ""))
    if removed:
        print(f"--restart: removed the earlier run's {', '.join(removed)} from {out}")


def _remove_dead_writes(out: str, backup_dir: str) -> None:
    """What killed runs left half-written (under the run lock, so no live writer's): a checkpoint's or the backup's
    temporary copy, and a finished run's backup renamed for deletion but not yet deleted. Each kill during a save
    used to leave one behind for good, as large as the checkpoint (the backup's: with the optimiser's slots)."""
    removed = remove_dead_temporaries(out, RUN_FILES + ("unlabeled_boxes.json",))
    removed += [os.path.join("backup", name) for name in remove_dead_temporaries(backup_dir, None)]
    for name in os.listdir(out):
        if name.startswith("backup.done-") and os.path.isdir(os.path.join(out, name)):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
            removed.append(name + "/")
    if removed:
        print(f"removed what killed runs left half-written in {out}: {', '.join(removed)}")


# Flags that only say how to start or report a run; a resumed run's weights come from its backup.
_NOT_SETTINGS = ("output", "resume", "restart", "verbose", "init_from", "pretrained", "run_eagerly")


def _changed_on_resume(started: dict, record: dict) -> dict:
    """{flag: [what the run had, what it resumes with]}, earlier resumes' changes kept, printed as a warning: the
    epochs before the resume were trained with the old values (a new --lr or --epochs also reshapes the rest of
    the schedule), so config.json alone would misstate the run."""
    now = {name: [started[name], value] for name, value in record.items()
           if name in started and name not in _NOT_SETTINGS and started[name] != value}
    if now:
        print("warning: resuming with other settings than the run had: " +
              ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in now.items()) +
              " (recorded as changed_on_resume in config.json)")
    changed = dict(started.get("changed_on_resume") or {})
    for name, (old, new) in now.items():
        changed[name] = [changed[name][0] if name in changed else old, new]  # from the first value to the last
    return changed


def _file_sha1(path: str) -> str:
    """The SHA-1 of a file's bytes (read in 1 MiB pieces: a teacher can be hundreds of MB)."""
    import hashlib

    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_training(config: TrainConfig, out: str) -> dict:
    import keras
    import tensorflow as tf

    from .data.pipeline import LandmarkPipeline
    from .evaluate import evaluate_predictions, write_report
    from .models import HeadConfig, build_landmark_model, copy_weights, load_model, model_image_size
    from .schemes import get_scheme
    from .trainer import EvaluateAndCheckpoint, LandmarkTrainer, ResumableBackup, StopOnDivergence, WarmupCosineDecay

    backup_dir = os.path.join(out, "backup")
    if config.restart:
        from .teacher import teacher_paths

        _check_restart(out, [p for p in [config.init_from, *teacher_paths(config.teacher)] if p])
        _clear_earlier_run(out, ("skipped.json",))  # the list this run's data loading writes; the rest goes later
    else:
        _refuse_to_overwrite(config, out, backup_dir)
    _remove_dead_writes(out, backup_dir)
    if config.resume and not os.path.isdir(backup_dir):
        raise MissingFileError(f"{backup_dir}: nothing to resume (no interrupted run in {out})")
    # a backup folder without weights is a start killed in its first epoch (the folder is made before training,
    # so that such a start is never taken for a finished run): it starts over
    backup = ResumableBackup(backup_dir)
    resuming = not config.restart and os.path.isdir(backup_dir) and backup.holds_weights()
    started = None
    if resuming:
        print(f"Resuming the interrupted run from {backup_dir} (use --restart to start over)")
        started = read_json(os.path.join(out, "config.json"))
    elif not config.restart:  # --restart removes these with the rest of the earlier run, once the model is built
        if os.path.isdir(backup_dir):
            print(f"an earlier start in {out} stopped before its first epoch ended: starting over")
        if os.path.exists(os.path.join(out, "best.json")):
            os.remove(os.path.join(out, "best.json"))  # a finished earlier run's best score must not gate this one
        logs = os.path.join(out, "logs")
        if any(os.path.isdir(os.path.join(logs, name)) for name in ("train", "validation")):
            # a start stopped before its first backup: its curves would sit beside this run's, both from step 0
            _remove_tensorboard_logs(logs)
            print(f"removed the TensorBoard logs of an earlier start in {out} that stopped before its first epoch "
                  "ended")

    from .distribute import check_xla, global_batch, make_strategy

    strategy = make_strategy(config.strategy)  # first: a multi-worker strategy needs a runtime not yet started
    replicas = strategy.num_replicas_in_sync
    global_batch(config.batch_size, replicas, config.strategy)  # before the data loads
    check_xla(config.xla, config.mixed_precision, len(tf.config.list_logical_devices("GPU")))
    keras.utils.set_random_seed(config.seed)
    scheme = get_scheme(config.scheme)
    teacher = None
    if config.teacher:
        from .teacher import load_teacher

        with strategy.scope():
            teacher = load_teacher(config.teacher, scheme, config.teacher_flip)
    synthetic = config.train_data is None
    config = resolve_data(config)
    train_samples, val_samples = load_data(config, scheme, os.path.join(out, "skipped.json"))
    pipeline = LandmarkPipeline(scheme, pipeline_config(config, synthetic, scheme))
    light = config.light_head if config.light_head is not None else config.preset.startswith("mobilevit")
    # a batch larger than the set would repeat faces, or hold memory for a batch never filled
    config = dataclasses.replace(config, batch_size=global_batch(config.batch_size, replicas, config.strategy,
                                                                 len(train_samples)))
    steps = config.steps_per_epoch or max(1, len(train_samples) // config.batch_size)
    total_steps = steps * config.epochs
    warmup = int(config.warmup_epochs * steps)
    schedule = WarmupCosineDecay(
        0.0 if warmup else config.learning_rate, max(1, total_steps - warmup), alpha=0.01,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
    val_ds = pipeline.dataset(val_samples, config.batch_size, training=False)
    mean_shape = _check_decodable(pipeline, train_samples, val_ds, val_samples, config)
    train_list = train_samples
    if config.pose_balance:
        from .data.pose_balance import pose_balanced

        train_list = pose_balanced(train_samples, scheme)
        print(f"pose balance: {len(train_samples)} faces -> {len(train_list)} in the training list (turned faces "
              f"repeated), {steps} steps per epoch as without it")
    # A teacher with a larger input than the student gets its own crops of the same faces, not upsampled ones.
    teacher_size = teacher.input_size if teacher is not None and teacher.input_size > config.image_size else None
    if teacher_size:
        print(f"teacher input {teacher_size}px: it sees each face cut at {teacher_size}px, the student at "
              f"{config.image_size}px (same augmentation)")
    train_ds = pipeline.dataset(train_list, config.batch_size, training=True, seed=config.seed, repeat=True,
                                augment=config.augment, teacher_size=teacher_size)
    if config.unlabeled:
        from .data import LoadReport
        from .data.unlabeled import load_unlabeled

        unlabeled_report = LoadReport()
        try:
            unlabeled = load_unlabeled(config.unlabeled, scheme.num_points, os.path.join(out, "unlabeled_boxes.json"),
                                       report=unlabeled_report)
        finally:  # listed even when no photo is usable, to say why
            record_skipped(os.path.join(out, "skipped.json"), "unlabeled", unlabeled_report)
        unlabeled_ds = pipeline.dataset(unlabeled, config.batch_size, training=True, seed=config.seed + 1,
                                        repeat=True, augment=config.augment, images_only=True,
                                        teacher_size=teacher_size)
        train_ds = tf.data.Dataset.zip((train_ds, unlabeled_ds)).prefetch(tf.data.AUTOTUNE)
    # Layers take their dtype policy when built, so the policy is only set while building, then restored.
    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision != "no":
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        with strategy.scope():
            model = build_landmark_model(config.preset, scheme, config.image_size,
                                         HeadConfig(config.head_dim, config.head_convs, light), config.pretrained)
            if config.init_from and resuming:  # the backup restores the interrupted run's own weights (a backup
                # that holds none is not a resume: that start begins again from --init-from)
                print(f"the weights come from the backup, not from --init-from {config.init_from}")
            elif config.init_from:
                source = load_model(config.init_from)
                copied = copy_weights(source, model, config.init_from)
                print(f"starting from the weights of {config.init_from} ({copied} arrays)")
                if model_image_size(source) != config.image_size:  # the weights fit any size: say it is a change
                    print(f"note: {config.init_from} was trained at {model_image_size(source)} px; this run trains "
                          f"and validates at {config.image_size} px (--image-size)")
            trainer = LandmarkTrainer(model, config, teacher)
            trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                                             clipnorm=config.clipnorm), jit_compile=config.xla,
                            run_eagerly=config.run_eagerly)
            first = next(iter(train_ds))
            trainer((first[0] if config.unlabeled else first)[0][:1])  # build before BackupAndRestore restores into it
            # Optimiser slots made now, not inside the first traced step: TF traces a step that creates
            # variables twice, and the second trace is as slow as the first.
            trainer.optimizer.build(trainer.trained_variables)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    plural = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"  # noqa: E731 ("1 epochs x 1 steps" read badly)
    print(f"model {model.name}: {model.count_params() / 1e6:.2f}M parameters, input {config.image_size}px, "
          f"{strategy.num_replicas_in_sync} replica(s), {len(train_samples)} train / {len(val_samples)} val faces, "
          f"{plural(config.epochs, 'epoch')} x {plural(steps, 'step')}")
    if config.restart:  # everything loaded and built: only now is the earlier run removed
        _clear_earlier_run(out, tuple(name for name in RUN_FILES if name != "skipped.json"))
    record = dataclasses.asdict(config)
    if teacher is not None:  # the files, not only their paths: a teacher retrained in place is another teacher
        from .teacher import teacher_paths

        record["teacher_sha1"] = [_file_sha1(path) for path in teacher_paths(config.teacher)]
    if isinstance(started, dict):
        record["changed_on_resume"] = _changed_on_resume(started, record)
    from .outputs import atomic_json

    # through a temporary file: a truncated config.json would make the folder someone else's (refused for good)
    atomic_json(os.path.join(out, "config.json"), record)
    divergence = StopOnDivergence()
    evaluator = EvaluateAndCheckpoint(model, val_ds, val_samples, scheme, config, out, divergence)
    callbacks = [
        divergence,
        evaluator,
        # the backup before TensorBoard: a kill while it saves epoch N used to leave N's curve point written, and
        # the resumed run, redoing N, wrote a second point at the same step (a zigzag in TensorBoard)
        backup,
        keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False),
    ]
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    start = time.time()
    os.makedirs(backup_dir, exist_ok=True)  # before the first best.keras, which alone would read as a finished run
    history = trainer.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose,
                          shuffle=False)  # train_ds shuffles itself (Keras warned that its default True is ignored)
    if divergence.diverged:
        if not os.listdir(backup_dir):  # nothing was backed up: no empty folder to read as an interrupted run
            os.rmdir(backup_dir)
        kept = ("best.keras, last.keras and the backup keep the epochs before it: rerun with --resume and a lower "
                "--lr" if os.path.exists(os.path.join(out, "last.keras")) else "nothing was saved: rerun with a "
                "lower --lr")
        raise TrainingDivergedError(f"{out}: training diverged {divergence.diverged} at --lr "
                                    f"{config.learning_rate:g}; {kept} (or check the data)")
    whole = backup.whole_history(history.history)
    trained = len(next(iter(whole.values()), []))  # epochs in the record, those before a resume included
    if not history.history:
        more = (f" ({trained} epochs, more than --epochs {config.epochs} asks for: the report is of all {trained})"
                if trained > config.epochs else "")
        print(f"all {config.epochs} epochs were trained before the interruption: writing the final report{more}")
    train_seconds = max(backup.seconds, time.time() - start)  # a resumed run: the epochs before it count too
    best_path = os.path.join(out, "best.keras")
    if os.path.exists(best_path):  # into the model the epochs' scoring already traced: no rebuild, no second trace
        model.load_weights(best_path)
    result = evaluator.predictor.predict_dataset(val_ds)
    metrics, errors = evaluate_predictions(result.landmarks, result.index, val_samples, scheme,
                                           config.normalization, config.threshold)
    baseline = _mean_shape_baseline(mean_shape, result, val_samples, scheme, config)
    metrics.update({
        "model": best_path, "preset": config.preset, "image_size": config.image_size, "data": config.val_data,
        "epochs": max(config.epochs, trained), "steps": int(trainer.optimizer.iterations.numpy()),
        "train_seconds": round(train_seconds, 1), "baseline_mean_shape_nme": baseline,
        "history": whole,
    })
    # Every run says what it learned from, so a no-KD ablation's metrics compare key by key with the distilled run's.
    metrics.update({"teacher": config.teacher if teacher is not None else None, "teacher_flip": config.teacher_flip,
                    "alpha": config.alpha if teacher is not None else 0.0,
                    "kd_mode": config.kd_mode if teacher is not None else None,
                    "feature_kd": config.feature_kd if teacher is not None else 0.0})
    paths = write_report(out, metrics, errors, result, val_samples)
    # Only now: until the report is written, the run can resume. Renamed first, so that a deletion that fails
    # halfway never leaves a partial backup/ that the next command would take for an interrupted run.
    if os.path.isdir(backup_dir):
        doomed = f"{backup_dir}.done-{os.getpid()}"
        os.replace(backup_dir, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    metrics["paths"] = {"best": best_path, "last": os.path.join(out, "last.keras"), "logs": os.path.join(out, "logs"), **paths}
    return metrics


def print_summary(metrics: dict) -> None:
    """The run's scores and where its files went, as train.py and distill.py print them."""
    p = {k: (v if k == "logs" or (v and os.path.exists(v)) else None) for k, v in metrics["paths"].items()}
    print(f"\nValidation NME {metrics['nme']:.4f} ({metrics['normalization']}), FR@{metrics['threshold']:g} "
          f"{metrics['fr']:.4f}, AUC@{metrics['threshold']:g} {metrics['auc']:.4f} on {metrics['num_images']} faces "
          f"(mean-shape baseline NME {metrics['baseline_mean_shape_nme']:.4f}); trained {metrics['train_seconds']:.0f}s")
    for line in score_lines(metrics):
        print(line)
    files = [("best model", p["best"]), ("last model", p["last"]), ("metrics", p["metrics"]),
             ("CED plot", p.get("ced")), ("predictions", p["predictions"]),  # no CED plot without matplotlib
             ("TensorBoard", f"tensorboard --logdir {p['logs']}")]
    for name, where in files:
        if where:
            print(f"  {name:<12} {where}")
