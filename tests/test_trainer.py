"""The trainer model, the per-epoch checkpoint callback and the kill-safe backup, each on its own."""
import json
import os

import keras
import numpy as np
import pytest

from landmark_kd.errors import ConfigError
from landmark_kd.losses import STARLoss
from landmark_kd.models import HeadConfig, build_landmark_model
from landmark_kd.schemes import get_scheme
from landmark_kd.trainer import EvaluateAndCheckpoint, LandmarkTrainer, ResumableBackup, WarmupCosineDecay
from landmark_kd.training import TrainConfig


def _tiny(preset="swinv2_pico", light=False):
    keras.utils.set_random_seed(0)
    return build_landmark_model(preset, get_scheme("68"), 64, HeadConfig(16, 1, light))


def _batch(seed=0):
    from landmark_kd.data.targets import edge_maps, gaussian_maps, heatmap_to_normalised, pixels_to_heatmap
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    pts = tf.constant(rng.uniform(12, 52, (2, 68, 2)).astype(np.float32))
    hm = pixels_to_heatmap(pts, 4)
    scheme = get_scheme("68")
    targets = {"landmarks": heatmap_to_normalised(hm, 16), "heatmaps": tf.stack([gaussian_maps(p, 16, 1.5) for p in hm]),
               "edges": tf.stack([edge_maps(p, scheme, 16, 1.0) for p in hm])}
    return x, targets


def test_kd_weight_without_a_teacher_is_refused():
    with pytest.raises(ConfigError, match="needs a teacher"):
        LandmarkTrainer(_tiny(), TrainConfig(alpha=0.5))
    with pytest.raises(ConfigError, match="need a teacher"):
        LandmarkTrainer(_tiny(), TrainConfig(unlabeled="photos"))


def test_total_loss_is_the_weighted_sum_of_its_parts():
    config = TrainConfig(alpha=2.0, star_weight=0.5, point_weight=3.0, edge_weight=7.0)
    teacher = _tiny()
    trainer = LandmarkTrainer(_tiny("mobilevitv2_pico", True), config, teacher)
    x, targets = _batch()
    total, parts = trainer.compute_losses(x, targets, training=True)
    assert set(parts) == {"star", "point", "edge", "kd"}
    expected = 0.5 * parts["star"] + 3.0 * parts["point"] + 7.0 * parts["edge"] + 2.0 * parts["kd"]
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    assert all(float(v) > 0 for v in parts.values())
    _, scored = trainer.compute_losses(x, targets, training=False)
    assert "kd" not in scored  # validation scores the ground-truth losses only


def test_coordinate_kd_reads_the_teachers_decoded_landmarks():
    """kd_mode star: L_KD is L_STAR's error term towards where the teacher's heatmaps decode, so a student that is
    its own teacher owes nothing, and a student taught by another model does."""
    from landmark_kd.losses.star_loss import heatmap_moments

    student = _tiny("mobilevitv2_pico", True)
    x, targets = _batch()
    config = TrainConfig(alpha=1.0, kd_mode="star")
    self_taught = LandmarkTrainer(student, config, student)
    assert float(self_taught.compute_losses(x, targets, training=True)[1]["kd"]) == pytest.approx(0.0, abs=1e-6)
    teacher = _tiny()
    trainer = LandmarkTrainer(student, config, teacher)
    kd = float(trainer.compute_losses(x, targets, training=True)[1]["kd"])
    teacher_maps = teacher(x, training=False)["heatmaps"]
    as_labels = STARLoss(w=0.0)(heatmap_moments(teacher_maps)[0], student(x, training=True)["heatmaps"])
    assert kd == pytest.approx(float(as_labels), rel=1e-4) and kd > 0


