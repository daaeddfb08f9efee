"""The Keras pieces of a training run: the trainer model whose `train_step` computes the paper's losses, the
callback that scores and checkpoints each epoch, and the backup that lets a killed run resume.

`LandmarkTrainer` wraps a landmark model (and, for distillation, a frozen teacher) so that `fit` supplies
progress bars, callbacks, TensorBoard and the backup; only the inner landmark model is saved as `.keras`.
"""
from __future__ import annotations

import json
import math
import os
import time
from types import SimpleNamespace

import keras
import tensorflow as tf

from .losses import AdaptiveWingLoss, ChannelDistillationLoss, HeatmapDistillationLoss, STARLoss
from .outputs import atomic_copy, atomic_json, atomic_write
from .teacher import Teacher
from .training import TrainConfig


class LandmarkTrainer(keras.Model):
    """L_STAR on the fused heatmaps + AWing on point and edge maps (+ alpha * L_KD against `teacher`, also on
    unlabelled batches when the data yields `((images, targets), unlabelled_images)`). A teacher with a larger
    input than the student gets `targets["teacher_images"]` (and unlabelled `(images, teacher_images)`) when
    the data carries them.

    With `config.feature_kd` > 0, also that weight times the channel-wise distillation of the teacher's head features
    (`ChannelDistillationLoss`), the student's reached through a 1x1 projection that trains with it.

    `teacher`: a `Teacher` (an ensemble, maybe flip-averaged) or one Keras model. It is held outside Keras'
    tracking, so the run's backups hold only the student, the feature projection and the optimiser."""

    def __init__(self, landmark_model: keras.Model, config: TrainConfig, teacher: Teacher | keras.Model | None = None):
        super().__init__(name="landmark_trainer")
        config.check_teacher(teacher is not None)
        self.landmark_model = landmark_model
        if teacher is not None and not isinstance(teacher, Teacher):
            teacher = Teacher([teacher])
        self.teacher = teacher  # a plain object: Keras does not track it, so the backups skip its weights
        self.config = config
        self.star = STARLoss(w=config.star_w, dist=config.star_dist)
        self.awing = AdaptiveWingLoss()
        self.kd = HeatmapDistillationLoss(config.kd_mode, config.kd_normalize, config.star_dist)
        self.feature_kd = self.projection = None
        # the student with its head features as an output: the same layers, held where Keras does not track them,
        # so they stay tracked (and backed up) once, through landmark_model
        self._views = SimpleNamespace(student=None)
        if config.feature_kd > 0:
            from .models import with_head_features

            self._views.student = with_head_features(landmark_model)
            self.feature_kd = ChannelDistillationLoss(config.feature_kd_tau)
            self.projection = keras.layers.Conv2D(teacher.feature_channels, 1, name="feature_kd_projection")
            self.projection.build(self._views.student.output["features"].shape)
        kd = [] if teacher is None else ["kd"] + (["feature_kd"] if self.feature_kd is not None else [])
        names = ["loss", "star", "point", "edge"] + kd
        names += [f"{n}_unlabeled" for n in kd] if config.unlabeled else []
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    def call(self, x, training=False):
        return self.landmark_model(x, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def trained_variables(self) -> list:
        """What the optimiser updates: the student's weights and, with feature KD, its projection's."""
        extra = self.projection.trainable_variables if self.projection is not None else []
        return self.landmark_model.trainable_variables + extra

    def _student(self, x, training: bool) -> dict:
        """The student's outputs, with its head features when feature KD reads them."""
        return (self._views.student or self.landmark_model)(x, training=training)

    def _distillation(self, student: dict, x, large, suffix: str = ""):
        """(weighted sum, {loss name + `suffix`: value}) of the L_KD terms between `student`'s outputs on `x` and the
        teacher's: heatmap L_KD at alpha and, with feature KD, the features' at `config.feature_kd`."""
        size = student["heatmaps"].shape[1:3]
        if self.feature_kd is None:
            teacher_maps, teacher_features = self.teacher.heatmaps(x, size, large), None
        else:
            teacher_maps, teacher_features = self.teacher.heatmaps_and_features(x, size, large)
        kd = self.kd(teacher_maps, student["heatmaps"])
        terms, weighted = {f"kd{suffix}": kd}, self.config.alpha * kd
        if teacher_features is not None:
            features = self.feature_kd(teacher_features, self.projection(student["features"]))
            terms[f"feature_kd{suffix}"] = features
            weighted = weighted + self.config.feature_kd * features
        return weighted, terms

    def compute_losses(self, x, targets, training: bool):
        """(weighted total, {loss name: value}) for one labelled batch."""
        config = self.config
        out = self._student(x, training)
        parts = {
            "star": self.star(targets["landmarks"], out["heatmaps"]),
            "point": self.awing(targets["heatmaps"], out["point_maps"]),
            "edge": self.awing(targets["edges"], out["edge_maps"]),
        }
        total = config.star_weight * parts["star"] + config.point_weight * parts["point"] + config.edge_weight * parts["edge"]
        if self.teacher is not None and training:
            weighted, terms = self._distillation(out, x, targets.get("teacher_images"))
            parts.update(terms)
            total = total + weighted
        return total, parts

    def train_step(self, data):
        x_unlabeled = None
        if isinstance(data[0], (tuple, list)):  # ((images, targets), unlabelled images)
            data, x_unlabeled = data
        x, targets = data
        large_unlabeled = None
        if isinstance(x_unlabeled, (tuple, list)):  # (crops, the same crops at the teacher's larger size)
            x_unlabeled, large_unlabeled = x_unlabeled
        with tf.GradientTape() as tape:
            total, parts = self.compute_losses(x, targets, True)
            if x_unlabeled is not None:
                weighted, terms = self._distillation(self._student(x_unlabeled, True), x_unlabeled, large_unlabeled,
                                                     "_unlabeled")
                parts.update(terms)
                total = total + weighted
            scaled = self.optimizer.scale_loss(total) if hasattr(self.optimizer, "scale_loss") else total
        variables = self.trained_variables
        grads = tape.gradient(scaled, variables)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):  # it skips overflowing steps
            from .distribute import shared_overflow

            grads = shared_overflow(grads)
        self.optimizer.apply(grads, variables)
        return self._track(total, parts)

    def test_step(self, data):
        x, targets = data
        return self._track(*self.compute_losses(x, targets, False))

    def _track(self, total, parts):
        from .distribute import unscale

        self.trackers["loss"].update_state(unscale(total))
        for name, value in parts.items():
            self.trackers[name].update_state(unscale(value))
        return {name: t.result() for name, t in self.trackers.items()}


