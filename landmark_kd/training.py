"""The one training pipeline behind `train.py` (teacher) and `distill.py` (student).

`LandmarkTrainer` wraps a landmark model (and, for distillation, a frozen teacher) in a Keras model whose
`train_step` computes L_STAR + AAM losses (+ alpha * L_KD), so `fit` supplies progress bars, callbacks,
TensorBoard and BackupAndRestore. Only the inner landmark model is written as `.keras`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class TrainConfig:
    """Defaults train the quick teacher on the synthetic set in about 15 minutes on a 2-core CPU."""

    preset: str = "swinv2_nano"
    scheme: str = "68"
    image_size: int = 128
    head_dim: int = 96
    head_convs: int = 2
    light_head: bool | None = None  # None: light for MobileViT-v2, full for SwinV2
    pretrained: str | None = None
    train_data: str | list[str] | None = None  # None: the embedded synthetic faces; several paths are pooled
    val_data: str | None = None
    data_format: str = "auto"
    images_root: str | None = None
    synthetic_root: str = "data/synthetic"
    synthetic_train: int = 2000
    synthetic_test: int = 300
    epochs: int = 12
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
    seed: int = 0
    output: str = "runs/teacher"
    resume: bool = False
    restart: bool = False
    normalization: str | None = None
    threshold: float = 0.1
    # distillation
    teacher: str | None = None
    alpha: float = 0.0
    kd_mode: str = "l2"
    kd_normalize: bool = True
    augment: bool = True
    augmentation: str = "auto"  # synthetic, real (PipelineConfig.real_photos) or auto: real unless synthetic data
    unlabeled: str | None = None  # folder of unlabelled photos: the student also learns L_KD on them
    verbose: int | None = None


def _atomic_save(model, path: str) -> None:
    """Write to a temporary name then rename, so a kill never leaves a corrupt checkpoint behind (the name is
    unique per process, so two writers never share one temporary file)."""
    tmp = f"{path}.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as err:  # a full disk, say: one clear line, no temporary file left, the old checkpoint kept
        if os.path.exists(tmp):
            os.remove(tmp)
        raise PermissionError(f"{path}: cannot save the checkpoint ({err.strerror or err}); the previous one is "
                              "kept") from None


def make_trainer(model, config: TrainConfig, teacher=None):
    import keras
    import tensorflow as tf

    from .losses import AdaptiveWingLoss, HeatmapDistillationLoss, STARLoss

    class LandmarkTrainer(keras.Model):
        def __init__(self):
            super().__init__(name="landmark_trainer")
            self.landmark_model = model
            self.teacher = teacher
            self.star = STARLoss(w=config.star_w, dist=config.star_dist)
            self.awing = AdaptiveWingLoss()
            self.kd = HeatmapDistillationLoss(config.kd_mode, config.kd_normalize)
            names = ["loss", "star", "point", "edge"] + (["kd"] if teacher is not None else [])
            names += ["kd_unlabeled"] if teacher is not None and config.unlabeled else []
            self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
            if teacher is not None:
                self.teacher_size = int(teacher.input_shape[1])

        def call(self, x, training=False):
            return self.landmark_model(x, training=training)

        @property
        def metrics(self):
            return list(self.trackers.values())

        def _teacher_maps(self, x):
            tx = x if self.teacher_size == x.shape[1] else tf.image.resize(x, [self.teacher_size] * 2)
            return tf.stop_gradient(self.teacher(tx, training=False)["heatmaps"])

        def _compute_losses(self, x, targets, training):
            out = self.landmark_model(x, training=training)
            parts = {
                "star": self.star(targets["landmarks"], out["heatmaps"]),
                "point": self.awing(targets["heatmaps"], out["point_maps"]),
                "edge": self.awing(targets["edges"], out["edge_maps"]),
            }
            total = (config.star_weight * parts["star"] + config.point_weight * parts["point"]
                     + config.edge_weight * parts["edge"])
            if self.teacher is not None and training:
                parts["kd"] = self.kd(self._teacher_maps(x), out["heatmaps"])
                total = total + config.alpha * parts["kd"]
            return total, parts

        def train_step(self, data):
            x_unlabeled = None
            if isinstance(data[0], (tuple, list)):  # ((images, targets), unlabelled images)
                data, x_unlabeled = data
            x, targets = data
            with tf.GradientTape() as tape:
                total, parts = self._compute_losses(x, targets, True)
                if x_unlabeled is not None:
                    student_maps = self.landmark_model(x_unlabeled, training=True)["heatmaps"]
                    parts["kd_unlabeled"] = self.kd(self._teacher_maps(x_unlabeled), student_maps)
                    total = total + config.alpha * parts["kd_unlabeled"]
                scaled = self.optimizer.scale_loss(total) if hasattr(self.optimizer, "scale_loss") else total
            variables = self.landmark_model.trainable_variables
            grads = tape.gradient(scaled, variables)
            self.optimizer.apply(grads, variables)
            return self._track(total, parts)

        def test_step(self, data):
            x, targets = data
            total, parts = self._compute_losses(x, targets, False)
            return self._track(total, parts)

        def _track(self, total, parts):
            from .distribute import unscale

            self.trackers["loss"].update_state(unscale(total))
            for name, value in parts.items():
                self.trackers[name].update_state(unscale(value))
            return {name: t.result() for name, t in self.trackers.items()}

    return LandmarkTrainer()


def checkpoint_callback(model, pipeline, val_samples, scheme, config: TrainConfig, out_dir: str):
    """A Keras callback that scores validation NME each epoch (as `val_nme` in the logs, so TensorBoard
    sees it) and keeps `last.keras` and the best-NME `best.keras`."""
    import keras

    from .evaluate import evaluate_predictions, keras_predictor, predict_dataset

    dataset = pipeline.dataset(val_samples, config.batch_size, training=False)
    best_state = os.path.join(out_dir, "best.json")

    class EvaluateAndCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best = math.inf
            if os.path.exists(best_state):  # a resumed run keeps its best score
                try:
                    with open(best_state) as handle:
                        self.best = float(json.load(handle).get("nme", math.inf))
                except (OSError, ValueError, AttributeError):
                    self.best = math.inf  # unreadable: the next epoch's score becomes the best again

        def on_epoch_end(self, epoch, logs=None):
            result = predict_dataset(keras_predictor(model), dataset)
            metrics, _ = evaluate_predictions(result["pred"], result["index"], val_samples, scheme,
                                              config.normalization, config.threshold)
            if logs is not None:
                logs["val_nme"] = metrics["nme"]
            _atomic_save(model, os.path.join(out_dir, "last.keras"))
            mark = ""
            if metrics["nme"] < self.best:
                self.best = metrics["nme"]
                _atomic_save(model, os.path.join(out_dir, "best.keras"))
                tmp = f"{best_state}.{os.getpid()}.tmp"  # temp-and-rename: a kill never leaves half a file
                with open(tmp, "w") as handle:
                    json.dump({"epoch": epoch + 1, "nme": self.best}, handle)
                os.replace(tmp, best_state)
                mark = " (best, saved)"
            print(f"  epoch {epoch + 1}: val NME {metrics['nme']:.4f}{mark}", flush=True)

    return EvaluateAndCheckpoint()


def _mean_shape_baseline(pipeline, train_samples, val_result: dict, val_samples, scheme, config: TrainConfig) -> float:
    """NME of always predicting the mean training shape in crop coordinates: the floor a model must beat.
    Uses the validation crops' matrices from `predict_dataset`, so the set is not decoded again."""
    from .decode import crop_to_image, normalised_to_pixels
    from .evaluate import evaluate_predictions

    cfg = pipeline.config
    shapes = [t["landmarks"].numpy() for _, t in pipeline.dataset(train_samples[:512], 64, training=False)]
    mean = normalised_to_pixels(np.concatenate(shapes).mean(0), cfg.heatmap_size, cfg.heatmap_stride)
    affine = val_result["affine"]
    pred = crop_to_image(np.repeat(mean[None], len(affine), 0), affine)
    metrics, _ = evaluate_predictions(pred, val_result["index"], val_samples, scheme, config.normalization,
                                      config.threshold)
    return metrics["nme"]