def test_a_step_with_unlabelled_photos_weights_their_kd_by_alpha_too():
    import tensorflow as tf

    config = TrainConfig(alpha=2.0, star_weight=0.5, point_weight=3.0, edge_weight=7.0, unlabeled="photos")
    trainer = LandmarkTrainer(_tiny("mobilevitv2_pico", True), config, _tiny())
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))
    x, targets = _batch()
    unlabeled = np.random.default_rng(5).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    logs = {k: float(v) for k, v in trainer.train_step(((tf.constant(x), targets), tf.constant(unlabeled))).items()}
    assert set(logs) == {"loss", "star", "point", "edge", "kd", "kd_unlabeled"} and logs["kd_unlabeled"] > 0
    expected = (0.5 * logs["star"] + 3.0 * logs["point"] + 7.0 * logs["edge"] + 2.0 * logs["kd"]
                + 2.0 * logs["kd_unlabeled"])
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)


def test_feature_kd_adds_its_own_weight_times_cwd_through_a_projection_that_trains(tmp_path):
    """config.feature_kd weights ChannelDistillationLoss between the teacher's head features and the student's
    projected to the teacher's width; on unlabelled photos too. The projection trains with the student and is
    backed up with it; the student's weights are held (and saved) once."""
    import tensorflow as tf

    from landmark_kd.losses import ChannelDistillationLoss
    from landmark_kd.models import with_head_features

    with pytest.raises(ConfigError, match="needs a teacher and alpha > 0"):
        LandmarkTrainer(_tiny(), TrainConfig(feature_kd=1.0))
    config = TrainConfig(alpha=2.0, feature_kd=3.0, feature_kd_tau=2.0, star_weight=0.5, point_weight=3.0,
                         edge_weight=7.0, unlabeled="photos")
    student, teacher = _tiny("mobilevitv2_pico", True), build_landmark_model("swinv2_pico", get_scheme("68"), 64,
                                                                             HeadConfig(24, 1, False))
    trainer = LandmarkTrainer(student, config, teacher)
    assert tuple(trainer.projection.kernel.shape) == (1, 1, 16, 24)
    assert len(trainer.weights) == len(student.weights) + 2  # + the projection's kernel and bias
    x, targets = _batch()
    total, parts = trainer.compute_losses(x, targets, training=True)
    assert set(parts) == {"star", "point", "edge", "kd", "feature_kd"}
    expected = ChannelDistillationLoss(2.0)(with_head_features(teacher)(x, training=False)["features"],
                                            trainer.projection(with_head_features(student)(x, training=True)["features"]))
    assert float(parts["feature_kd"]) == pytest.approx(float(expected), rel=1e-4) and float(expected) > 0
    weighted = 0.5 * parts["star"] + 3.0 * parts["point"] + 7.0 * parts["edge"] + 2.0 * parts["kd"] + 3.0 * parts["feature_kd"]
    assert float(total) == pytest.approx(float(weighted), rel=1e-5)
    assert "feature_kd" not in trainer.compute_losses(x, targets, training=False)[1]

    trainer.compile(optimizer=keras.optimizers.SGD(0.1))
    trainer.optimizer.build(trainer.trained_variables)
    before = trainer.projection.kernel.numpy().copy()
    unlabeled = np.random.default_rng(5).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    logs = {k: float(v) for k, v in trainer.train_step(((tf.constant(x), targets), tf.constant(unlabeled))).items()}
    assert {"feature_kd", "feature_kd_unlabeled", "kd_unlabeled"} <= set(logs) and logs["feature_kd_unlabeled"] > 0
    assert logs["loss"] == pytest.approx(0.5 * logs["star"] + 3.0 * logs["point"] + 7.0 * logs["edge"]
                                         + 2.0 * (logs["kd"] + logs["kd_unlabeled"])
                                         + 3.0 * (logs["feature_kd"] + logs["feature_kd_unlabeled"]), rel=1e-5)
    assert np.abs(trainer.projection.kernel.numpy() - before).max() > 0

    path = str(tmp_path / "backup.weights.h5")
    trainer(x[:1])  # built, as run_training builds it before the backup
    trainer.save_weights(path)
    fresh = LandmarkTrainer(_tiny("mobilevitv2_pico", True), config, teacher)
    fresh(x[:1])
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh.projection.kernel.numpy(), trainer.projection.kernel.numpy())
    np.testing.assert_allclose(fresh.landmark_model(x)["heatmaps"], student(x)["heatmaps"], atol=1e-6)


