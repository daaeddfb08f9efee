import os

import numpy as np
import pytest

from landmark_kd.evaluate import evaluate_predictions
from landmark_kd.metrics import nme_inner51
from landmark_kd.data import Sample
from landmark_kd.schemes import get_scheme


def test_68_point_metrics_report_the_inner51_figures_too():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (4, 68, 2))
    gt[:, 36], gt[:, 45] = [10, 50], [70, 50]
    samples = [Sample("x.png", g.astype(np.float32)) for g in gt]
    pred = gt + rng.normal(0, 1, gt.shape)
    pred[0, 17:] += 20  # one failure
    metrics, errors = evaluate_predictions(pred, np.arange(4), samples, get_scheme("68"))
    inner = nme_inner51(pred, gt)
    assert metrics["nme_inner51"] == pytest.approx(inner.mean())
    assert metrics["fr_inner51"] == 0.25 and metrics["median_nme_inner51"] == pytest.approx(np.median(inner))
    assert "nme_inner51" not in evaluate_predictions(pred[:, 17:], np.arange(4),
                                                     [Sample("x", g[17:].astype(np.float32)) for g in gt], get_scheme("51"))[0]


def test_scores_are_split_into_frontal_and_large_pose_faces():
    rng = np.random.default_rng(1)
    gt = rng.uniform(20, 80, (4, 68, 2))
    gt[:, 36], gt[:, 45] = [30, 40], [70, 40]
    gt[:, 0], gt[:, 16] = [0, 50], [100, 50]
    gt[:, 30, 1] = 70
    gt[:, 30, 0] = [50, 52, 85, 90]  # two frontal faces, two turned far towards point 16
    samples = [Sample("x.png", g.astype(np.float32)) for g in gt]
    pred = gt.copy()
    pred[2:] += 4  # only the turned faces are off: 4 * sqrt(2) px over a 40 px eye distance
    metrics, errors = evaluate_predictions(pred, np.arange(4), samples, get_scheme("68"))
    frontal, turned = metrics["by_pose"]["frontal"], metrics["by_pose"]["large_pose"]
    assert frontal == pytest.approx({"faces": 2, "nme": 0.0, "median_nme": 0.0, "fr": 0.0}, abs=1e-6)
    assert turned["faces"] == 2 and turned["nme"] == pytest.approx(4 * np.sqrt(2) / 40) and turned["fr"] == 1.0
    assert "by_pose" not in evaluate_predictions(pred[:, 17:], np.arange(4),
                                                 [Sample("x", g[17:].astype(np.float32)) for g in gt], get_scheme("51"))[0]



def test_predictions_are_scored_against_the_faces_index_names_and_at_the_threshold_given():
    """`index` says which sample each prediction is of (a dataset's batches skip faces whose image is unreadable),
    and a threshold other than 0.1 holds for the failure rates of the whole set, the inner 51 points and each
    pose group alike."""
    rng = np.random.default_rng(2)
    gt = rng.uniform(20, 80, (3, 68, 2))
    gt[:, 36], gt[:, 45] = [30, 40], [70, 40]
    gt[:, 0], gt[:, 16], gt[:, 30] = [0, 50], [100, 50], [50, 70]  # frontal faces
    samples = [Sample(f"{i}.png", g.astype(np.float32)) for i, g in enumerate(gt)]
    pred = gt[[2, 0]] + np.array([0.0, 3.2])[:, None, None] * [1.0, 0.0]  # faces 2 and 0; 0 off by NME 0.08
    metrics, errors = evaluate_predictions(pred, np.array([2, 0]), samples, get_scheme("68"), threshold=0.05)
    assert errors == pytest.approx([0.0, 0.08], abs=1e-6)
    assert metrics["fr"] == 0.5 and metrics["fr_inner51"] == 0.5 and metrics["by_pose"]["frontal"]["fr"] == 0.5
    assert evaluate_predictions(pred, np.array([2, 0]), samples, get_scheme("68"))[0]["fr"] == 0.0



def test_opencv_batches_skip_an_unreadable_image_and_keep_the_last_short_batch(tmp_path):
    """Batches of `batch_size` crops cut by each face box's evaluation matrix; an image that cannot be read is left
    out (its index with it) and the faces after it still come, the last batch short."""
    from landmark_kd.crop import box_crop_matrix
    from landmark_kd.data import load_dataset
    from landmark_kd.data.synthetic import generate
    from landmark_kd.evaluate import opencv_batches

    samples, _ = load_dataset(generate(str(tmp_path / "faces"), 4, seed=3, size=96, sheet=False), num_points=68)
    samples[1] = Sample(str(tmp_path / "missing.png"), samples[1].landmarks)
    batches = list(opencv_batches(samples, 32, 2))
    assert [b[1]["index"].tolist() for b in batches] == [[0, 2], [3]]
    crops, info = batches[0]
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.float32 and 0 <= crops.min() and crops.max() <= 1
    assert np.allclose(info["affine"][1], box_crop_matrix(samples[2].face_box(), 32))
    assert crops[1].std() > 0.02  # the face's pixels


