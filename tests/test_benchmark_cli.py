"""The benchmarks' command lines: a mistyped path or an unusable dataset is one `error:` line and exit 2, as in
the project's own CLIs, not a traceback from deep inside a model loader."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "real_faces data": (["real_faces.py", "--data", "{t}/nowhere"], "{t}/nowhere: no such file or directory"),
    "real_faces model": (["real_faces.py", "--models", "{t}/missing.keras", "--data", "{t}"],
                         "{t}/missing.keras: no such file or directory"),
    "real_faces empty dataset": (["real_faces.py", "--models", "real_fast_fp16.tflite", "--data", "{t}/empty"],
                                 "{t}/empty"),
    "real_faces no data": (["real_faces.py", "--models", "real_fast_fp16.tflite"],
                           "--data: name the 68-point sets to score, e.g. --data ../shared/realfaces/ytf68/val"),
    "real_faces teacher crop without a teacher": (["real_faces.py", "--models", "real_fast_fp16.tflite", "--data",
                                                   "{t}/empty", "--teacher-crop", "64"],
                                                  "--teacher-crop 64 scores the --teacher on smaller crops"),
    "real_faces teacher crop of zero": (["real_faces.py", "--teacher-crop", "0"],
                                        "--teacher-crop: must be at least 1, got 0"),
    "real_faces nothing to score": (["real_faces.py", "--data", "{t}/empty"],
                                    "nothing to score: pass --models (e.g. real_student.keras) and/or --mesh"),
    "heatmap_decoding model": (["heatmap_decoding.py", "--models", "{t}/missing.keras", "--data", "{t}"],
                               "{t}/missing.keras: no such file or directory"),
    "int8_latency": (["int8_latency.py", "{t}/missing.tflite"], "{t}/missing.tflite: no such file or directory"),
    "latency_side_by_side": (["latency_side_by_side.py", "{t}/missing.tflite"],
                             "{t}/missing.tflite: no such file or directory"),
    "rotation_alignment": (["rotation_alignment.py", "--data", "{t}/nowhere"], "{t}/nowhere: no such file"),
    "tflite_efficiency": (["tflite_efficiency.py", "--model", "{t}/missing.keras"], "{t}/missing.keras: no such file"),
    "flops_by_block": (["flops_by_block.py", "--model", "{t}/missing.keras"], "{t}/missing.keras: no such file"),
    "video_tracking": (["video_tracking.py", "--model", "{t}/missing.tflite"], "{t}/missing.tflite: no such file"),
    "face_detection": (["face_detection.py", "--realfaces", "{t}/nowhere"], "{t}/nowhere: real-face data not found"),
    "face_chips": (["face_chips.py", "--data", "{t}/nowhere"], "{t}/nowhere: no such file"),
    "denormals": (["denormals.py", "--model", "{t}/missing.keras"], "{t}/missing.keras: no such file"),
    "box_conventions": (["box_conventions.py", "--model", "{t}/missing.tflite", "--data", "{t}"],
                        "{t}/missing.tflite: no such file"),
    "crop_resampling": (["crop_resampling.py", "--data", "{t}/nowhere"], "{t}/nowhere: no such file"),
    "drawn_marks data": (["drawn_marks.py", "--data", "{t}/nowhere"], "{t}/nowhere: no such file"),
    "drawn_marks nothing to measure": (["drawn_marks.py"], "nothing to measure: pass --data"),
    "drawn_marks models without data": (["drawn_marks.py", "--models", "real_student_fp16.tflite", "--marked", "{t}"],
                                        "--models are scored on --data"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_path_is_one_error_line(tmp_path, case):
    (tmp_path / "empty").mkdir()
    args, needle = CASES[case]
    args = [os.path.join(ROOT, "benchmarks", args[0])] + [a.format(t=tmp_path) for a in args[1:]]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle.format(t=tmp_path) in errors[0], done.stderr[-2000:]


SCRIPTS = sorted(name for name in os.listdir(os.path.join(ROOT, "benchmarks"))
                 if name.endswith(".py") and "__main__" in open(os.path.join(ROOT, "benchmarks", name)).read())


def _help(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_working_help(script):
    """A `%` or a bad format in any help text only shows when --help formats it: run each script's --help."""
    done = _help(script)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: {script}") and "options:" in done.stdout, done.stdout[:500]