def test_checkpoint_callback_saves_only_a_strictly_better_finite_score(tmp_path, monkeypatch):
    """best.keras and best.json follow the lowest NME (a tie keeps the earlier epoch), last.keras every finite
    epoch; a NaN score or loss saves nothing, and a NaN score stops training through StopOnDivergence."""
    import landmark_kd.evaluate
    import landmark_kd.trainer
    from landmark_kd.trainer import StopOnDivergence

    scores, saved = iter([0.5, 0.3, 0.3, 0.4, float("nan"), 0.1]), []
    monkeypatch.setattr(landmark_kd.evaluate, "evaluate_predictions", lambda *a: ({"nme": next(scores)}, None))
    def save(model, path):  # each epoch's last.keras holds its epoch's number
        saved.append((len(logged), os.path.basename(path)))
        open(path, "w").write(f"epoch {len(logged)}")

    monkeypatch.setattr(landmark_kd.trainer, "save_model_atomically", save)
    divergence = StopOnDivergence()
    divergence.set_model(keras.Sequential([keras.layers.Dense(1)]))
    callback = EvaluateAndCheckpoint(_tiny(), None, [], get_scheme("68"), TrainConfig(), str(tmp_path), divergence)
    monkeypatch.setattr(callback.predictor, "predict_dataset", lambda ds: type("R", (), {"landmarks": 0, "index": 0}))
    logged, best = [], []
    for epoch in range(5):
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["val_nme"])
        best.append((tmp_path / "best.keras").read_text())  # a copy of the best epoch's last.keras
    assert logged[:4] == [0.5, 0.3, 0.3, 0.4] and np.isnan(logged[4])
    assert saved == [(0, "last.keras"), (1, "last.keras"), (2, "last.keras"), (3, "last.keras")]
    assert best == ["epoch 0", "epoch 1", "epoch 1", "epoch 1", "epoch 1"]
    assert (tmp_path / "last.keras").read_text() == "epoch 3" and len(os.listdir(tmp_path)) == 3  # no temporaries
    assert json.load(open(tmp_path / "best.json")) == {"epoch": 2, "nme": 0.3} and callback.best == 0.3
    assert divergence.diverged == "in epoch 5 (its validation predictions are not numbers)"
    callback.on_epoch_end(5, {"loss": float("nan")})  # a diverged loss: not even scored
    assert len(saved) == 4 and next(scores) == 0.1


def test_checkpoint_callback_keeps_the_best_score_of_a_resumed_run(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"epoch": 3, "nme": 0.042}))
    callback = EvaluateAndCheckpoint(_tiny(), None, [], get_scheme("68"), TrainConfig(), str(tmp_path))
    assert callback.best == pytest.approx(0.042)
    (tmp_path / "best.json").write_text('{"epoch": 3, "nm')  # half written (by an older version)
    assert EvaluateAndCheckpoint(_tiny(), None, [], get_scheme("68"), TrainConfig(), str(tmp_path)).best == np.inf