def test_scores_are_also_binned_by_the_yaw_of_the_ground_truths_head_pose():
    """by_yaw_degrees: faces of the mean 3D face turned by 5, 20, 20, 40 and 70 degrees, each answer off by its
    own amount: each bin holds its faces and their NME; a layout without the inner points has no bins."""
    from conftest import posed_face
    from landmark_kd.evaluate import score_lines

    gt = np.stack([posed_face(yaw) for yaw in (5, 20, -20, 40, 70)])
    samples = [Sample("x.png", g.astype(np.float32)) for g in gt]
    pred = gt + np.array([1.0, 2.0, 4.0, 3.0, 5.0])[:, None, None] * [1.0, 0.0]  # each face off by its own dx
    metrics, errors = evaluate_predictions(pred, np.arange(5), samples, get_scheme("68"))
    bins = metrics["by_yaw_degrees"]
    assert list(bins) == ["0-15", "15-30", "30-45", "45+"]
    assert [row["faces"] for row in bins.values()] == [1, 2, 1, 1]
    assert bins["15-30"]["nme"] == pytest.approx(errors[1:3].mean()) and bins["45+"]["nme"] == pytest.approx(errors[4])
    lines = score_lines(metrics)
    assert any(line.startswith("  68-point NME by |yaw| of the ground truth's head pose: 0-15°: ") for line in lines)
    assert "by_yaw_degrees" not in evaluate_predictions(pred[:, :29], np.arange(5), [
        Sample("x", g[:29].astype(np.float32)) for g in gt], get_scheme("29"))[0]


def test_face_box_landmarks_ignores_the_datasets_own_boxes(tmp_path):
    """A dataset's boxes (custom JSON `bbox`) frame the crop unless --face-box landmarks; with it the scores are
    those of the same faces without boxes, as benchmarks/real_faces.py crops them."""
    import json

    import keras

    from landmark_kd.data import load_dataset
    from landmark_kd.data.synthetic import generate
    from landmark_kd.evaluate import EvalConfig, run_evaluation
    from landmark_kd.models import build_landmark_model

    keras.utils.set_random_seed(0)
    samples, _ = load_dataset(generate(str(tmp_path / "faces"), 4, seed=7, size=96, sheet=False), num_points=68)
    model = str(tmp_path / "m.keras")
    build_landmark_model("mobilevitv2_pico", "68", 64).save(model)
    rows = [{"image": s.image_path, "landmarks": s.landmarks.tolist()} for s in samples]
    (tmp_path / "plain.json").write_text(json.dumps({"samples": rows}))
    boxed = [{**r, "bbox": [0, 0, 40, 40]} for r in rows]  # a box far off the face
    (tmp_path / "boxed.json").write_text(json.dumps({"samples": boxed}))

    def nme(data: str, face_box: str) -> float:
        config = EvalConfig(model=model, data=str(tmp_path / data), out=str(tmp_path / f"{data}_{face_box}"),
                            face_box=face_box)
        return run_evaluation(config)["nme"]

    plain = nme("plain.json", "data")
    assert nme("boxed.json", "landmarks") == pytest.approx(plain, rel=1e-6)
    assert nme("boxed.json", "data") != pytest.approx(plain, rel=1e-2)


def test_face_box_landmarks_frames_a_51_point_model_by_the_files_68_points(tmp_path):
    """A 51-point model on 68-point files learnt crops of the 68 points' box; --face-box landmarks cropped around
    the 51 inner points instead (tighter), though a 300-W folder has no boxes of its own to ignore."""
    import keras

    from landmark_kd.data.synthetic import generate
    from landmark_kd.evaluate import EvalConfig, run_evaluation
    from landmark_kd.models import build_landmark_model

    keras.utils.set_random_seed(0)
    faces = generate(str(tmp_path / "faces"), 4, seed=7, size=96, sheet=False)
    model = str(tmp_path / "m51.keras")
    build_landmark_model("mobilevitv2_pico", "51", 64).save(model)

    def nme(face_box: str) -> float:
        config = EvalConfig(model=model, data=faces, out=str(tmp_path / face_box), face_box=face_box)
        return run_evaluation(config)["nme"]

    assert nme("landmarks") == pytest.approx(nme("data"), rel=1e-6)