def load_data(config: TrainConfig, scheme):
    from .data import load_dataset
    from .data.synthetic import ensure_default_dataset

    if config.train_data is None:
        train_path, val_path = ensure_default_dataset(config.synthetic_root, config.synthetic_train, config.synthetic_test,
                                                      seed=config.seed)
        if config.val_data is None:
            config.val_data = val_path
        config.train_data = train_path
    paths = [config.train_data] if isinstance(config.train_data, str) else list(config.train_data)
    train, reports = [], []
    for path in paths:
        samples, report = load_dataset(path, config.data_format, scheme.num_points, config.images_root)
        train += samples
        reports.append((path, report))
    from .data import DatasetError, LoadReport
    from .metrics import drop_unnormalisable

    if config.val_data:
        val, val_report = load_dataset(config.val_data, config.data_format, scheme.num_points, config.images_root)
    else:  # hold out 10% of the training set, deterministically
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
    return train, val


def _check_decodable(pipeline, train_samples, val_samples, config: TrainConfig) -> None:
    """Images can pass the load-time checks and still fail to decode; the pipeline drops those. If it would drop
    them all, the repeated training set would spin forever and scoring would fail after an epoch: say so now."""
    from .data import DatasetError

    if next(iter(pipeline.dataset(train_samples, 1, training=False).take(1)), None) is None:
        raise DatasetError(f"{config.train_data}: none of the {len(train_samples)} training images could be decoded")
    decoded = sum(len(t["index"]) for _, t in pipeline.dataset(val_samples, config.batch_size, training=False))
    if decoded == 0:
        raise DatasetError(f"{config.val_data or 'validation faces'}: none of the {len(val_samples)} validation images "
                           "could be decoded")
    if decoded < len(val_samples):
        print(f"warning: {len(val_samples) - decoded} validation image(s) passed the load checks but cannot be decoded; "
              "they are left out of the scores")