class _Stop(keras.callbacks.Callback):
    """Kills the 'run' (raises) when epoch `at` begins, as a SIGKILL would between two epochs."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)
        if epoch == self.at:
            raise KeyboardInterrupt


def _fit(backup_dir, epochs=4, stop_at=None, backups=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    stop, backup = _Stop(stop_at), ResumableBackup(str(backup_dir))
    if backups is not None:  # a caller that looks at the backup callback afterwards
        backups.append(backup)
    try:
        model.fit(x, y, epochs=epochs, verbose=0, callbacks=[backup, stop])
    except KeyboardInterrupt:
        pass
    return model, stop.seen


def test_whole_history_joins_the_epochs_before_a_resume_key_by_key(tmp_path):
    backup = ResumableBackup(str(tmp_path))
    backup.epoch_logs = [{"loss": 3.0, "val_nme": 0.5}, {"loss": 2.0}, {"loss": 1.0, "val_nme": 0.25}]
    whole = backup.whole_history({"loss": [1.0], "val_nme": [0.25]})  # this fit ran only the third epoch
    assert list(whole) == ["loss", "val_nme"] and whole["loss"] == [3.0, 2.0, 1.0]
    assert whole["val_nme"][::2] == [0.5, 0.25] and np.isnan(whole["val_nme"][1])
    backup.epoch_logs = [{"loss": 3.0}]  # a backup written before the record was kept: this fit's History
    assert backup.whole_history({"loss": [np.float32(2.0), 1.0]}) == {"loss": [2.0, 1.0]}


def test_backup_half_written_by_a_kill_falls_back_to_the_previous_epoch(tmp_path, capsys):
    backup = tmp_path / "backup"
    _, seen = _fit(backup, stop_at=3)
    assert seen == [0, 1, 2, 3]
    names = sorted(os.listdir(backup))
    assert names == ["history.json", "latest.weights.h5", "previous.weights.h5", "previous_training_metadata.json",
                     "training_metadata.json"]  # no temporary file left behind
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # killed while writing epoch 3
    _, seen = _fit(backup)
    assert seen == [2, 3]  # resumed from the previous backup (after epoch 2), not from the start
    assert "unreadable" in capsys.readouterr().out
    # the backup outlives fit (the run deletes it after its final report), now holding the last epoch
    assert json.load(open(backup / "training_metadata.json"))["epoch"] == 4
    _, seen = _fit(backup)
    assert seen == []  # every epoch done: the same fit trains nothing again


def test_backup_with_a_truncated_epoch_counter_resumes_or_starts_over(tmp_path, capsys):
    backup = tmp_path / "backup"
    _fit(backup, stop_at=2)
    (backup / "training_metadata.json").write_text("")  # killed between truncating and writing the counter
    _, seen = _fit(backup, stop_at=3)
    assert seen == [1, 2, 3]  # the previous pair: weights and counter after epoch 1
    for name in os.listdir(backup):
        (backup / name).write_bytes(b"junk")
    _, seen = _fit(backup, epochs=2)
    assert seen == [0, 1]
    assert "training starts over (best.keras is kept)" in capsys.readouterr().out


def test_a_kill_between_the_backups_weights_and_its_epoch_counter_resumes_from_a_matching_pair(tmp_path, monkeypatch,
                                                                                             capsys):
    """The weights and the epoch counter are two files renamed one after the other: killed between the two, the
    backup held the new epoch's weights under the old epoch's counter, and the resumed run trained that epoch
    again on top of them (one epoch more than asked, the schedule and step count shifted). The counter now
    records the optimiser's step, and a pair that disagrees is passed over for the previous one."""
    import landmark_kd.trainer

    real_atomic_json, saves = landmark_kd.trainer.atomic_json, []

    def killed_before_the_third_counter(path, data):
        if os.path.basename(path) == "training_metadata.json":
            saves.append(path)
            if len(saves) == 3:
                raise KeyboardInterrupt
        real_atomic_json(path, data)

    backup = tmp_path / "backup"
    monkeypatch.setattr(landmark_kd.trainer, "atomic_json", killed_before_the_third_counter)
    model, seen = _fit(backup)
    assert seen == [0, 1, 2] and int(model.optimizer.iterations.numpy()) == 3
    monkeypatch.setattr(landmark_kd.trainer, "atomic_json", real_atomic_json)
    assert len(json.load(open(backup / "history.json"))["epochs"]) == 3  # written before the counter that failed
    backups = []
    _fit(backup, stop_at=2, backups=backups)  # stopped again before it trains: the history is of epochs 1 and 2
    assert [logs["loss"] for logs in backups[0].epoch_logs] == [logs["loss"] for logs in json.load(
        open(backup / "history.json"))["epochs"][:2]]
    model, seen = _fit(backup, backups=backups)
    assert seen == [2, 3]  # the pair after epoch 2: epoch 3's weights had no counter of their own
    assert int(model.optimizer.iterations.numpy()) == 4  # 4 epochs of 1 step, as if never killed
    assert len(backups[1].whole_history({"loss": [0.0, 0.0]})["loss"]) == 4
    assert "does not match its epoch counter" in capsys.readouterr().out