SHIPPED_NAMES = {  # each script's model flags given the model card's bare names, then one bad flag after them
    "box_conventions.py": ["--model", "real_student_fp16.tflite", "--data", "{t}/nowhere"],
    "crop_resampling.py": ["--models", "real_student_fp16.tflite", "real_fast.keras", "--data", "{t}/nowhere"],
    "denormals.py": ["--model", "real_student.keras", "--calibration-data", "{t}/nowhere"],
    "drawn_marks.py": ["--models", "real_student_fp16.tflite", "real_student_nokd.keras", "--data", "{t}/nowhere"],
    "face_chips.py": ["--models", "real_student_fp16.tflite", "real_teacher.keras", "--data", "{t}/nowhere"],
    "flops_by_block.py": ["--model", "real_student.keras", "--image-size", "{t}/nowhere"],
    "head_pose.py": ["--models", "real_student_fp16.tflite", "--realfaces", "{t}/nowhere"],
    "heatmap_decoding.py": ["--models", "real_student.keras", "--data", "{t}/nowhere"],
    "int8_latency.py": ["real_student_int8.tflite", "--runs", "{t}/nowhere"],
    "label_offsets.py": ["--models", "real_student.keras", "real_fast_fp16.tflite", "--data", "{t}/nowhere"],
    "latency_side_by_side.py": ["real_fast_fp16.tflite", "landmark_kd/pretrained/real_student_fp16.tflite",
                                "--runs", "{t}/nowhere"],
    "real_faces.py": ["--models", "real_student.keras", "--teacher", "real_teacher.keras", "--data", "{t}/nowhere"],
    "rotation_alignment.py": ["--model", "real_fast_fp16.tflite", "--data", "{t}/nowhere"],
    "shot_cuts.py": ["--model", "real_fast_fp16.tflite", "--cuts", "{t}/nowhere"],
    "tflite_efficiency.py": ["--model", "real_student.keras", "--compare", "real_fast_fp16.tflite",
                             "--runs", "{t}/nowhere"],
    "video_tracking.py": ["--model", "real_fast_fp16.tflite", "--frames", "{t}/nowhere"],
}


@pytest.mark.parametrize("script", sorted(SHIPPED_NAMES))
def test_shipped_models_by_bare_name(tmp_path, script):
    """The benchmarks take what predict takes (`predictor.resolve_model_path`): from any folder, a shipped model's
    bare name passes the parser, which then stops at the bad flag after it, before loading anything."""
    args = [a.format(t=tmp_path) for a in SHIPPED_NAMES[script]]
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert f"{tmp_path}/nowhere" in errors[0] and ".keras" not in errors[0] and ".tflite" not in errors[0], errors


BAD_NUMBERS = {  # flags that used to take any int or float, and fail (or loop, or divide by zero) far later
    ("denormals.py", "--threads", "abc"): "--threads: expected a whole number, got 'abc'",
    ("denormals.py", "--threads", "0"): "--threads: must be at least 1, got 0",
    ("drawn_marks.py", "--shift", "0"): "--shift: must be",
    ("face_chips.py", "--size", "2049"): "--size: must be 16 to 2048 pixels, got 2049",
    ("face_detection.py", "--lfw", "0"): "--lfw: must be at least 1, got 0",
    ("face_detection.py", "--threads", "-1"): "--threads: must be at least 1, got -1",
    ("shot_cuts.py", "--frames", "1"): "--frames: must be at least 2, got 1",
    ("shot_cuts.py", "--noise", "-1"): "--noise: must be a finite number of at least 0, got -1",
    ("shot_cuts.py", "--cut-change", "nan"): "--cut-change: must be a finite number of at least 0, got nan",
    ("video_tracking.py", "--frames", "1"): "--frames: must be at least 2, got 1",
    ("video_tracking.py", "--fps", "0"): "--fps: must be a finite number above 0, got 0",
    ("video_tracking.py", "--refine", "-2"): "--refine: must be 0 or more, got -2",
}


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_bad_numbers_are_refused_by_the_parser(tmp_path, case):
    script, flag, value = case
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), flag, value], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert BAD_NUMBERS[case] in errors[0], errors