@keras.saving.register_keras_serializable(package="landmark_kd")
class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Keras' CosineDecay (with its linear warmup), computed once per traced graph: AdamW reads the schedule once
    per weight for its decoupled weight decay, so a traced step held one copy of the schedule per weight, each a
    two-branch `cond` with warmup (106 for the pico teacher; a 48-step pico run took 23-24 s instead of 25-27 s,
    measured here). Within one graph every read of the same step variable gets the first read's value (nothing
    changes the step between them: it advances after the update)."""

    def __init__(self, *args, **kwargs):
        import weakref

        super().__init__(*args, **kwargs)
        self._per_graph = weakref.WeakKeyDictionary()  # graph -> {id(step): (step, rate)}

    def __call__(self, step):
        if tf.executing_eagerly():
            return super().__call__(step)
        known = self._per_graph.setdefault(tf.compat.v1.get_default_graph(), {})
        if id(step) not in known:  # the step is kept with its rate, so its id cannot name another object
            known[id(step)] = (step, super().__call__(step))
        return known[id(step)][1]


def save_model_atomically(model: keras.Model, path: str) -> None:
    """`model.save(path)` through a temporary file: a kill or a full disk never leaves half a checkpoint."""
    atomic_write(path, model.save, suffix=".keras")


def finite_epoch(logs: dict | None) -> bool:
    """Whether an epoch's (or a step's) logged loss and validation NME are numbers: after a NaN or an infinity
    the weights are garbage, and nothing made from them may replace a checkpoint."""
    logs = logs or {}
    return all(logs.get(key) is None or math.isfinite(float(logs[key])) for key in ("loss", "val_nme"))


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first step whose loss is not finite, or after an epoch whose validation predictions
    are not numbers (the loss can stay finite while BatchNorm's moving statistics overflow), and says where
    (`diverged`), so that the run ends with one error line instead of scoring, saving and reporting NaN weights."""

    def __init__(self):
        super().__init__()
        self.diverged: str | None = None
        self._epoch = 0

    def stop(self, reason: str) -> None:
        if self.diverged is None:
            self.diverged = reason
        self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not finite_epoch(logs):
            self.stop(f"in epoch {self._epoch + 1}, step {batch + 1} (loss {logs['loss']})")