MIXED_MIRRORED = r"""
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
sys.path.insert(0, "tests")
from test_trainer import _batch
from landmark_kd.trainer import LandmarkTrainer
from landmark_kd.training import TrainConfig
x, targets = _batch()
x = np.concatenate([x, x * 1e30])  # the second replica's half overflows float16, the first's does not
targets = {k: np.concatenate([v, v]) for k, v in targets.items()}
keras.mixed_precision.set_global_policy("mixed_float16")
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    keras.utils.set_random_seed(0)
    image = keras.Input((64, 64, 3))  # no BatchNorm, whose shared statistics would carry the overflow across
    maps = lambda n, name: keras.layers.Conv2D(n, 4, strides=4, activation="softplus", dtype="float32", name=name)(
        keras.layers.Conv2D(8, 3, padding="same")(image))
    model = keras.Model(image, {"heatmaps": maps(68, "heatmaps"), "point_maps": maps(68, "point_maps"),
                                "edge_maps": maps(targets["edges"].shape[-1], "edge_maps")})
    trainer = LandmarkTrainer(model, TrainConfig(clipnorm=None))
    # a scale of 1: the first replica's gradients stay finite (Keras starts at 32768)
    trainer.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW(1e-3), initial_scale=1.0))
keras.mixed_precision.set_global_policy("float32")
trainer.fit(tf.data.Dataset.from_tensors((x, targets)), epochs=1, verbose=0)
print("RESULT" + json.dumps({"finite": bool(all(np.all(np.isfinite(v.numpy())) for v in model.weights)),
                             "applied": int(trainer.optimizer.iterations.numpy())}))
"""


def test_mixed_float16_skips_a_step_that_overflows_on_any_replica(tmp_path):
    """Keras' LossScaleOptimizer judged the step by the first replica's gradients alone: an overflow on the second
    was applied, and `--mixed-precision mixed_float16 --strategy mirrored` turned the weights NaN in its first
    steps (the run then stopped as 'diverged' at an --lr that trains on one device)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", MIXED_MIRRORED], capture_output=True, text=True, cwd=root, timeout=300,
                         env={**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = next((l for l in run.stdout.splitlines() if l.startswith("RESULT")), None)
    assert line, run.stderr[-3000:]
    assert json.loads(line[6:]) == {"finite": True, "applied": 0}  # skipped on both replicas, weights kept


@pytest.mark.parametrize("warmup", [0, 3])
def test_the_schedule_is_keras_cosine_decay_read_once_per_traced_step(warmup):
    """AdamW reads its schedule once per weight (weight decay): traced, our schedule is one subgraph, not one
    per weight, and five weights take the very updates Keras' CosineDecay gives them, warmup and all."""
    import tensorflow as tf

    args = (0.0 if warmup else 3e-3, 8)
    kwargs = dict(alpha=0.01, warmup_target=3e-3 if warmup else None, warmup_steps=warmup)
    ours, keras_own = WarmupCosineDecay(*args, **kwargs), keras.optimizers.schedules.CosineDecay(*args, **kwargs)
    assert [float(ours(s)) for s in range(14)] == [float(keras_own(s)) for s in range(14)]
    results, graphs = [], []
    for schedule in (ours, keras_own):
        weights = [keras.Variable(np.full((3,), 1.0 + i, np.float32)) for i in range(5)]
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.05)
        optimizer.build(weights)

        @tf.function
        def step():
            optimizer.apply([tf.fill((3,), 0.1 * (i + 1)) for i in range(5)], weights)

        for _ in range(12):
            step()
        results.append([w.numpy() for w in weights])
        graphs.append(step.get_concrete_function().graph)
    assert all(np.array_equal(a, b) for a, b in zip(*results))
    # Keras': a Cos per weight, or with warmup a `cond` per weight, whose branches hold them
    copies = [sum(op.type in ("Cos", "If", "StatelessIf") for op in g.get_operations()) for g in graphs]
    assert copies[0] == 1 and copies[1] >= 5