def test_model_path_resolves_shipped_names_only(tmp_path, monkeypatch):
    import argparse

    from landmark_kd.cli import model_path
    from landmark_kd.predictor import PRETRAINED_DIR

    monkeypatch.chdir(tmp_path)
    assert model_path("real_student.keras") == os.path.join(PRETRAINED_DIR, "real_student.keras")
    (tmp_path / "real_student.keras").write_bytes(b"")  # a file of that name here is the one meant
    assert model_path("real_student.keras") == "real_student.keras"
    with pytest.raises(argparse.ArgumentTypeError, match="runs/real_student.keras: no such file"):
        model_path("runs/real_student.keras")


def test_latency_side_by_side_without_models_times_the_shipped_files(tmp_path):
    """The model card's bare command: MediaPipe's model where ../shared/realfaces has it, then the shipped files."""
    pytest.importorskip("tflite_runtime.interpreter")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "latency_side_by_side.py"), "--runs", "1",
                           "--rounds", "1", "--warmup", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ")[0].strip("| ") for line in done.stdout.splitlines()[3:]]
    shipped = sorted(f for f in os.listdir(os.path.join(ROOT, "landmark_kd", "pretrained")) if f.endswith(".tflite"))
    assert rows[-len(shipped):] == shipped and rows[:-len(shipped)] in ([], ["face_landmark.tflite"]), done.stdout


def test_rotation_rows_without_a_face_say_n_a_without_numpy_warnings():
    import warnings

    from benchmarks.rotation_alignment import score_cells

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would fail here
        assert score_cells([]) == "n/a | n/a | n/a"
        assert score_cells([0.02, 0.04, 0.2]) == "8.67% | 4.00% | 33.3%"


def _train_throughput(monkeypatch, worker):
    import importlib

    tool = importlib.import_module("benchmarks.train_throughput")
    monkeypatch.setattr(tool, "torch_missing", lambda: ["torch"])
    calls = []
    monkeypatch.setattr(tool, "run_worker", lambda args, framework, *a, **k: calls.append(framework) or worker(framework))
    return tool, calls


def test_chip_errors_measure_a_models_chip_against_the_ground_truths():
    """Landmarks equal to the truth make its chip; turned by 10 degrees and scaled by 5% about the face's centre
    they make a chip turned and scaled by as much, which moves the truth's five points in it."""
    from benchmarks.face_chips import chip_errors
    from conftest import posed_face

    truth = posed_face(0.0)[None]
    same = chip_errors(truth, truth)
    assert max(float(v.max()) for v in same.values()) < 1e-6
    angle, centre = np.radians(10.0), truth[0].mean(0)
    turn = 1.05 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = chip_errors((truth - centre) @ turn.T + centre, truth)
    # the chip undoes the landmarks' turn and scale: -10 degrees, 1/1.05 of the truth's chip scale
    np.testing.assert_allclose([moved["turn_deg"][0], moved["scale_pct"][0]], [10.0, 100 * (1 - 1 / 1.05)], atol=1e-6)
    assert 3 < moved["shift_px"][0] < 20