def pipeline_config(config: TrainConfig, synthetic: bool):
    """Drawn faces keep the original augmentation; real photographs get the paper's real-photo recipe."""
    from .data.pipeline import PipelineConfig

    kind = config.augmentation if config.augmentation != "auto" else ("synthetic" if synthetic else "real")
    if kind not in ("synthetic", "real"):
        raise ValueError(f"augmentation must be auto, synthetic or real, got {config.augmentation!r}")
    if kind == "real":
        return PipelineConfig.real_photos(image_size=config.image_size, sigma=config.sigma)
    return PipelineConfig(image_size=config.image_size, sigma=config.sigma)


def run_training(config: TrainConfig, teacher_path: str | None = None) -> dict:
    """Train (or distil into) a landmark model; returns the final metrics dict. Writes to `config.output`,
    which it holds locked for the run (a second run on the same folder is refused)."""
    from .cli import output_lock, prepare_output_dir

    out = prepare_output_dir(config.output)
    with output_lock(out):
        return _run_training(config, teacher_path, out)


def _run_training(config: TrainConfig, teacher_path: str | None, out: str) -> dict:
    import keras
    import tensorflow as tf

    from .data.pipeline import LandmarkPipeline
    from .evaluate import evaluate_predictions, keras_predictor, predict_dataset, write_report
    from .models import HeadConfig, build_landmark_model, load_model, model_scheme
    from .schemes import get_scheme

    backup_dir = os.path.join(out, "backup")
    if config.restart and os.path.isdir(backup_dir):
        import shutil

        shutil.rmtree(backup_dir)
    if config.resume and not os.path.isdir(backup_dir):
        raise FileNotFoundError(f"{backup_dir}: nothing to resume (no interrupted run in {out})")
    if os.path.isdir(backup_dir):
        print(f"Resuming the interrupted run from {backup_dir} (use --restart to start over)")
    elif os.path.exists(os.path.join(out, "best.json")):
        os.remove(os.path.join(out, "best.json"))  # a finished earlier run's best score must not gate this one

    keras.utils.set_random_seed(config.seed)
    from .distribute import make_strategy

    strategy = make_strategy(config.strategy)
    scheme = get_scheme(config.scheme)
    teacher = None
    if teacher_path:
        with strategy.scope():
            teacher = load_model(teacher_path)
        teacher.trainable = False
        t_scheme = model_scheme(teacher)
        if t_scheme.num_points != scheme.num_points or t_scheme.name != scheme.name:
            raise ValueError(f"{teacher_path}: teacher predicts scheme {t_scheme.name!r} ({t_scheme.num_points} points), "
                             f"the student is set up for {scheme.name!r} ({scheme.num_points}); pass --scheme {t_scheme.name}")
    synthetic = config.train_data is None
    train_samples, val_samples = load_data(config, scheme)
    pipeline = LandmarkPipeline(scheme, pipeline_config(config, synthetic))
    light = config.light_head if config.light_head is not None else config.preset.startswith("mobilevit")
    steps = config.steps_per_epoch or max(1, len(train_samples) // config.batch_size)
    total_steps = steps * config.epochs
    warmup = int(config.warmup_epochs * steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate, max(1, total_steps - warmup), alpha=0.01,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
    _check_decodable(pipeline, train_samples, val_samples, config)
    train_ds = pipeline.dataset(train_samples, config.batch_size, training=True, seed=config.seed, repeat=True,
                                augment=config.augment)
    if config.unlabeled:
        if teacher is None:
            raise ValueError("--unlabeled needs a teacher: L_KD is the only loss on unlabelled photos")
        from .data.unlabeled import load_unlabeled

        unlabeled = load_unlabeled(config.unlabeled, scheme.num_points, os.path.join(out, "unlabeled_boxes.json"))
        unlabeled_ds = pipeline.dataset(unlabeled, config.batch_size, training=True, seed=config.seed + 1,
                                        repeat=True, augment=config.augment, images_only=True)
        train_ds = tf.data.Dataset.zip((train_ds, unlabeled_ds)).prefetch(tf.data.AUTOTUNE)
    val_ds = pipeline.dataset(val_samples, config.batch_size, training=False)
    # Layers take their dtype policy when built, so the policy is only set while building, then restored.
    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision != "no":
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        with strategy.scope():
            model = build_landmark_model(config.preset, scheme, config.image_size,
                                         HeadConfig(config.head_dim, config.head_convs, light), config.pretrained)
            trainer = make_trainer(model, config, teacher)
            trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                                             clipnorm=config.clipnorm), jit_compile=config.xla)
            first = next(iter(train_ds))
            trainer((first[0] if config.unlabeled else first)[0][:1])  # build before BackupAndRestore restores into it
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    print(f"model {model.name}: {model.count_params() / 1e6:.2f}M parameters, input {config.image_size}px, "
          f"{strategy.num_replicas_in_sync} replica(s), "
          f"{len(train_samples)} train / {len(val_samples)} val faces, {config.epochs} epochs x {steps} steps")
    with open(os.path.join(out, "config.json"), "w") as handle:
        json.dump(dataclasses.asdict(config), handle, indent=2)
    callbacks = [
        checkpoint_callback(model, pipeline, val_samples, scheme, config, out),
        keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False),
        # double_checkpoint: a kill while the backup is written leaves the previous one to resume from.
        keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    start = time.time()
    history = trainer.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
    train_seconds = time.time() - start
    best_path = os.path.join(out, "best.keras")
    best = load_model(best_path) if os.path.exists(best_path) else model
    result = predict_dataset(keras_predictor(best), val_ds)
    metrics, errors = evaluate_predictions(result["pred"], result["index"], val_samples, scheme,
                                           config.normalization, config.threshold)
    baseline = _mean_shape_baseline(pipeline, train_samples, result, val_samples, scheme, config)
    metrics.update({
        "model": best_path, "preset": config.preset, "image_size": config.image_size, "data": config.val_data,
        "epochs": config.epochs, "steps": int(trainer.optimizer.iterations.numpy()),
        "train_seconds": round(train_seconds, 1), "baseline_mean_shape_nme": baseline,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
    })
    if teacher is not None:
        metrics.update({"teacher": teacher_path, "alpha": config.alpha, "kd_mode": config.kd_mode})
    paths = write_report(out, metrics, errors, result["crops"], val_samples, result["index"])
    metrics["paths"] = {"best": best_path, "last": os.path.join(out, "last.keras"), "logs": os.path.join(out, "logs"), **paths}
    return metrics