def test_default_output_keeps_one_folder_per_model():
    """Scoring runs/teacher/best.keras and then runs/student/best.keras wrote both to runs/evaluate/best."""
    from landmark_kd.evaluate import default_output

    teacher, student = default_output("runs/teacher/best.keras"), default_output("runs/student/best.keras")
    assert teacher == os.path.join("runs", "evaluate", "teacher_best") and teacher != student
    assert default_output("e/s_best_int8.tflite") != default_output("e/s_best_fp16.tflite")


def _real_face_run(tmp_path, model) -> str:
    """`model` saved as a run's best.keras whose config.json names real photos (as train.py writes it)."""
    import json

    run = tmp_path / "runs" / "real"
    run.mkdir(parents=True)
    model.save(str(run / "best.keras"))
    (run / "config.json").write_text(json.dumps({"train_data": "../shared/realfaces/ytf68/train", "val_data": None,
                                                 "synthetic_root": "data/synthetic", "data_format": "auto"}))
    return str(run / "best.keras")


def test_what_marks_a_model_trained_on_real_faces(tmp_path):
    """The shipped models, a run whose config.json names real data, and an export of such a run (its report.json);
    not a run on the drawn faces (its config.json names the synthetic set), nor a model with no record."""
    import json

    from landmark_kd.data.synthetic import generate
    from landmark_kd.evaluate import trained_on_real_faces
    from landmark_kd.predictor import PRETRAINED_DIR

    assert trained_on_real_faces(os.path.join(PRETRAINED_DIR, "real_fast.keras")).startswith("a shipped model")
    assert trained_on_real_faces("real_student_fp16.tflite").startswith("a shipped model")  # a shipped name
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"")
    assert trained_on_real_faces(str(run / "best.keras")) is None  # no config.json: nothing says so
    config = {"train_data": "data/synthetic/train", "synthetic_root": "data/synthetic", "unlabeled": None}
    (run / "config.json").write_text(json.dumps(config))
    assert trained_on_real_faces(str(run / "best.keras")) is None
    drawn = generate(str(tmp_path / "my_drawn"), 1, seed=1, size=64, sheet=False)
    (run / "config.json").write_text(json.dumps({**config, "train_data": [drawn]}))  # drawn, elsewhere
    assert trained_on_real_faces(str(run / "best.keras")) is None
    (run / "config.json").write_text(json.dumps({**config, "unlabeled": "photos/lfw"}))  # distilled on real photos
    assert trained_on_real_faces(str(run / "best.keras")) == "its run's config.json names photos/lfw"
    export = tmp_path / "export"
    export.mkdir()
    (export / "run_best_fp16.tflite").write_bytes(b"")
    report = {"model": "run/best.keras", "trained_on_real_faces": "its run's config.json names photos/lfw",
              "exports": {"fp16": {"file": "somewhere/run_best_fp16.tflite"}}}
    (export / "report.json").write_text(json.dumps(report))
    assert trained_on_real_faces(str(export / "run_best_fp16.tflite")) == \
        "exported from run/best.keras: its run's config.json names photos/lfw"
    (export / "other.tflite").write_bytes(b"")
    assert trained_on_real_faces(str(export / "other.tflite")) is None  # not one the report lists


def test_a_real_face_model_scored_on_the_drawn_faces_is_warned_about(tmp_path, monkeypatch, capsys):
    """No --data: the score is on the synthetic faces, which says little of a model of real photos."""
    import json

    import keras

    from landmark_kd.data.synthetic import generate
    from landmark_kd.evaluate import EvalConfig, run_evaluation
    from landmark_kd.models import build_landmark_model

    monkeypatch.chdir(tmp_path)
    drawn = generate(os.path.join("data", "synthetic", "test"), 3, seed=8, size=96, sheet=False)
    keras.utils.set_random_seed(0)
    model = _real_face_run(tmp_path, build_landmark_model("mobilevitv2_pico", "68", 64))
    metrics = run_evaluation(EvalConfig(model=model, out=str(tmp_path / "scored")))
    expected = (f"warning: {model} was trained on real photographs (its run's config.json names "
                f"../shared/realfaces/ytf68/train), but this accuracy is on drawn synthetic faces ({drawn}) because no "
                "--data was given; pass --data with labelled real faces (a 300-W folder of images and .pts files, a "
                "WFLW .txt, a COFW .mat or a custom .json/.csv)")
    assert expected in capsys.readouterr().out.splitlines()
    assert metrics["warnings"] == [expected]
    assert json.load(open(tmp_path / "scored" / "eval_metrics.json"))["warnings"] == [expected]
    # the same faces named with --data: the user chose them, no warning
    assert run_evaluation(EvalConfig(model=model, data=drawn, out=str(tmp_path / "named")))["warnings"] == []
    assert "warning" not in capsys.readouterr().out
    # the run folder stands for its best.keras: the same score, the file named in the report
    folder = run_evaluation(EvalConfig(model=os.path.dirname(model), data=drawn, out=str(tmp_path / "folder")))
    assert folder["model"] == model and folder["nme"] == metrics["nme"] and folder["face_box"] == "data"
    # a shipped model by its bare name: the shipped file in the report and in the default folder's name (it was
    # named after the folder the command was typed in)
    from landmark_kd.predictor import PRETRAINED_DIR

    shipped = run_evaluation(EvalConfig(model="real_fast_fp16.tflite", data=drawn))
    assert shipped["model"] == os.path.join(PRETRAINED_DIR, "real_fast_fp16.tflite")
    assert os.path.isfile(os.path.join("runs", "evaluate", "pretrained_real_fast_fp16", "eval_metrics.json"))