def test_train_throughput_without_torch_measures_keras(tmp_path, monkeypatch, capsys):
    """No torch: the Keras figures are still measured (no paired worker, which imports torch), torch's absence is
    said once, and the run succeeds."""
    tool, calls = _train_throughput(monkeypatch, lambda framework: {"keras": {"images_per_s": 10.0},
                                                                    "memory": {"images_per_s": 11.0},
                                                                    "images_per_s": 100.0})
    assert tool.main(["--models", "student", "--out", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr()
    assert "paired" not in calls and out.err.count("torch not installed") == 1
    assert "requirements-bench.txt" in out.err and "failed" not in out.out and "keras 10.0" in out.out


def test_train_throughput_fails_only_when_nothing_was_measured(tmp_path, monkeypatch, capsys):
    tool, _ = _train_throughput(monkeypatch, lambda framework: {"error": "boom"})
    assert tool.main(["--models", "student", "--out", str(tmp_path / "t.json")]) == 1
    assert "error: no figure could be measured" in capsys.readouterr().err


def _options_without_help(text: str) -> list[str]:
    """Option lines of a --help text with no description (argparse prints none for a flag without help), and
    lines that show `(default: None)` or two defaults."""
    import re

    lines, bad = text.splitlines(), []
    for i, line in enumerate(lines):
        if "(default: None)" in line or line.count("(default:") > 1:
            bad.append(line.strip())
        if re.match(r"^  -", line) and not re.search(r"\S {2,}\S", line.strip()):
            after = lines[i + 1] if i + 1 < len(lines) else ""
            if not (re.match(r"^ {4,}\S", after) and not after.strip().startswith("-")):
                bad.append(line.strip())
    return bad


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_says_what_it_does(script):
    done = _help(script)
    assert _options_without_help(done.stdout) == [], done.stdout


def test_crop_resampling_scales_faces_and_compares_the_same_model_both_ways():
    """The scaled-up face's landmarks sit on the same picture points, and the bilinear arm differs from the
    product's crop only for a face far larger than the crop."""
    from benchmarks.crop_resampling import bilinear_detector, scaled_face
    from landmark_kd.inference import LandmarkDetector

    rng = np.random.default_rng(0)
    ys, xs = np.indices((40, 50))
    image = np.repeat((2 * xs + 3 * ys).astype(np.uint8)[..., None], 3, axis=2)  # linear: bicubic keeps it
    big, points = scaled_face(image, np.array([[10.0, 20.0], [33.0, 7.0]]), 4, 0.0, seed=0)
    assert big.shape == (160, 200, 3)
    for (x, y), (bx, by) in zip([[10, 20], [33, 7]], points):  # the centre of the 4x4 block pixel (x, y) became
        assert (bx, by) == (4 * x + 1.5, 4 * y + 1.5)
        assert abs(big[int(by):int(by) + 2, int(bx):int(bx) + 2].mean() - image[y, x, 0]) < 0.6
    noisy, _ = scaled_face(image, points, 1, 8.0, seed=1)
    assert 5 < np.abs(noisy.astype(float) - image).mean() < 10  # sigma 8: mean |noise| ~6.4, clipped at 0/255
    area = LandmarkDetector("real_fast_fp16.tflite", detector="full", refine=0)
    bilinear = bilinear_detector(LandmarkDetector(area.predictor, detector="full", refine=0))
    photo = rng.integers(0, 256, (1200, 1200, 3), np.uint8)
    small, large = [40, 40, 140, 140], [200, 200, 1000, 1000]  # both crops inside the photo
    np.testing.assert_array_equal(area.crops_for_boxes(photo, [small])[0], bilinear.crops_for_boxes(photo, [small])[0])
    assert area.crops_for_boxes(photo, [large])[0].std() < 0.5 * bilinear.crops_for_boxes(photo, [large])[0].std()


def test_drawn_marks_counts_green_dots_and_not_the_controls():
    """benchmarks/drawn_marks.py: 68 dots in the LFW marks' green make a photo marked, magenta or grey ones do
    not, and a clean photo has no marked pixel."""
    sys.path.insert(0, ROOT)
    from benchmarks.drawn_marks import DOTS, MARKED_PIXELS, draw_dots, green_mark_pixels

    photo = np.full((200, 200, 3), 128, np.uint8)
    points = np.random.default_rng(0).uniform(20, 180, (68, 2))
    counts = {name: green_mark_pixels(photo if rgb is None else draw_dots(photo, points, rgb))
              for name, rgb in DOTS.items()}
    assert counts["none"] == 0 and counts["magenta"] == 0 and counts["grey, as dark as the green"] == 0
    assert counts["green (the LFW marks')"] > MARKED_PIXELS
    assert np.array_equal(draw_dots(photo, points, (0, 0, 0))[100, 0], photo[100, 0])  # a copy, dots only