def print_summary(metrics: dict) -> None:
    p = metrics["paths"]
    print(f"\nValidation NME {metrics['nme']:.4f} ({metrics['normalization']}), FR@{metrics['threshold']:g} "
          f"{metrics['fr']:.4f}, AUC@{metrics['threshold']:g} {metrics['auc']:.4f} on {metrics['num_images']} faces "
          f"(mean-shape baseline NME {metrics['baseline_mean_shape_nme']:.4f}); trained {metrics['train_seconds']:.0f}s")
    print(f"  best model   {p['best']}\n  last model   {p['last']}\n  metrics      {p['metrics']}\n"
          f"  CED plot     {p['ced']}\n  predictions  {p['predictions']}\n  TensorBoard  tensorboard --logdir {p['logs']}")


def add_common_arguments(parser, defaults: TrainConfig) -> None:
    """The flags train.py and distill.py share; each maps onto a TrainConfig field."""
    from .cli import non_negative_float, positive_float, positive_int
    from .data import FORMATS
    from .models import BACKBONES
    from .schemes import SCHEMES

    g = parser.add_argument_group("data")
    g.add_argument("--data-format", default=defaults.data_format, choices=("auto",) + FORMATS,
                   help="dataset format (default: detect from the path)")
    g.add_argument("--train-data", default=None, nargs="+", help="training set(s): 300W folder, WFLW list .txt, COFW "
                   ".mat or custom .json/.csv; several are pooled (default: generated synthetic faces)")
    g.add_argument("--augmentation", default="auto", choices=("auto", "real", "synthetic"),
                   help="real: the paper's real-photo recipe (Gaussian rotation, scale, grey, gamma, blur, occlusion); "
                   "auto: real unless training on the synthetic faces")
    g.add_argument("--val-data", default=None, help="validation set, same formats (default: synthetic test set, "
                   "or 10%% held out of --train-data)")
    g.add_argument("--images-root", default=None, help="image folder for WFLW lists")
    g.add_argument("--scheme", default=defaults.scheme, help=f"landmark scheme: {', '.join(sorted(SCHEMES))} "
                   "(or 300w, wflw, cofw)")
    g.add_argument("--synthetic-train", type=positive_int, default=defaults.synthetic_train, help="synthetic training faces")
    g.add_argument("--sigma", type=positive_float, default=defaults.sigma, help="heatmap Gaussian sigma in heatmap pixels")
    g = parser.add_argument_group("model")
    g.add_argument("--preset", default=defaults.preset, choices=BACKBONES, help="backbone")
    g.add_argument("--image-size", type=positive_int, default=defaults.image_size, help="input size in pixels")
    g.add_argument("--head-dim", type=positive_int, default=defaults.head_dim, help="head channels")
    g.add_argument("--pretrained", default=None, help="Hugging Face checkpoint folder (config.json + model.safetensors) "
                   "or .safetensors to start the backbone from")
    g = parser.add_argument_group("optimisation")
    g.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    g.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    g.add_argument("--steps-per-epoch", type=positive_int, default=None, help="default: one pass over the training set")
    g.add_argument("--lr", type=positive_float, default=defaults.learning_rate, help="AdamW peak learning rate")
    g.add_argument("--weight-decay", type=non_negative_float, default=defaults.weight_decay)
    g.add_argument("--clipnorm", type=non_negative_float, default=defaults.clipnorm, help="per-variable gradient-norm clip; 0 turns "
                   "it off (with several replicas Keras clips before the all-reduce)")
    g.add_argument("--warmup-epochs", type=non_negative_float, default=defaults.warmup_epochs, help="linear warm-up, then cosine")
    g.add_argument("--star-weight", type=non_negative_float, default=defaults.star_weight, help="weight of L_STAR")
    g.add_argument("--point-weight", type=non_negative_float, default=defaults.point_weight, help="weight of AWing on point maps")
    g.add_argument("--edge-weight", type=non_negative_float, default=defaults.edge_weight, help="weight of AWing on edge maps")
    g.add_argument("--mixed-precision", default="no", choices=("no", "mixed_float16", "mixed_bfloat16"))
    g.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    g.add_argument("--strategy", default="auto", choices=("auto", "one_device", "mirrored", "multiworker"),
                   help="tf.distribute strategy; auto = mirrored over all local GPUs when there are several. "
                        "--batch-size is the global batch")
    g.add_argument("--seed", type=int, default=defaults.seed)
    g = parser.add_argument_group("output")
    g.add_argument("--output", default=defaults.output, help="output folder")
    g.add_argument("--resume", action="store_true", help="require and continue an interrupted run in --output "
                   "(an interrupted run is continued automatically anyway)")
    g.add_argument("--restart", action="store_true", help="discard an interrupted run's backup and start over")
    g.add_argument("--verbose", action="store_true", help="show TensorFlow's log output")


def config_from_args(args, defaults: TrainConfig) -> TrainConfig:
    return dataclasses.replace(
        defaults, data_format=args.data_format, val_data=args.val_data, augmentation=args.augmentation,
        train_data=(args.train_data[0] if len(args.train_data) == 1 else args.train_data) if args.train_data else None,
        images_root=args.images_root, scheme=args.scheme, synthetic_train=args.synthetic_train, sigma=args.sigma,
        preset=args.preset, image_size=args.image_size, head_dim=args.head_dim, pretrained=args.pretrained,
        epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch, learning_rate=args.lr,
        weight_decay=args.weight_decay, clipnorm=args.clipnorm or None, warmup_epochs=args.warmup_epochs, star_weight=args.star_weight,
        point_weight=args.point_weight, edge_weight=args.edge_weight, mixed_precision=args.mixed_precision,
        xla=args.xla, strategy=args.strategy, seed=args.seed, output=args.output, resume=args.resume, restart=args.restart)