def test_flags_evaluate_would_ignore_and_files_it_would_replace_are_refused(tmp_path, capsys):
    """--images-root on data that names its own images, a folder given as a WFLW list or a custom file, and an
    eval_metrics.json in --out that no evaluation wrote: each one line, nothing replaced. An earlier evaluation
    is replaced, with the model it was of."""
    import json

    import keras

    from landmark_kd.data.synthetic import generate
    from landmark_kd.errors import ConfigError, DataError, OutputError
    from landmark_kd.evaluate import EvalConfig, run_evaluation
    from landmark_kd.models import build_landmark_model

    keras.utils.set_random_seed(0)
    faces = generate(str(tmp_path / "faces"), 2, seed=3, size=96, sheet=False)
    model = str(tmp_path / "m.keras")
    build_landmark_model("mobilevitv2_pico", "68", 64).save(model)
    with pytest.raises(ConfigError, match=f"--images-root is for a WFLW list; {faces} is read as 300w data"):
        run_evaluation(EvalConfig(model=model, data=faces, images_root=str(tmp_path), out=str(tmp_path / "a")))
    with pytest.raises(DataError, match=f"{faces}: a folder, not a WFLW annotation list"):
        run_evaluation(EvalConfig(model=model, data=faces, data_format="wflw", out=str(tmp_path / "a")))
    with pytest.raises(DataError, match=f"{faces}: a folder, not a custom annotation file"):
        run_evaluation(EvalConfig(model=model, data=faces, data_format="custom", out=str(tmp_path / "a")))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "eval_metrics.json").write_text('{"my": "notes"}')
    with pytest.raises(OutputError, match="eval_metrics.json: not an earlier evaluation's record; it is kept"):
        run_evaluation(EvalConfig(model=model, data=faces, out=str(mine)))
    assert json.loads((mine / "eval_metrics.json").read_text()) == {"my": "notes"}
    run_evaluation(EvalConfig(model=model, data=faces, out=str(tmp_path / "b")))
    capsys.readouterr()
    run_evaluation(EvalConfig(model=model, data=faces, out=str(tmp_path / "b")))
    assert f"replacing the earlier evaluation in {tmp_path / 'b'} (of {model}; pass another --out to keep it)" in \
        capsys.readouterr().out


def test_inner51_figures_are_left_out_for_a_68_point_layout_other_than_ibugs():
    # nme_inner51 reads iBUG's jaw (0-16) and eye corners (36, 45); a custom 68-point layout whose eye corners are
    # elsewhere would get a figure over the wrong points and the wrong distance.
    from landmark_kd.metrics import nme_per_image
    from landmark_kd.schemes import custom_scheme

    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (3, 68, 2))
    gt[:, 0], gt[:, 1] = [10, 50], [70, 50]
    pred = gt + rng.normal(0, 1, gt.shape)
    scheme = custom_scheme(68, outer_eye_corners=(0, 1), name="my68")
    samples = [Sample("x.png", g.astype(np.float32)) for g in gt]
    metrics, errors = evaluate_predictions(pred, np.arange(3), samples, scheme)
    np.testing.assert_allclose(errors, nme_per_image(pred, gt, scheme), rtol=1e-5)
    assert "nme_inner51" not in metrics
    # the built-in layout, through its saved config too (as a .tflite's scheme.json brings it back), keeps them
    from landmark_kd.schemes import LandmarkScheme

    again = LandmarkScheme.from_config(get_scheme("68").get_config())
    assert "nme_inner51" in evaluate_predictions(pred, np.arange(3), samples, again)[0]
