"""A tiny teacher run and a tiny distillation run, end to end through the shared pipeline."""
import json
import os

import cv2
import numpy as np
import pytest

from landmark_kd.data.synthetic import generate
from landmark_kd.errors import ConfigError, MissingFileError
from landmark_kd.models import load_model
from landmark_kd.training import TrainConfig, run_training


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_faces")
    return generate(str(root), 32, seed=11, size=96, sheet=False)


def _config(faces, out, **kw):
    base = dict(preset="swinv2_pico", image_size=64, head_dim=32, head_convs=1, train_data=faces, val_data=faces,
                epochs=6, batch_size=8, steps_per_epoch=8, learning_rate=3e-3, warmup_epochs=0.5, output=str(out),
                seed=1, verbose=0, augment=False)
    base.update(kw)
    # A run of a few steps goes untraced: about half the time (tracing the step costs more than the steps), the
    # same arithmetic (test_an_untraced_run_trains_as_the_traced_one); longer runs and XLA keep the traced step.
    steps = base["epochs"] * (base["steps_per_epoch"] or 1000)
    base.setdefault("run_eagerly", steps <= 4 and not base.get("xla"))
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def teacher_run(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    return out, run_training(_config(faces, out))


@pytest.mark.slow
def test_teacher_loss_falls_and_nme_on_training_faces_drops(teacher_run):
    out, metrics = teacher_run
    loss = metrics["history"]["loss"]
    assert loss[-1] < 0.7 * loss[0]
    nme = metrics["history"]["val_nme"]
    assert min(nme[1:]) < nme[0]
    assert metrics["nme"] == pytest.approx(min(nme), rel=1e-4)  # the best checkpoint is what gets reported
    for name in ("best.keras", "last.keras", "metrics.json", "ced.png", "predictions.png", "config.json"):
        assert os.path.exists(os.path.join(out, name)), name
    saved = json.load(open(os.path.join(out, "metrics.json")))
    for key in ("nme", "fr", "auc", "normalization", "num_images", "num_points"):
        assert key in saved
    assert saved["num_points"] == 68 and saved["num_images"] == 32 and saved["steps"] == 48
    # a run without a teacher says so, as a distilled one names its teacher: an ablation compares key by key
    assert (saved["teacher"], saved["alpha"], saved["kd_mode"], saved["teacher_flip"]) == (None, 0.0, None, False)
    assert os.listdir(os.path.join(out, "logs"))  # TensorBoard event files
    assert not os.path.exists(os.path.join(out, "backup"))  # finished runs drop their backup


@pytest.mark.slow
def test_the_report_scores_best_keras_when_a_later_epoch_was_worse(faces, tmp_path, monkeypatch):
    """The final scoring loads best.keras's weights into the model the epochs were scored with: when the last
    epoch is not the best, the report must be the best epoch's score, not the last weights'."""
    import landmark_kd.trainer

    class FirstEpochBest(landmark_kd.trainer.EvaluateAndCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            self.best = -1.0  # no later epoch is saved as best.keras

    monkeypatch.setattr(landmark_kd.trainer, "EvaluateAndCheckpoint", FirstEpochBest)
    out = tmp_path / "first_best"
    metrics = run_training(_config(faces, out, epochs=2, steps_per_epoch=2))
    first, second = metrics["history"]["val_nme"]
    assert abs(first - second) > 1e-4  # the two epochs' weights score apart, so the check below tells them apart
    assert metrics["nme"] == pytest.approx(first, rel=1e-5)
    assert json.load(open(out / "metrics.json"))["nme"] == metrics["nme"]


@pytest.mark.slow
def test_a_finished_or_other_architecture_run_is_never_trained_over(teacher_run, faces, tmp_path):
    """Rerunning a finished run used to train it again from scratch and replace its best.keras; resuming an
    interrupted run with another --preset kept the old architecture's best.keras and reported its score as the
    new model's. Both are refused before any work; --restart trains over a finished run."""
    import shutil

    finished = tmp_path / "finished"
    shutil.copytree(teacher_run[0], finished)
    best = (finished / "best.keras").read_bytes()
    with pytest.raises(ConfigError, match="holds a finished run; pass --restart"):
        run_training(_config(faces, finished))
    (finished / "metrics.json").unlink()  # interrupted in its final evaluation
    # the hint scores it on the run's own validation data (without --data, evaluate uses the drawn faces)
    with pytest.raises(ConfigError, match=f"final report is missing.*landmark_kd.evaluate --model "
                                          f"{finished}/best.keras --data {faces}` scores it"):
        run_training(_config(faces, finished))
    assert (finished / "best.keras").read_bytes() == best
    (finished / "backup").mkdir()  # an interrupted run (its config.json says swinv2_pico, 64 px)
    with pytest.raises(ConfigError, match=r"another architecture \(preset 'swinv2_pico' -> 'mobilevitv2_pico', "
                                          r"image_size 64 -> 128\)"):
        run_training(_config(faces, finished, preset="mobilevitv2_pico", image_size=128))
    assert (finished / "best.keras").read_bytes() == best
    metrics = run_training(_config(faces, finished, restart=True, epochs=1, steps_per_epoch=1))
    assert metrics["steps"] == 1 and (finished / "best.keras").read_bytes() != best


def _stopped_while_scoring(faces, out, monkeypatch, **kw):
    """A run of `kw` stopped by Ctrl-C in its final scoring (its epochs done and backed up), then the scoring put back."""
    import landmark_kd.evaluate

    write_report = landmark_kd.evaluate.write_report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(landmark_kd.evaluate, "write_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(_config(faces, out, **kw))
    monkeypatch.setattr(landmark_kd.evaluate, "write_report", write_report)


@pytest.mark.slow
def test_stopped_while_scoring_the_same_command_writes_the_report(faces, tmp_path, monkeypatch, capsys):
    """Ctrl-C after the last epoch, during the final scoring, used to leave best.keras with no backup and no
    metrics.json: the 'same command resumes' hint then answered 'holds a finished run'. The backup now outlives
    the scoring, so the same command trains nothing and writes the report."""
    out = tmp_path / "stopped"
    _stopped_while_scoring(faces, out, monkeypatch, epochs=2, steps_per_epoch=2)
    assert (out / "backup").is_dir() and (out / "best.keras").exists() and not (out / "metrics.json").exists()
    capsys.readouterr()
    metrics = run_training(_config(faces, out, epochs=2, steps_per_epoch=2))
    printed = capsys.readouterr().out
    assert "Resuming the interrupted run" in printed
    assert "all 2 epochs were trained before the interruption: writing the final report" in printed
    assert "epoch 1:" not in printed and "epoch 2:" not in printed  # nothing trained again
    saved = json.load(open(out / "metrics.json"))
    assert saved["steps"] == 4 and len(saved["history"]["val_nme"]) == 2 and saved["nme"] == metrics["nme"]
    assert not (out / "backup").exists()  # dropped once the report is written


@pytest.mark.slow
def test_resumed_with_fewer_epochs_than_trained_the_report_is_of_all_of_them(faces, tmp_path, monkeypatch, capsys):
    """A run stopped after 2 epochs, resumed with --epochs 1: the report said "all 1 epochs" and recorded 1
    epoch beside 2 epochs' history and steps. It now says and records the 2 that were trained."""
    out = tmp_path / "fewer"
    _stopped_while_scoring(faces, out, monkeypatch, epochs=2, steps_per_epoch=2)
    capsys.readouterr()
    run_training(_config(faces, out, epochs=1, steps_per_epoch=2))
    assert "(2 epochs, more than --epochs 1 asks for: the report is of all 2)" in capsys.readouterr().out
    saved = json.load(open(out / "metrics.json"))
    assert saved["epochs"] == 2 and saved["steps"] == 4 and len(saved["history"]["val_nme"]) == 2


@pytest.mark.slow
def test_a_full_disk_while_config_json_is_rewritten_leaves_the_run_resumable(faces, tmp_path, monkeypatch):
    """A resumed run rewrites config.json (with changed_on_resume); it used to truncate the file in place, so a full
    disk or a kill there left a config.json no training run wrote, and every later command refused the folder as
    someone else's: the interrupted run could never be resumed. It is now written to a temporary file and renamed."""
    import builtins
    import errno

    from landmark_kd.errors import OutputError

    out = tmp_path / "run"
    _stopped_while_scoring(faces, out, monkeypatch, epochs=1, steps_per_epoch=1)
    record = (out / "config.json").read_text()
    real_open = builtins.open

    class FullDisk:
        """A file on a full disk: the first bytes go in, then ENOSPC."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def full_disk_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        writes = any(m in mode for m in "wax+")
        return FullDisk(handle) if writes and os.path.basename(str(path)).startswith("config.json") else handle

    monkeypatch.setattr(builtins, "open", full_disk_open)
    with pytest.raises(OutputError, match="config.json: cannot write it \\(No space left on device\\)"):
        run_training(_config(faces, out, epochs=1, steps_per_epoch=1, learning_rate=1e-3))
    monkeypatch.setattr(builtins, "open", real_open)
    assert (out / "config.json").read_text() == record
    assert sorted(p.name for p in out.iterdir() if ".tmp" in p.name) == []
    metrics = run_training(_config(faces, out, epochs=1, steps_per_epoch=1))  # space freed: the same command ends it
    assert metrics["steps"] == 1 and not (out / "backup").exists()


@pytest.mark.slow
def test_a_distillation_resumed_from_a_changed_teacher_file_says_so(faces, tmp_path, monkeypatch, capsys):
    """An interrupted distillation resumed after its teacher file was replaced (runs/teacher retrained, or a new
    model copied over it) went on distilling from the new teacher with no word: config.json, metrics.json and the
    warning on resume compared only the path. The teacher file's digest is recorded and compared now."""
    from landmark_kd.models import HeadConfig, build_landmark_model
    from landmark_kd.schemes import get_scheme

    teacher = tmp_path / "teacher.keras"
    build_landmark_model("swinv2_pico", get_scheme("68"), 64, HeadConfig(16, 1, False)).save(teacher)
    out = tmp_path / "student"
    config = dict(preset="mobilevitv2_pico", light_head=True, head_dim=16, teacher=str(teacher), alpha=1.0, epochs=1,
                  steps_per_epoch=1)
    _stopped_while_scoring(faces, out, monkeypatch, **config)
    build_landmark_model("swinv2_pico", get_scheme("68"), 64, HeadConfig(16, 1, False)).save(teacher)  # another one
    capsys.readouterr()
    run_training(_config(faces, out, **config))
    printed = capsys.readouterr().out
    assert "Resuming the interrupted run" in printed
    assert "warning: resuming with other settings than the run had: teacher_sha1" in printed
    before, after = json.load(open(out / "config.json"))["changed_on_resume"]["teacher_sha1"]
    assert before != after and len(before) == len(after) == 1


@pytest.mark.slow
def test_what_killed_runs_left_half_written_is_removed_by_the_next_run(faces, tmp_path, capsys):
    """SIGKILL or SIGTERM during a save runs no cleanup: the checkpoint's temporary copy (as large as the model; the
    backup's with the optimiser's slots) stayed in --output for good, one per kill, and neither the resumed run nor
    --restart removed it; so did a finished run's backup renamed for deletion. The next run, holding the lock,
    removes them; a user's own file of that shape stays."""
    import dataclasses

    out = tmp_path / "run"
    config = _config(faces, out, epochs=1, steps_per_epoch=1)
    (out / "backup").mkdir(parents=True)  # an interrupted run, killed in its first backup's write
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    dead = ["best.keras.4194999.tmp.keras", "config.json.4194999.tmp.tmp"]
    for name in dead + ["notes.4194999.tmp.txt"]:
        (out / name).write_bytes(b"half")
    (out / "backup" / "latest.weights.h5.4194999.tmp.weights.h5").write_bytes(b"half")
    (out / "backup.done-4194999").mkdir()
    (out / "backup.done-4194999" / "latest.weights.h5").write_bytes(b"w")
    run_training(config)
    assert "removed what killed runs left half-written" in capsys.readouterr().out
    left = sorted(os.listdir(out))
    assert not [name for name in dead if name in left] and "backup.done-4194999" not in left
    assert "notes.4194999.tmp.txt" in left and not (out / "backup").exists()


@pytest.mark.slow
def test_resume_with_restart_is_refused_before_anything_is_deleted(teacher_run, faces, tmp_path):
    import shutil

    run = tmp_path / "interrupted"
    shutil.copytree(teacher_run[0], run)
    (run / "backup").mkdir()
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(ConfigError, match="--resume and --restart contradict each other"):
        run_training(_config(faces, run, resume=True, restart=True))
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.slow
def test_distillation_kd_falls_and_student_round_trips(teacher_run, faces, tmp_path):
    teacher_dir, _ = teacher_run
    config = _config(faces, tmp_path / "student", preset="mobilevitv2_pico", alpha=1.0, epochs=4, light_head=True,
                     teacher=os.path.join(teacher_dir, "best.keras"))
    metrics = run_training(config)
    kd = metrics["history"]["kd"]
    assert kd[-1] < kd[0]
    student = load_model(os.path.join(tmp_path, "student", "best.keras"))
    x = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    assert student(x)["landmarks"].shape == (1, 68, 2)
    assert metrics["teacher"].endswith("best.keras") and metrics["alpha"] == 1.0


@pytest.mark.slow
def test_distillation_from_a_flip_averaged_ensemble(teacher_run, faces, tmp_path):
    teacher_dir, _ = teacher_run
    best, last = (os.path.join(teacher_dir, n) for n in ("best.keras", "last.keras"))
    config = _config(faces, tmp_path / "student_e", preset="mobilevitv2_pico", alpha=1.0, epochs=3, light_head=True,
                     teacher=[best, last], teacher_flip=True)
    metrics = run_training(config)
    kd = metrics["history"]["kd"]
    assert len(kd) == 3 and kd[-1] < kd[0]
    assert metrics["teacher"] == [best, last] and metrics["teacher_flip"] is True
    saved = json.load(open(tmp_path / "student_e" / "config.json"))
    assert saved["teacher"] == [best, last] and saved["teacher_flip"] is True
    with pytest.raises(ConfigError, match="has no teacher"):
        run_training(_config(faces, tmp_path / "f", teacher_flip=True))


@pytest.mark.slow
def test_teacher_with_another_scheme_is_refused(teacher_run, faces, tmp_path):
    teacher_dir, _ = teacher_run
    config = _config(faces, tmp_path / "s", scheme="51", alpha=1.0, teacher=os.path.join(teacher_dir, "best.keras"))
    with pytest.raises(ConfigError, match="teacher predicts scheme '68'"):
        run_training(config)


@pytest.mark.slow
def test_evaluate_cli_scores_a_saved_model(teacher_run, faces, tmp_path, capsys):
    from landmark_kd import evaluate

    teacher_dir, metrics = teacher_run
    out = str(tmp_path / "eval")
    assert evaluate.main(["--model", os.path.join(teacher_dir, "best.keras"), "--data", faces, "--out", out]) == 0
    saved = json.load(open(os.path.join(out, "eval_metrics.json")))
    assert saved["nme"] == pytest.approx(metrics["nme"], rel=1e-4)  # same model, same faces, same numbers
    assert os.path.exists(os.path.join(out, "eval_ced.png")) and os.path.exists(os.path.join(out, "eval_predictions.png"))
    printed = capsys.readouterr().out
    # the inner-51 figure the model card reports is printed, not only stored
    assert (f"  inner 51 points (no jaw line): NME {saved['nme_inner51']:.4f} (median "
            f"{saved['median_nme_inner51']:.4f}), FR {saved['fr_inner51']:.4f}") in printed.splitlines()
    assert "replacing the earlier evaluation" not in printed
    assert evaluate.main(["--model", os.path.join(teacher_dir, "best.keras"), "--data", faces, "--out", out]) == 0
    assert f"replacing the earlier evaluation in {out}" in capsys.readouterr().out
    assert evaluate.main(["--model", str(tmp_path / "nope.keras"), "--data", faces]) == 2


@pytest.mark.slow
def test_mixed_precision_keeps_losses_float32(faces, tmp_path):
    import keras

    try:
        metrics = run_training(_config(faces, tmp_path / "mp", epochs=1, steps_per_epoch=2, mixed_precision="mixed_bfloat16"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(metrics["history"]["loss"][0])
    assert metrics["steps"] == 2


@pytest.mark.slow
def test_an_untraced_run_trains_as_the_traced_one(faces, tmp_path):
    """--run-eagerly runs the same train step untraced: the same loss, the same weights after two steps, and the
    same report; beside --xla, which compiles the traced step, it is refused before any work."""
    runs = {}
    for eager in (False, True):
        out = tmp_path / f"eager_{eager}"
        metrics = run_training(_config(faces, out, epochs=1, steps_per_epoch=2, run_eagerly=eager))
        runs[eager] = metrics, load_model(str(out / "last.keras")).get_weights()
        assert json.load(open(out / "config.json"))["run_eagerly"] is eager
    (traced, traced_weights), (eager, eager_weights) = runs[False], runs[True]
    assert eager["history"]["loss"] == pytest.approx(traced["history"]["loss"], rel=1e-5)
    assert eager["nme"] == pytest.approx(traced["nme"], rel=1e-4)
    assert max(np.abs(a - b).max() for a, b in zip(traced_weights, eager_weights)) < 1e-4
    with pytest.raises(ConfigError, match="--xla and --run-eagerly contradict each other"):
        run_training(_config(faces, tmp_path / "both", xla=True, run_eagerly=True))
    assert not (tmp_path / "both").exists()


@pytest.mark.slow
def test_xla_compiled_train_step(faces, tmp_path):
    metrics = run_training(_config(faces, tmp_path / "xla", epochs=1, steps_per_epoch=2, xla=True))
    assert metrics["steps"] == 2 and np.isfinite(metrics["history"]["loss"][0])


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Unlabelled real photos: the astronaut photograph (one face) three times, and one broken file."""
    import cv2
    from skimage.data import astronaut

    root = tmp_path_factory.mktemp("unlabelled")
    for i in range(3):
        cv2.imwrite(str(root / f"photo{i}.jpg"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff nothing")
    return str(root)


@pytest.mark.slow
def test_distillation_on_unlabelled_photos(teacher_run, faces, photo_folder, tmp_path, capsys):
    teacher_dir, _ = teacher_run
    config = _config(faces, tmp_path / "student_u", preset="mobilevitv2_pico", alpha=1.0, epochs=3, light_head=True,
                     unlabeled=photo_folder, teacher=os.path.join(teacher_dir, "best.keras"))
    metrics = run_training(config)
    kd_u = metrics["history"]["kd_unlabeled"]
    assert len(kd_u) == 3 and all(np.isfinite(kd_u)) and kd_u[-1] < kd_u[0]
    boxes = json.load(open(tmp_path / "student_u" / "unlabeled_boxes.json"))["boxes"]
    found = [b for b in boxes.values() if isinstance(b, list)]
    assert len(boxes) == 4 and len(found) == 3
    assert 150 < found[0][0] < 250 and found[0][2] - found[0][0] > 60  # the astronaut's face, not the whole photo
    out = capsys.readouterr().out
    assert "3 samples loaded, 1 skipped" in out and "skipped by reason: truncated JPEG" in out
    listed = json.load(open(tmp_path / "student_u" / "skipped.json"))["skipped"]  # beside labelled data's skips
    assert listed == [{"set": "unlabeled", "record": os.path.join(photo_folder, "broken.jpg"),
                       "reason": "truncated JPEG (no end-of-image marker)"}]


@pytest.mark.slow
def test_a_larger_input_teacher_distils_from_its_own_crops(faces, photo_folder, tmp_path, capsys, monkeypatch):
    """A 128 px teacher and a 64 px student: on labelled and unlabelled batches alike the teacher is handed the
    faces cut at 128 px, and the student still learns to copy it."""
    import keras

    from landmark_kd.models import HeadConfig, build_landmark_model
    from landmark_kd.schemes import get_scheme
    from landmark_kd.teacher import Teacher

    keras.utils.set_random_seed(2)
    teacher_path = str(tmp_path / "teacher128.keras")
    build_landmark_model("swinv2_pico", get_scheme("68"), 128, HeadConfig(16, 1, False)).save(teacher_path)
    seen = []
    original = Teacher.heatmaps

    def spy(self, x, size=None, large=None):
        seen.append((int(x.shape[1]), None if large is None else int(large.shape[1])))
        return original(self, x, size, large)

    monkeypatch.setattr(Teacher, "heatmaps", spy)
    config = _config(faces, tmp_path / "student_s", preset="mobilevitv2_pico", alpha=1.0, epochs=3, light_head=True,
                     unlabeled=photo_folder, teacher=teacher_path)
    metrics = run_training(config)
    assert len(seen) >= 2 and set(seen) == {(64, 128)}  # traced for the labelled and the unlabelled batches
    kd = metrics["history"]["kd"]
    assert kd[-1] < kd[0]
    assert "teacher input 128px: it sees each face cut at 128px, the student at 64px" in capsys.readouterr().out


def test_the_summary_lists_the_files_the_run_wrote(capsys, tmp_path):
    """Without matplotlib a run writes no CED plot, and a run whose every epoch scored NaN has no best.keras; its
    summary then leaves those lines out (it used to list them, or fail on the missing path)."""
    from landmark_kd.training import print_summary

    for name in ("best.keras", "last.keras", "metrics.json", "predictions.png", "ced.png"):
        (tmp_path / name).write_text("x")
    paths = {k: str(tmp_path / n) for k, n in (("best", "best.keras"), ("last", "last.keras"),
                                                ("metrics", "metrics.json"), ("predictions", "predictions.png"))}
    metrics = {"nme": 0.031, "normalization": "inter_ocular", "threshold": 0.1, "fr": 0.0, "auc": 0.69,
               "num_images": 300, "baseline_mean_shape_nme": 0.12, "train_seconds": 61.0,
               "paths": {**paths, "logs": "r/logs"}}
    print_summary(metrics)
    out = capsys.readouterr().out
    assert "Validation NME 0.0310 (inter_ocular), FR@0.1 0.0000, AUC@0.1 0.6900 on 300 faces" in out
    assert f"  best model   {tmp_path}/best.keras\n" in out and "tensorboard --logdir r/logs" in out and "CED" not in out
    print_summary({**metrics, "paths": {**metrics["paths"], "ced": str(tmp_path / "ced.png")}})
    assert f"  CED plot     {tmp_path}/ced.png\n" in capsys.readouterr().out
    os.remove(tmp_path / "best.keras")
    print_summary(metrics)
    out = capsys.readouterr().out
    assert "best model" not in out and "  last model   " in out


@pytest.mark.slow
def test_a_diverging_run_stops_with_one_error_and_saves_nothing_made_from_it(faces, tmp_path, capsys):
    """At a learning rate far too high the weights overflow (the loss may stay finite while the validation
    predictions are NaN): the run stops with one error naming the epoch and --lr, and writes no checkpoint,
    backup, metrics or summary from the garbage weights (it used to report FR 0 and list a best.keras it never
    wrote). A NaN face error counts as a failure."""
    from landmark_kd.errors import TrainingDivergedError
    from landmark_kd.metrics import failure_rate

    out = tmp_path / "diverged"
    with pytest.raises(TrainingDivergedError, match=r"training diverged in epoch 1 .* at --lr 1e\+09; nothing was "
                                                    r"saved: rerun with a lower --lr"):
        run_training(_config(faces, out, epochs=2, steps_per_epoch=2, learning_rate=1e9))
    assert sorted(os.listdir(out)) == ["config.json", "logs"]
    assert "Validation NME" not in capsys.readouterr().out
    assert failure_rate(np.array([np.nan, 0.05, 0.2])) == pytest.approx(2 / 3)


def test_changed_on_resume_keeps_each_settings_first_value_and_ignores_how_the_run_is_started(capsys):
    from landmark_kd.training import _changed_on_resume

    started = {"learning_rate": 2e-3, "epochs": 12, "alpha": 1.0, "output": "runs/a", "verbose": None,
               "run_eagerly": False, "changed_on_resume": {"learning_rate": [4e-3, 2e-3]}}
    record = {"learning_rate": 1e-3, "epochs": 14, "alpha": 1.0, "output": "runs/b", "verbose": 2,
              "run_eagerly": True, "teacher_sha1": ["f"]}  # a run resumed untraced to debug it trains the same
    assert _changed_on_resume(started, record) == {"learning_rate": [4e-3, 1e-3], "epochs": [12, 14]}
    assert ("warning: resuming with other settings than the run had: learning_rate 0.002 -> 0.001, epochs 12 -> 14 "
            "(recorded as changed_on_resume in config.json)") in capsys.readouterr().out
    assert _changed_on_resume({"epochs": 12, "changed_on_resume": {"epochs": [10, 12]}}, {"epochs": 12}) == {
        "epochs": [10, 12]}  # an earlier resume's change stays recorded
    assert capsys.readouterr().out == ""


def test_a_step_with_a_nan_loss_stops_training_where_it_happened():
    """The step-level check (a loss that turns NaN mid-epoch) and the epoch check that keeps checkpoints and
    backups from NaN weights."""
    import keras

    from landmark_kd.trainer import StopOnDivergence, finite_epoch

    assert finite_epoch({"loss": 1.0, "val_nme": 0.05}) and finite_epoch({"loss": 2.0}) and finite_epoch(None)
    assert not finite_epoch({"loss": float("nan")}) and not finite_epoch({"loss": 1.0, "val_nme": float("inf")})
    stop = StopOnDivergence()
    stop.set_model(keras.Sequential([keras.layers.Dense(1)]))
    stop.on_epoch_begin(2)
    stop.on_train_batch_end(3, {"loss": 0.5})
    assert stop.diverged is None and not getattr(stop.model, "stop_training", False)
    stop.on_train_batch_end(4, {"loss": float("nan")})
    stop.on_train_batch_end(5, {"loss": float("inf")})
    assert stop.diverged == "in epoch 3, step 5 (loss nan)" and stop.model.stop_training


@pytest.mark.slow
def test_a_batch_larger_than_the_training_set_is_capped_with_a_warning(faces, tmp_path, capsys):
    """--batch-size 64 with 32 faces: batches of 32, said once (a batch of 10**8 used to fill memory silently)."""
    metrics = run_training(_config(faces, tmp_path / "big", epochs=1, steps_per_epoch=1, batch_size=64))
    assert "warning: --batch-size 64 is more than the 32 training faces: batches of 32 are used" in capsys.readouterr().err
    assert json.load(open(tmp_path / "big" / "config.json"))["batch_size"] == 32 and metrics["steps"] == 1


def test_alpha_zero_leaves_a_named_teacher_out(capsys):
    """alpha 0 weights L_KD by nothing: the teacher is not loaded (a forward pass per step for nothing) nor
    recorded in metrics.json as if the run had been distilled from it."""
    from landmark_kd.training import _without_unused_teacher

    config = TrainConfig(alpha=0.0, teacher=["a.keras", "b.keras"], teacher_flip=True)
    assert (_without_unused_teacher(config).teacher, _without_unused_teacher(config).teacher_flip) == (None, False)
    assert "alpha is 0: training without a teacher (a.keras, b.keras not loaded)" in capsys.readouterr().out
    distilled = TrainConfig(alpha=0.5, teacher="a.keras")
    assert _without_unused_teacher(distilled) is distilled


def test_unlabelled_photos_and_kd_weight_need_a_teacher(faces, photo_folder, tmp_path):
    with pytest.raises(ConfigError, match="need a teacher"):
        run_training(_config(faces, tmp_path / "u", unlabeled=photo_folder))
    with pytest.raises(ConfigError, match="alpha=1 weights L_KD, which needs a teacher"):
        run_training(_config(faces, tmp_path / "u", alpha=1.0))
    assert not (tmp_path / "u").exists()  # refused before any work


@pytest.mark.slow
def test_unlabelled_path_that_is_no_folder_is_refused_before_any_work(teacher_run, faces, tmp_path):
    """--unlabeled given a file (a labels .json) or a missing path: one error naming it, and no output folder left
    behind (the refused run used to leave one holding skipped.json)."""
    teacher = str(teacher_run[0] / "best.keras")
    labels = tmp_path / "labels.json"
    labels.write_text("{}")
    for path, said in ((labels, "a file; --unlabeled takes a folder"), (tmp_path / "nope", "no such folder")):
        with pytest.raises(MissingFileError, match=said):
            run_training(_config(faces, tmp_path / "u", unlabeled=str(path), teacher=teacher, alpha=1.0))
        assert not (tmp_path / "u").exists()


@pytest.mark.slow
def test_several_training_sets_are_pooled(faces, tmp_path, capsys, monkeypatch):
    from landmark_kd.trainer import LandmarkTrainer

    traces = []
    original = LandmarkTrainer.train_step

    def counted(self, data):
        traces.append(self.optimizer.built)
        return original(self, data)

    monkeypatch.setattr(LandmarkTrainer, "train_step", counted)
    metrics = run_training(_config(faces, tmp_path / "pool", train_data=[faces, faces], epochs=1, steps_per_epoch=1))
    assert metrics["steps"] == 1
    assert traces == [True]  # optimiser built before fit: the step is traced once, not retraced for its slots
    out = capsys.readouterr().out
    assert out.count(f"train {faces}: 32 samples loaded") == 2
    assert "model swinv2_pico_aam" in out and "64 train / 32 val faces" in out


def test_validation_faces_that_are_training_faces_are_reported(faces, tmp_path, capsys):
    import shutil

    from landmark_kd.schemes import get_scheme
    from landmark_kd.training import load_data

    load_data(_config(faces, tmp_path / "x"), get_scheme("68"))
    assert "32 of the 32 validation faces' images are also training images" in capsys.readouterr().out
    val = tmp_path / "val"
    val.mkdir()
    for name in sorted(os.listdir(faces))[:4]:  # copies of training pictures are training pictures too
        shutil.copy(os.path.join(faces, name), val / name)
    train, held = load_data(_config(faces, tmp_path / "x", val_data=str(val)), get_scheme("68"))
    assert f"{len(held)} of the {len(held)} validation faces' images are also training images" in \
        capsys.readouterr().out and len(held) >= 1
    for name in os.listdir(val):  # the same faces saved again (other bytes) are other images
        if not name.endswith(".pts"):
            image = cv2.imread(str(val / name))
            cv2.imwrite(str(val / name), cv2.GaussianBlur(image, (3, 3), 0))
    train, held = load_data(_config(faces, tmp_path / "x", val_data=str(val)), get_scheme("68"))
    assert "also training images" not in capsys.readouterr().out and len(held) >= 1
    load_data(_config(faces, tmp_path / "x", val_data=None), get_scheme("68"))
    assert "pass --val-data for a fair score" in capsys.readouterr().out
    for k in range(7):  # more bad records than the summary names: the file lists every one
        (val / f"bad{k}.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    load_data(_config(faces, tmp_path / "x", val_data=str(val)), get_scheme("68"), str(tmp_path / "skipped.json"))
    out = capsys.readouterr().out
    assert "... and 2 more" in out and f"every skipped record: {tmp_path / 'skipped.json'} (7)" in out
    listed = json.load(open(tmp_path / "skipped.json"))["skipped"]
    assert sorted(os.path.basename(r["record"]).split(":")[0] for r in listed) == [f"bad{k}.pts" for k in range(7)]
    assert {r["set"] for r in listed} == {"val"}


def test_pooled_training_sets_holding_the_same_images_are_reported(faces, tmp_path, capsys):
    import shutil

    from landmark_kd.schemes import get_scheme
    from landmark_kd.training import load_data

    extra = tmp_path / "extra"
    extra.mkdir()
    names = sorted(n for n in os.listdir(faces) if n.endswith(".png"))
    for name in names[:3]:  # three copies of the first set's pictures, with their labels
        shutil.copy(os.path.join(faces, name), extra / name)
        stem = os.path.splitext(name)[0]
        shutil.copy(os.path.join(faces, stem + ".pts"), extra / (stem + ".pts"))
    load_data(_config(faces, tmp_path / "x", train_data=[faces, str(extra)]), get_scheme("68"))
    out = capsys.readouterr().out
    assert f"warning: 3 of the 3 images of {extra} are also in an earlier --train-data set (first: " in out
    load_data(_config(faces, tmp_path / "x", train_data=[str(extra), faces]), get_scheme("68"))
    assert f"3 of the {len(names)} images of {faces} are also in an earlier" in capsys.readouterr().out
    load_data(_config(faces, tmp_path / "x", train_data=[faces]), get_scheme("68"))
    assert "earlier --train-data set" not in capsys.readouterr().out  # one set: a picture with two faces is fine


def test_a_layout_without_flip_pairs_is_not_mirrored_in_training(capsys):
    """A layout of your own whose JSON leaves out flip_pairs was mirrored anyway, with no point swapped: each left
    point was taught at its right counterpart's place half the time."""
    from landmark_kd.schemes import custom_scheme, get_scheme
    from landmark_kd.training import pipeline_config

    config = TrainConfig()
    assert pipeline_config(config, False, get_scheme("68")).flip and pipeline_config(config, True, get_scheme("98")).flip
    assert "not mirrored" not in capsys.readouterr().out
    plain = custom_scheme(5, edges=[([0, 2, 1], False)], outer_eye_corners=(0, 1), name="five")
    assert not pipeline_config(config, False, plain).flip and not pipeline_config(config, True, plain).flip
    assert "scheme 'five' names no flip_pairs, so faces are not mirrored" in capsys.readouterr().out
    assert pipeline_config(config, False, custom_scheme(5, flip_pairs=[(0, 1)])).flip


def test_one_face_without_val_data_is_refused_in_one_line(tmp_path):
    """Holding out 10% of a single face left no training face: the run died with a ZeroDivisionError."""
    from landmark_kd.data import DatasetError
    from landmark_kd.schemes import get_scheme
    from landmark_kd.training import load_data

    one = generate(str(tmp_path / "one"), 1, seed=3, size=64, sheet=False)
    with pytest.raises(DatasetError, match="1 usable face.*pass --val-data"):
        load_data(_config(one, tmp_path / "x", val_data=None), get_scheme("68"))
    train, val = load_data(_config(one, tmp_path / "x", val_data=one), get_scheme("68"))
    assert len(train) == len(val) == 1


def test_unlabelled_skips_join_the_labelled_ones_in_skipped_json(tmp_path, capsys):
    """The unlabelled photos' skips are added to load_data's list as set "unlabeled"; loading again (a resumed
    run) replaces them rather than listing them twice, and leaves the labelled sets' entries."""
    from landmark_kd.data import LoadReport
    from landmark_kd.training import record_skipped

    path = str(tmp_path / "skipped.json")
    record_skipped(path, "unlabeled", LoadReport())
    assert not os.path.exists(path)  # nothing skipped, nothing written
    with open(path, "w") as handle:
        json.dump({"skipped": [{"set": "train", "record": "a.pts", "reason": "expected 68 points, got 5"}]}, handle)
    report = LoadReport()
    report.skip("p/x.jpg", "no face found")
    report.skip("p/y.jpg", "truncated JPEG (no end-of-image marker)")
    for _ in range(2):
        record_skipped(path, "unlabeled", report)
    listed = json.load(open(path))["skipped"]
    assert [(r["set"], r["record"], r["reason"]) for r in listed] == [
        ("train", "a.pts", "expected 68 points, got 5"), ("unlabeled", "p/x.jpg", "no face found"),
        ("unlabeled", "p/y.jpg", "truncated JPEG (no end-of-image marker)")]
    assert f"every skipped record: {path} (3)" in capsys.readouterr().out


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_models_weights(teacher_run, faces, tmp_path, capsys):
    teacher_dir, metrics = teacher_run
    best = os.path.join(teacher_dir, "best.keras")
    import keras

    from landmark_kd.models import HeadConfig, build_landmark_model

    # One step at a vanishing learning rate: the trained weights are still the source model's (a fresh model's,
    # built as the run builds it, are not), and it scores the source's NME.
    one_step = dict(epochs=1, steps_per_epoch=1, learning_rate=1e-9, warmup_epochs=0)
    tuned = run_training(_config(faces, tmp_path / "ft", init_from=str(teacher_dir), **one_step))  # the run folder
    assert f"starting from the weights of {best}" in capsys.readouterr().out
    source = load_model(best).trainable_weights
    keras.utils.set_random_seed(1)
    fresh = build_landmark_model("swinv2_pico", "68", 64, HeadConfig(32, 1, False))

    def gap(model):
        return max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(source, model.trainable_weights))

    assert gap(load_model(str(tmp_path / "ft" / "last.keras"))) < 1e-5 and gap(fresh) > 0.01
    assert tuned["nme"] == pytest.approx(metrics["nme"], rel=0.05)
    # Another input size takes the same weights (fine-tuning at a new resolution), and the run says so.
    run_training(_config(faces, tmp_path / "ft128", init_from=best, image_size=128, **one_step))
    out = capsys.readouterr().out
    assert f"starting from the weights of {best}" in out
    assert f"note: {best} was trained at 64 px; this run trains and validates at 128 px" in out


@pytest.mark.slow
def test_a_fine_tune_killed_before_its_first_backup_held_weights_resumes_from_init_from(faces, tmp_path, capsys):
    """Killed (or stopped by a full disk) after the backup folder was made but before its first weights were
    written, a fine-tuning run resumed with the same command skipped --init-from ("the weights come from the
    backup") and, the backup holding nothing, trained from random weights. --init-from is loaded on a resume too,
    and a backup without weights starts from it."""
    import dataclasses

    from landmark_kd.models import HeadConfig, build_landmark_model
    from landmark_kd.schemes import get_scheme

    start = tmp_path / "start.keras"
    import keras

    keras.utils.set_random_seed(123)  # other weights than the run's own seed would draw
    source = build_landmark_model("swinv2_pico", get_scheme("68"), 64, HeadConfig(32, 1, False))
    source.save(start)
    out = tmp_path / "run"
    config = _config(faces, out, init_from=str(start), epochs=1, steps_per_epoch=1, learning_rate=1e-12,
                     warmup_epochs=0.0)
    (out / "backup").mkdir(parents=True)  # the run's state when killed inside its first backup's write
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    run_training(config)
    printed = capsys.readouterr().out
    assert "stopped before its first epoch ended: starting over" in printed
    assert "Resuming the interrupted run" not in printed and f"starting from the weights of {start}" in printed
    tuned = load_model(str(out / "best.keras"))
    for a, b in zip(source.trainable_weights, tuned.trainable_weights):  # BatchNorm statistics move at any --lr
        assert np.allclose(a.numpy(), b.numpy(), atol=1e-5), a.path


@pytest.mark.slow
def test_a_start_killed_after_its_first_best_keras_but_before_its_backup_is_not_a_finished_run(faces, tmp_path,
                                                                                              monkeypatch, capsys):
    """The checkpoint callback writes best.keras before the backup callback made backup/: a kill between the two
    in the first epoch left a folder that the same command refused as "a finished run". The backup folder is now
    made before training, and one without weights starts over."""
    from landmark_kd import trainer

    out = tmp_path / "run"

    def killed(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.ResumableBackup, "_save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        run_training(_config(faces, out, epochs=2, steps_per_epoch=1))
    assert (out / "best.keras").exists() and (out / "backup").is_dir() and not any((out / "backup").iterdir())
    monkeypatch.undo()
    capsys.readouterr()
    metrics = run_training(_config(faces, out, epochs=2, steps_per_epoch=1))
    assert "stopped before its first epoch ended: starting over" in capsys.readouterr().out
    assert metrics["steps"] == 2 and not (out / "backup").exists()


@pytest.mark.slow
def test_a_run_killed_while_backing_up_an_epoch_logs_each_epoch_once_in_tensorboard(faces, tmp_path, monkeypatch):
    """TensorBoard wrote epoch N's points before the backup saved N: killed in that save, the run resumed at N
    and logged N again, two points at one step."""
    import tensorflow as tf

    from landmark_kd import trainer

    out = tmp_path / "run"
    saves = []
    save = trainer.ResumableBackup._save_model

    def killed_in_the_second_save(self):
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt
        save(self)

    monkeypatch.setattr(trainer.ResumableBackup, "_save_model", killed_in_the_second_save)
    with pytest.raises(KeyboardInterrupt):
        run_training(_config(faces, out, epochs=3, steps_per_epoch=1))
    monkeypatch.undo()
    import gc

    gc.collect()  # the killed fit's summary writers flush as they go
    run_training(_config(faces, out, epochs=3, steps_per_epoch=1))
    steps = [e.step for path in (out / "logs" / "train").iterdir()
             for e in tf.compat.v1.train.summary_iterator(str(path)) for v in e.summary.value if v.tag == "epoch_loss"]
    assert sorted(steps) == [0, 1, 2]


@pytest.mark.slow
def test_fine_tuning_from_another_architecture_or_no_file_is_refused(teacher_run, faces, tmp_path):
    from landmark_kd.errors import MissingFileError

    teacher_dir, _ = teacher_run
    best = os.path.join(teacher_dir, "best.keras")
    trained_with = "trained with --preset swinv2_pico --image-size 64 --head full --head-dim 32 --head-convs 1"
    with pytest.raises(ConfigError, match=f"another architecture, {trained_with} .this run has --preset "
                                          "mobilevitv2_pico --head light;.*pass the flags it was trained with"):
        run_training(_config(faces, tmp_path / "a", preset="mobilevitv2_pico", light_head=True, init_from=best))
    with pytest.raises(ConfigError, match=f"another architecture, {trained_with} .this run has --head-dim 48; "
                                          "weight .* is .*32.*, here .*48"):
        run_training(_config(faces, tmp_path / "b", head_dim=48, init_from=best))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused after the data loaded: no empty folder
    with pytest.raises(MissingFileError, match="no model to start from"):
        run_training(_config(faces, tmp_path / "c", init_from=str(tmp_path / "none.keras")))
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(MissingFileError, match="empty_run: a folder without best.keras"):
        run_training(_config(faces, tmp_path / "c", init_from=str(tmp_path / "empty_run")))
    assert not (tmp_path / "c").exists()  # refused before any work


def test_init_from_with_pretrained_is_refused_before_any_work(faces, tmp_path):
    """--init-from copies every weight, so a --pretrained backbone given with it would be silently discarded."""
    hf = tmp_path / "hf"
    hf.mkdir()
    with pytest.raises(ConfigError, match="--init-from .* replaces every weight, so the --pretrained backbone .* "
                                          "would be loaded and discarded: pass one of them"):
        run_training(_config(faces, tmp_path / "out", init_from="real_student.keras", pretrained=str(hf)))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_pose_balance_keeps_the_training_budget(faces, tmp_path, capsys):
    """Turned faces are repeated in the training list, yet an epoch is still one pass of the set as loaded."""
    metrics = run_training(_config(faces, tmp_path / "pose", epochs=1, steps_per_epoch=None, pose_balance=True))
    assert metrics["steps"] == 32 // 8
    assert "pose balance: 32 faces -> " in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--pose-balance reads the yaw .* scheme '29' is not one"):
        run_training(_config(faces, tmp_path / "cofw", scheme="29", pose_balance=True))
    assert not (tmp_path / "cofw").exists()


@pytest.mark.slow
def test_an_undecodable_validation_image_is_named(faces, tmp_path, capsys):
    """A PNG with damaged pixel data passes the load checks (signature, end chunk, size) and then fails to decode:
    the warning names it, not only how many there were."""
    import shutil

    val = tmp_path / "val"
    shutil.copytree(faces, val)
    png = sorted(p for p in os.listdir(val) if p.endswith(".png"))[0]
    data = bytearray((val / png).read_bytes())
    at = data.find(b"IDAT")
    data[at + 40:at + 60] = bytes(20)
    (val / png).write_bytes(bytes(data))
    run_training(_config(faces, tmp_path / "run", val_data=str(val), epochs=1, steps_per_epoch=1))
    assert f"1 validation image(s) passed the load checks but cannot be decoded (first: {val / png})" in \
        capsys.readouterr().out


def test_an_output_folder_that_is_not_a_runs_is_refused_untouched(faces, tmp_path):
    """A folder holding metrics.json, last.keras or logs/ but no training run's config.json is a user's: a run
    used to replace those files (and a junk best.keras made --restart delete them). The data's own folder is
    refused too: checkpoints and logs would land among the images."""
    from landmark_kd.errors import OutputError

    mine = tmp_path / "mine"
    (mine / "logs").mkdir(parents=True)
    (mine / "metrics.json").write_text('{"my": "stats"}')
    (mine / "config.json").write_text('{"mine": 1}')
    for restart in (False, True):
        with pytest.raises(OutputError, match="holds metrics.json, logs, config.json and a config.json that no training run wrote"):
            run_training(_config(faces, mine, restart=restart))
    assert sorted(os.listdir(mine)) == ["config.json", "logs", "metrics.json"]
    assert (mine / "metrics.json").read_text() == '{"my": "stats"}'
    with pytest.raises(OutputError, match=f"--output {faces} is the input folder"):
        run_training(_config(faces, faces))


def test_restart_removes_tensorboards_logs_and_keeps_what_a_user_put_there(tmp_path):
    import dataclasses

    from landmark_kd.training import _clear_earlier_run

    out = tmp_path / "run"
    (out / "logs" / "train").mkdir(parents=True)
    (out / "logs" / "train" / "events.out.tfevents.1.x").write_text("e")
    (out / "logs" / "notes.txt").write_text("mine")
    (out / "best.keras").write_text("k")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(TrainConfig())))
    _clear_earlier_run(str(out))
    assert sorted(os.listdir(out)) == ["logs"] and os.listdir(out / "logs") == ["notes.txt"]


@pytest.mark.slow
def test_a_start_stopped_before_its_first_epoch_leaves_no_curves_beside_the_next(faces, tmp_path, capsys):
    """Stopped in epoch 1 (no backup yet), a run leaves its TensorBoard event files; the same command again
    starts over, and its curves used to sit beside the dead start's, both from step 0."""
    import dataclasses

    out = tmp_path / "run"
    (out / "logs" / "train").mkdir(parents=True)
    (out / "logs" / "train" / "events.out.tfevents.1.dead").write_text("e")
    (out / "logs" / "notes.txt").write_text("mine")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(_config(faces, out))))
    run_training(_config(faces, out, epochs=1, steps_per_epoch=1))
    assert "removed the TensorBoard logs of an earlier start" in capsys.readouterr().out
    assert not (out / "logs" / "train" / "events.out.tfevents.1.dead").exists()
    assert os.listdir(out / "logs" / "train") and (out / "logs" / "notes.txt").read_text() == "mine"


def test_a_restart_refused_for_bad_input_keeps_the_earlier_run(faces, tmp_path):
    """--restart deleted the finished run's models and report first, and then the run was refused for data of
    another point count, or an --init-from model that does not load: bad input cost the earlier run."""
    import dataclasses

    from landmark_kd.errors import UserError

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(_config(faces, out))))
    earlier = {"best.keras": "weights", "last.keras": "weights", "metrics.json": '{"nme": 0.03}', "best.json": "{}"}
    for name, text in earlier.items():
        (out / name).write_text(text)
    (out / "logs" / "train").mkdir(parents=True)
    five = tmp_path / "five.json"
    five.write_text(json.dumps({"samples": [{"image": "a.png", "landmarks": [[1.0, 2.0]] * 5}] * 2}))
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 not a keras archive")
    for bad in ({"val_data": str(five)}, {"init_from": str(junk)}):
        with pytest.raises(UserError):
            run_training(_config(faces, out, restart=True, epochs=1, steps_per_epoch=1, **bad))
        assert {name: (out / name).read_text() for name in earlier} == earlier, bad
        assert (out / "logs" / "train").is_dir() and (out / "config.json").exists()