class EvaluateAndCheckpoint(keras.callbacks.Callback):
    """Scores validation NME each epoch (as `val_nme` in the logs, so TensorBoard sees it), keeps `last.keras`
    and the best-NME `best.keras`, and remembers the best score in `best.json` so a resumed run keeps it."""

    def __init__(self, model: keras.Model, dataset, val_samples, scheme, config: TrainConfig, out_dir: str,
                 divergence: StopOnDivergence | None = None):
        from .predictor import KerasPredictor

        super().__init__()
        self.divergence = divergence
        self.landmark_model, self.dataset, self.val_samples = model, dataset, val_samples
        self.predictor = KerasPredictor(model)  # one traced function for every epoch
        self.scheme, self.config, self.out_dir = scheme, config, out_dir
        self.best_state = os.path.join(out_dir, "best.json")
        self.best = math.inf
        if os.path.exists(self.best_state):
            try:
                with open(self.best_state) as handle:
                    self.best = float(json.load(handle).get("nme", math.inf))
            except (OSError, ValueError, AttributeError, TypeError):
                self.best = math.inf  # unreadable: the next epoch's score becomes the best again

    def on_epoch_end(self, epoch, logs=None):
        from .evaluate import evaluate_predictions

        if not finite_epoch(logs):  # diverged: last.keras and best.keras keep the last finite weights
            print(f"  epoch {epoch + 1}: training diverged (loss {logs['loss']}); nothing saved", flush=True)
            return
        result = self.predictor.predict_dataset(self.dataset)
        metrics, _ = evaluate_predictions(result.landmarks, result.index, self.val_samples, self.scheme,
                                          self.config.normalization, self.config.threshold)
        if logs is not None:
            logs["val_nme"] = metrics["nme"]
        if not math.isfinite(metrics["nme"]):
            print(f"  epoch {epoch + 1}: training diverged (validation predictions are not numbers); nothing saved",
                  flush=True)
            if self.divergence is not None:
                self.divergence.stop(f"in epoch {epoch + 1} (its validation predictions are not numbers)")
            return
        last = os.path.join(self.out_dir, "last.keras")
        save_model_atomically(self.landmark_model, last)
        mark = ""
        if metrics["nme"] < self.best:
            self.best = metrics["nme"]
            # the same weights: a copy of the file just written, not a second serialisation of the model
            atomic_copy(last, os.path.join(self.out_dir, "best.keras"), suffix=".keras")
            atomic_json(self.best_state, {"epoch": epoch + 1, "nme": self.best})
            mark = " (best, saved)"
        print(f"  epoch {epoch + 1}: val NME {metrics['nme']:.4f}{mark}", flush=True)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras' epoch backup, made safe against a kill at any instant: the weights and the epoch counter are
    written to temporary names and renamed, the previous pair is kept (`double_checkpoint`), and a backup that
    cannot be read falls back to that pair, or, if it is unreadable too, to a fresh start with a warning
    (the run's `best.keras` is never touched). The backup outlives `fit`: the run deletes it only once its final
    report is written, so a run stopped while scoring resumes into the scoring, not into a 'finished' refusal."""

    def __init__(self, backup_dir: str):
        super().__init__(backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=False)
        # Keras names the previous pair `*.bkp`, which `load_weights` refuses to read; ours stay loadable.
        self._prev_weights_path = os.path.join(backup_dir, "previous.weights.h5")
        self._prev_training_metadata_path = os.path.join(backup_dir, "previous_training_metadata.json")
        # every finished epoch's logs and the training seconds so far, so that a resumed run reports its whole
        # history and time, not only the part after the resume
        self._history_path = os.path.join(backup_dir, "history.json")
        self.epoch_logs: list[dict] = []
        self.seconds = 0.0
        self._epoch_start = None

    def holds_weights(self) -> bool:
        """Whether there are weights here to restore: a backup folder made just before a kill (or a full disk)
        stopped its first write holds none, and that run starts over."""
        return any(os.path.exists(path) for path in (self._weights_path, self._prev_weights_path))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()
        super().on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if not finite_epoch(logs):  # the backup keeps the last finite epoch, so a resume with a lower --lr can work
            return
        self.epoch_logs = self.epoch_logs[:epoch] + [{k: float(v) for k, v in (logs or {}).items()}]
        if self._epoch_start is not None:
            self.seconds += time.time() - self._epoch_start
        super().on_epoch_end(epoch, logs)

    def whole_history(self, fresh: dict) -> dict:
        """Every epoch's logs, those before a resume included, key by key; `fresh` (this fit's History) where
        this record is shorter (a backup written before it was kept)."""
        if len(self.epoch_logs) < len(next(iter(fresh.values()), [])):
            return {k: [float(v) for v in values] for k, values in fresh.items()}
        keys = list(dict.fromkeys([k for logs in self.epoch_logs for k in logs]))
        return {k: [logs.get(k, float("nan")) for logs in self.epoch_logs] for k in keys}

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        for path, previous in ((self._weights_path, self._prev_weights_path),
                               (self._training_metadata_path, self._prev_training_metadata_path)):
            if os.path.exists(path):
                atomic_copy(path, previous)
        atomic_write(self._weights_path, lambda tmp: self.model.save_weights(tmp), suffix=".weights.h5")
        atomic_json(self._history_path, {"epochs": self.epoch_logs, "seconds": self.seconds})
        # the optimiser's step ties the counter to these weights: a kill between the two renames leaves a pair
        # that disagrees, which on_train_begin passes over
        atomic_json(self._training_metadata_path, {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                                                   "iterations": int(self.model.optimizer.iterations.numpy())})

    def on_train_begin(self, logs=None):
        pairs = [(self._weights_path, self._training_metadata_path),
                 (self._prev_weights_path, self._prev_training_metadata_path)]
        if not any(os.path.exists(w) for w, _ in pairs):
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        fresh = [v.numpy() for v in self.model.variables + self.model.optimizer.variables]
        for weights, metadata in pairs:
            if not os.path.exists(weights):
                continue
            try:
                with open(metadata) as handle:
                    counter = json.load(handle)
                epoch = int(counter["epoch"])
                self.model.load_weights(weights)
            except (OSError, ValueError, KeyError, TypeError) as err:
                print(f"warning: backup {weights} is unreadable ({type(err).__name__}); trying the previous one")
                continue
            step = counter.get("iterations")  # absent in a backup written before it was recorded
            if step is not None and step != int(self.model.optimizer.iterations.numpy()):
                print(f"warning: backup {weights} does not match its epoch counter {metadata} (killed between "
                      "writing the two); trying the previous one")
                continue
            self.model._initial_epoch = epoch
            try:  # the logs of the epochs restored (a backup from before this record starts with none)
                with open(self._history_path) as handle:
                    saved = json.load(handle)
                self.epoch_logs, self.seconds = list(saved["epochs"])[:epoch], float(saved["seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                self.epoch_logs, self.seconds = [], 0.0
            return
        for variable, value in zip(self.model.variables + self.model.optimizer.variables, fresh):
            variable.assign(value)  # undo a half-loaded file
        print(f"warning: no readable backup in {self.backup_dir}; training starts over (best.keras is kept)")
