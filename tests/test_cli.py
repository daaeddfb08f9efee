"""The top-level scripts: --help works, and missing inputs give one clear line, not a traceback."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script,needle", [("train.py", "--preset"), ("distill.py", "--alpha"), ("convert.py", "--target-runtime")])
def test_help(script, needle):
    result = _run(os.path.join(ROOT, script), "--help")
    assert result.returncode == 0 and needle in result.stdout


@pytest.mark.parametrize("script", ["train.py", "distill.py"])
def test_help_needs_no_tensorflow(script):
    """--help took 3 s: building the parser imported Keras for the --preset names. Now it runs where importing
    TensorFlow or Keras fails."""
    from test_device import BLOCK_TF

    code = BLOCK_TF + f"sys.argv = [{script!r}, '--help']\nimport runpy\nrunpy.run_path({script!r}, run_name='__main__')\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--preset" in result.stdout and "swinv2_pico" in result.stdout


def _script(name: str):
    """train.py or distill.py loaded as a module (its config_from_argv), not run."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_cli", os.path.join(ROOT, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _distill():
    return _script("distill")


def test_the_library_student_is_distill_pys_student():
    """The README's library student was TrainConfig(...) with the teacher's head and epochs; `TrainConfig.student()`
    is what distill.py trains with no flags."""
    from landmark_kd.training import TrainConfig

    student = TrainConfig.student()
    assert _distill().config_from_argv([]) == student
    assert (student.preset, student.head_dim, student.epochs, student.alpha) == ("mobilevitv2_050", 64, 12, 1.0)
    # README: `python distill.py  # student from runs/teacher/best.keras -> runs/student/`
    assert (student.output, student.teacher) == ("runs/student", os.path.join("runs", "teacher", "best.keras"))
    assert TrainConfig.student(epochs=3, output="runs/s").epochs == 3
    # the no-KD ablation has no teacher to load (it used to name, and load, runs/teacher/best.keras for nothing)
    assert TrainConfig.student(alpha=0).teacher is None and TrainConfig.student(alpha=0.5).teacher == student.teacher
    assert TrainConfig.student(alpha=0, teacher="t.keras").teacher == "t.keras"  # left to run_training to drop


def test_distill_takes_a_teacher_run_folder_and_no_kd_drops_the_teacher(tmp_path):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "best.keras").write_bytes(b"")
    distill = _distill()
    config = distill.config_from_argv(["--teacher", str(tmp_path / "teacher")])
    assert config.teacher == str(tmp_path / "teacher" / "best.keras")
    ablation = distill.config_from_argv(["--no-kd", "--alpha", "0"])
    assert ablation.alpha == 0.0 and ablation.teacher is None
    features = distill.config_from_argv(["--feature-kd", "3", "--feature-kd-tau", "2"])
    assert (features.feature_kd, features.feature_kd_tau, config.feature_kd) == (3.0, 2.0, 0.0)


def test_run_eagerly_reaches_the_config_of_both_scripts():
    from landmark_kd.training import TrainConfig

    assert _script("train").config_from_argv([]) == TrainConfig()
    for script in ("train", "distill"):
        config_from_argv = _script(script).config_from_argv
        assert config_from_argv(["--run-eagerly"]).run_eagerly and not config_from_argv([]).run_eagerly


def test_distill_without_teacher_says_what_to_run(tmp_path):
    result = _run(os.path.join(ROOT, "distill.py"), "--teacher", str(tmp_path / "missing.keras"))
    assert result.returncode == 2
    assert "python train.py" in result.stderr and "Traceback" not in result.stderr


def test_train_with_missing_data_names_the_path(tmp_path):
    result = _run(os.path.join(ROOT, "train.py"), "--train-data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "nowhere: no such file or directory" in result.stderr and "Traceback" not in result.stderr


def test_convert_without_student_says_what_to_run(tmp_path):
    result = _run(os.path.join(ROOT, "convert.py"), cwd=str(tmp_path))
    assert result.returncode == 2 and "python distill.py" in result.stderr


@pytest.fixture(scope="module")
def tflites(tmp_path_factory):
    """A good landmark .tflite, the first half of it, and a .tflite that is some other model."""
    import keras
    import tensorflow as tf

    from landmark_kd.export import convert
    from landmark_kd.models import build_landmark_model

    root = tmp_path_factory.mktemp("tflites")
    buffer = convert(build_landmark_model("mobilevitv2_pico", "68", 64), "fp32")
    (root / "good.tflite").write_bytes(buffer)
    (root / "half.tflite").write_bytes(buffer[: len(buffer) // 2])  # a cut download: SIGSEGV if loaded as is
    inputs = keras.Input((8,), batch_size=1)
    other = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    (root / "not_landmarks.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(other).convert())
    return root


def _bad_inputs(tmp_path):
    """Inputs that are wrong in the ways users get them wrong."""
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 this is not a keras archive")
    (tmp_path / "bad.tflite").write_bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes())
    cv2.imwrite(str(tmp_path / "face.png"), np.full((64, 64, 3), 120, np.uint8))
    five_points = [[10.0 + i, 20.0 + i] for i in range(5)]
    (tmp_path / "five.json").write_text(json.dumps([{"image": "face.png", "landmarks": five_points}] * 2))
    (tmp_path / "a_file").write_text("not a folder")
    # PNGs that pass the cheap checks (signature, end chunk) but do not decode
    junk = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    (tmp_path / "undecodable").mkdir()
    points = np.random.default_rng(2).uniform(10, 50, (68, 2))
    for i in range(3):
        (tmp_path / "undecodable" / f"f{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (64).to_bytes(4, "big") * 2
                                                                   + junk + b"IEND\xaeB`\x82")
        from landmark_kd.data.pts300w import write_pts

        write_pts(str(tmp_path / "undecodable" / f"f{i}.pts"), points)
    flat = points.copy()
    flat[45] = flat[36]  # outer eye corners on one pixel: the inter-ocular distance is zero
    (tmp_path / "flat.json").write_text(json.dumps({"samples": [{"image": "face.png", "landmarks": flat.tolist()}]}))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "junk.config.json").write_text(json.dumps({"model_type": "swinv2"}))
    (tmp_path / "mvit").mkdir()
    (tmp_path / "mvit" / "config.json").write_text(json.dumps({"model_type": "mobilevitv2"}))
    (tmp_path / "mvit" / "model.safetensors").write_bytes(b"")


CASES = {
    "corrupt teacher": (["distill.py", "--teacher", "{t}/bad.keras", "--output", "{t}/out"],
                        ["bad.keras", "not a loadable .keras model"]),
    "corrupt model to convert": (["convert.py", "--model", "{t}/bad.keras", "--output", "{t}/out"],
                                 ["bad.keras", "not a loadable .keras model"]),
    "corrupt tflite to evaluate": (["-m", "landmark_kd.evaluate", "--model", "{t}/bad.tflite"],
                                   ["bad.tflite", "not a loadable .tflite model"]),
    "corrupt tflite to predict": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{t}/bad.tflite"],
                                  ["bad.tflite", "not a loadable .tflite model"]),
    "missing image to predict": (["-m", "landmark_kd.predict", "{t}/nowhere.png", "--model", "{t}/bad.tflite"],
                                 ["nowhere.png", "no such file or directory"]),
    "point count differs from the scheme": (["train.py", "--train-data", "{t}/five.json", "--output", "{t}/out"],
                                            ["five.json", "has 5 points per face, the scheme (or model) expects 68"]),
    "output folder not writable": (["train.py", "--output", "{t}/a_file/run"],
                                   ["a_file/run", "output directory is not writable"]),
    "half a tflite to predict": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/half.tflite"],
                                 ["half.tflite", "not a loadable .tflite model"]),
    "half a tflite to evaluate": (["-m", "landmark_kd.evaluate", "--model", "{m}/half.tflite"],
                                  ["half.tflite", "not a loadable .tflite model"]),
    "training images that do not decode": (["train.py", "--train-data", "{t}/undecodable", "--output", "{t}/out",
                                             "--preset", "swinv2_pico", "--image-size", "64"],
                                            ["undecodable", "none of the 2 training images could be decoded"]),
    "validation face with zero eye distance": (["train.py", "--val-data", "{t}/flat.json", "--output", "{t}/out",
                                                "--synthetic-train", "4", "--synthetic-test", "2", "--synthetic-root",
                                                "{t}/synthetic", "--preset", "swinv2_pico"],
                                               ["flat.json", "no face can be scored", "distance is zero"]),
    "evaluate a face with zero eye distance": (["-m", "landmark_kd.evaluate", "--model", "{m}/good.tflite", "--data",
                                                "{t}/flat.json"], ["flat.json", "distance is zero"]),
    "zero-area box": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite", "--box", "10", "10",
                       "10", "10"], ["--box", "X1 > X0"]),
    "box outside the image": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite", "--box", "70",
                               "0", "90", "20"], ["face.png", "box 70 0 90 20 lies outside the 64x64 image"]),
    "a single input that is no image": (["-m", "landmark_kd.predict", "{t}/a_file", "--model", "{m}/good.tflite"],
                                        ["a_file", "cannot read image"]),
    "a .tflite to convert": (["convert.py", "--model", "{m}/good.tflite", "--output", "{t}/out"],
                             ["good.tflite", "a .tflite model; this needs the .keras model"]),
    "output folder that is a file": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite",
                                      "--out", "{t}/a_file"], ["a_file", "is a file, not an output folder"]),
    "resume and restart together": (["distill.py", "--resume", "--restart"],
                                    ["--restart", "not allowed with argument --resume"]),
    "zero batch size": (["train.py", "--batch-size", "0"], ["--batch-size", "at least 1"]),
    "zero epochs": (["train.py", "--epochs", "0"], ["--epochs", "at least 1"]),
    "negative steps per epoch": (["train.py", "--steps-per-epoch", "-1"], ["--steps-per-epoch", "at least 1"]),
    "nan learning rate": (["distill.py", "--lr", "nan"], ["--lr", "finite"]),
    "failure threshold above 1": (["train.py", "--threshold", "10"], ["--threshold", "at most 1"]),
    "evaluate failure threshold of 0": (["-m", "landmark_kd.evaluate", "{t}/bad.keras", "--data", "{t}/five.json",
                                         "--threshold", "0"], ["--threshold", "above 0 and at most 1"]),
    "zero threads": (["convert.py", "--threads", "0"], ["--threads", "at least 1"]),
    "threads not a number": (["convert.py", "--threads", "abc"], ["--threads", "whole number"]),
    "zero runs": (["convert.py", "--runs", "0"], ["--runs", "at least 1"]),
    "bad target runtime": (["convert.py", "--target-runtime", "abc"], ["--target-runtime", "2.11.0"]),
    "missing compare model": (["convert.py", "--model", "{t}/bad.keras", "--compare", "{t}/missing.tflite"],
                              ["missing.tflite", "no such file"]),
    "missing pretrained checkpoint": (["train.py", "--pretrained", "{t}/nope", "--output", "{t}/out"],
                                      ["--pretrained", "nope: no such file or directory"]),
    "pretrained folder without a checkpoint": (["distill.py", "--no-kd", "--pretrained", "{t}/undecodable", "--output",
                                                "{t}/out"], ["undecodable: a checkpoint folder needs config.json"]),
    "pretrained weights that are no safetensors": (["train.py", "--pretrained", "{t}/junk.safetensors", "--output",
                                                    "{t}/out"], ["junk.safetensors", "not a readable safetensors"]),
    "pretrained checkpoint of another backbone": (["train.py", "--pretrained", "{t}/mvit", "--output", "{t}/out"],
                                                  ["mvit: a mobilevitv2 checkpoint does not fit preset 'swinv2_nano'"]),
    "no-kd with an alpha": (["distill.py", "--no-kd", "--alpha", "2"], ["--no-kd", "--alpha 2"]),
    "no-kd with a teacher": (["distill.py", "--no-kd", "--teacher", "{t}/bad.keras"],
                             ["--no-kd trains without a teacher, --teacher asks for one"]),
    "no-kd with a kd mode": (["distill.py", "--no-kd", "--kd-mode", "mse", "--kd-raw"],
                             ["--no-kd trains without a teacher, --kd-mode and --kd-raw asks for one"]),
    "raw heatmaps for coordinate kd": (["distill.py", "--kd-mode", "star", "--kd-raw"],
                                       ["--kd-raw compares raw heatmaps, --kd-mode star"]),
    "no-kd with feature kd": (["distill.py", "--no-kd", "--feature-kd", "2"],
                              ["--no-kd trains without a teacher, --feature-kd asks for one"]),
    "feature kd from an ensemble": (["distill.py", "--feature-kd", "2", "--teacher", "{t}/a.keras", "{t}/b.keras"],
                                    ["--feature-kd distils one teacher's features; --teacher names 2 models"]),
    "feature kd at temperature 0": (["distill.py", "--feature-kd", "2", "--feature-kd-tau", "0"], ["--feature-kd-tau"]),
    "alpha 0 with a flipped teacher": (["distill.py", "--alpha", "0", "--teacher-flip"],
                                       ["--alpha 0 trains without a teacher, --teacher-flip asks for one"]),
    "convert a folder without best.keras": (["convert.py", "--model", "{t}/undecodable", "--output", "{t}/out"],
                                            ["undecodable: a folder, not a model file"]),
    "init-from a folder without best.keras": (["train.py", "--init-from", "{t}/undecodable", "--output", "{t}/out"],
                                              ["undecodable: a folder without best.keras"]),
    "teacher folder without best.keras": (["distill.py", "--teacher", "{t}/undecodable", "--output", "{t}/out"],
                                          ["undecodable is a folder without best.keras"]),
    "negative seed": (["train.py", "--seed", "-1"], ["--seed", "must be 0 to 4294967295, got -1"]),
    "seed past 32 bits": (["distill.py", "--seed", "4294967296"], ["--seed", "must be 0 to 4294967295"]),
    "a box and a detector": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite", "--box", "1",
                              "1", "50", "50", "--detector", "haar"], ["--box gives the face, so --detector would not"]),
    "a box and any angle": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite", "--box", "1",
                             "1", "50", "50", "--any-angle"], ["--box gives the face, so --any-angle would not"]),
    "a video flag on an image": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite",
                                  "--max-frames", "3"], ["--max-frames is for a video or --camera, not images"]),
    "tracking off on an image": (["-m", "landmark_kd.predict", "{t}/face.png", "--model", "{m}/good.tflite",
                                  "--no-track"], ["--no-track is for a video or --camera, not images"]),
    "a redetect interval without tracking": (["-m", "landmark_kd.predict", "{t}/face.png", "--model",
                                              "{m}/good.tflite", "--no-track", "--redetect-every", "3"],
                                             ["--redetect-every sets how often the tracker", "--no-track"]),
    "a mesh table without the mesh labeller": (["-m", "landmark_kd.pseudolabel", "{t}/face.png", "--out", "{t}/labels",
                                                "--model", "{m}/good.tflite", "--mesh-table", "{t}/five.json"],
                                               ["--mesh-table", "five.json", "drop --mesh-table"]),
    "no window without a camera": (["-m", "landmark_kd.predict", "{t}/face.png", "--no-window"],
                                   ["--no-window is for --camera"]),
    "refinement past five passes": (["-m", "landmark_kd.predict", "{t}/face.png", "--refine", "1000000"],
                                    ["--refine", "must be 0 to 5, got 1000000"]),
    "images root on a 300-W training folder": (["train.py", "--train-data", "{t}/undecodable", "--images-root", "{t}",
                                                "--output", "{t}/out"],
                                               ["--images-root is for a WFLW list", "undecodable is read as 300w data"]),
    "synthetic flags beside training data": (["train.py", "--train-data", "{t}/undecodable", "--synthetic-train", "4",
                                              "--synthetic-root", "{t}/synthetic", "--output", "{t}/out"],
                                             ["--synthetic-train 4, --synthetic-root", "only without --train-data"]),
    "images root on the synthetic faces": (["distill.py", "--no-kd", "--images-root", "{t}", "--output", "{t}/out",
                                            "--synthetic-train", "4", "--synthetic-test", "2", "--synthetic-root",
                                            "{t}/synthetic", "--preset", "mobilevitv2_pico", "--epochs", "1"],
                                           ["--images-root is for a WFLW list; no data set is given"]),
    "images root on custom data to convert": (["convert.py", "--model", "real_fast.keras", "--data", "{t}/five.json",
                                               "--images-root", "{t}", "--output", "{t}/out"],
                                              ["--images-root is for a WFLW list", "five.json is read as custom data"]),
    "tflite that is not a landmark model": (["-m", "landmark_kd.predict", "{t}/face.png", "--model",
                                             "{m}/not_landmarks.tflite"], ["not_landmarks.tflite", "not a landmark model"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_line(tmp_path, tflites, case):
    _bad_inputs(tmp_path)
    args, needles = CASES[case]
    args = [a.format(t=tmp_path, m=tflites) for a in args]
    if args[0].endswith(".py"):
        args[0] = os.path.join(ROOT, args[0])
    output = args[args.index("--output") + 1] if "--output" in args else None
    assert output is None or not os.path.exists(output)
    result = _run(*args)
    assert result.returncode == 2, (case, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert output is None or not os.path.exists(output), f"{case}: the refused run left {output} behind"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], (case, errors[0])


def test_predict_prints_no_runtime_log_lines(tmp_path):
    """The face detector's interpreters are quiet too: with a .keras landmark model they are the process's first
    TFLite interpreters, and TFLite's "Created TensorFlow Lite XNNPACK delegate" INFO line used to leak from them
    into predict's output."""
    import keras
    from skimage.data import astronaut

    from landmark_kd.models import build_landmark_model

    keras.utils.set_random_seed(0)
    build_landmark_model("mobilevitv2_pico", "68", 64).save(str(tmp_path / "m.keras"))
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    result = _run("-m", "landmark_kd.predict", str(tmp_path / "photo.png"), "--model", str(tmp_path / "m.keras"),
                  "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 face(s) found" in result.stdout
    assert "XNNPACK" not in result.stdout + result.stderr and "INFO" not in result.stdout + result.stderr
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    loud = subprocess.run([sys.executable, "-m", "landmark_kd.predict", str(tmp_path / "photo.png"), "--model",
                           str(tmp_path / "m.keras"), "--out", str(tmp_path / "out2"), "--verbose"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert "XNNPACK" in loud.stderr  # --verbose still shows it: the test sees the line it hides


def _lock_holder(folder):
    """A process holding `folder`'s run lock, as a run does, until it is killed."""
    code = ("import sys, time; from landmark_kd.outputs import output_lock; lock = output_lock(sys.argv[1]); "
            "lock.__enter__(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_refused_and_a_killed_runs_lock_taken_over(tmp_path):
    """The lock is an flock: a killed holder's lock is free at once, and a pid left in the file by a run that
    died before a restart no longer blocks the folder when another process has come to have that pid."""
    from landmark_kd.outputs import output_lock

    holder = _lock_holder(tmp_path)
    try:
        with pytest.raises(PermissionError, match=f"another run \\(process {holder.pid}\\) is writing here"):
            with output_lock(str(tmp_path)):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up, the file and its pid stay
        holder.wait()
    assert (tmp_path / ".lock").read_text() == str(holder.pid)
    with output_lock(str(tmp_path)):  # its process is gone: the lock is free
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(str(unrelated.pid))  # a dead run's pid, now another process's
        with output_lock(str(tmp_path)):
            assert (tmp_path / ".lock").read_text() == str(os.getpid())
    finally:
        unrelated.kill()
        unrelated.wait()


def test_train_on_a_locked_folder_gives_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    holder = _lock_holder(tmp_path / "run")
    try:
        result = _run(os.path.join(ROOT, "train.py"), "--output", str(tmp_path / "run"), "--synthetic-train", "4")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "another run" in result.stderr and str(tmp_path / "run") in result.stderr


def test_sigterm_stops_a_cli_as_ctrl_c_does(tmp_path):
    """`docker stop`, a cluster's preemption or `kill` send SIGTERM, which killed a training run where it stood:
    no "the same command resumes" line and no clean-up (a checkpoint's temporary file was left behind). It now
    unwinds as Ctrl-C does, with exit 143."""
    code = ("import os, signal, sys, time; from landmark_kd.cli import TRAINING_INTERRUPTED, run\n"
            "def main(argv):\n"
            "    try:\n"
            "        os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)\n"
            "    finally:\n"
            f"        open({str(tmp_path / 'cleaned')!r}, 'w').close()\n"
            "sys.exit(run(main, [], TRAINING_INTERRUPTED))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and (tmp_path / "cleaned").exists()
    assert done.stderr.strip() == "interrupted: the same command resumes from the last finished epoch (--restart starts over)"


def test_run_turns_user_errors_into_one_line_and_keeps_tracebacks_for_bugs(capsys):
    from landmark_kd.cli import run
    from landmark_kd.errors import DataError, OutputError

    def bad_data(argv):
        raise DataError("faces.csv:3: a coordinate is not a number")

    def full_disk(argv):
        raise OutputError("runs/x: output directory is not writable (Read-only file system)")

    def bug(argv):
        raise ValueError("an internal mistake")

    assert run(bad_data, []) == 2
    assert capsys.readouterr().err == "error: faces.csv:3: a coordinate is not a number\n"
    assert run(full_disk, []) == 2
    with pytest.raises(ValueError, match="internal mistake"):  # not a UserError: the traceback is kept
        run(bug, [])


def test_ctrl_c_in_training_says_how_to_go_on(capsys):
    from landmark_kd.cli import TRAINING_INTERRUPTED, run

    def interrupted(argv):
        raise KeyboardInterrupt

    assert run(interrupted, [], TRAINING_INTERRUPTED) == 130
    assert capsys.readouterr().err.strip() == "interrupted: the same command resumes from the last finished epoch " \
                                               "(--restart starts over)"
    assert run(interrupted, []) == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_more_threads_than_cores_is_one_warning(monkeypatch, capsys):
    """TFLite threads beyond the cores wait on each other (a model hundreds of times slower): said, not refused."""
    import landmark_kd.cli as cli

    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    cli.warn_if_oversubscribed(2)
    assert capsys.readouterr().err == ""
    cli.warn_if_oversubscribed(3)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: --threads 3 is more than the 2 core(s) here") and "at most 2" in line


def test_more_threads_than_cores_from_the_library_is_one_warning(monkeypatch, capsys, tmp_path):
    """LandmarkDetector(threads=4) on a board or container with fewer cores ran each face hundreds of times slower
    with no word: only the CLIs warned. `predict --threads` now gets its warning from the detector, once."""
    import landmark_kd.cli as cli
    from landmark_kd import LandmarkDetector
    from landmark_kd.predict import main as predict_main

    monkeypatch.setattr(cli, "usable_cores", lambda: 2)
    LandmarkDetector("real_fast_fp16.tflite", detector="full", threads=2)
    assert "warning" not in capsys.readouterr().err
    LandmarkDetector("real_fast_fp16.tflite", detector="full", threads=3)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: threads=3 is more than the 2 core(s) here") and "at most 2" in line
    photo = str(tmp_path / "face.png")
    cv2.imwrite(photo, np.full((64, 64, 3), 128, np.uint8))
    assert predict_main([photo, "--threads", "3", "--model", "real_fast_fp16.tflite", "--detector", "full",
                         "--refine", "0", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: threads=3 is more than the 2 core(s)") == 1, err


def test_progress_without_a_total_does_not_log_every_item(capsys):
    """`predict --camera` has no frame count: with stderr not a terminal (a service's log, nohup) it wrote one
    progress line per frame, 30 a second for as long as the camera ran. A known total keeps its tenths."""
    from landmark_kd.cli import print_progress

    for done in range(1, 3001):
        print_progress(done, None, 0.0, "frames")
    lines = capsys.readouterr().err.splitlines()
    counts = [int(line.split()[1]) for line in lines]
    assert counts[:11] == [*range(1, 10), 10, 20] and counts[-3:] == [1000, 2000, 3000] and len(lines) == 30
    for done in range(1, 101):
        print_progress(done, 100, 0.0, "images")
    assert len(capsys.readouterr().err.splitlines()) == 10


def test_json_records_write_nan_and_infinity_as_null(tmp_path):
    """Python writes NaN as a bare NaN token, which is not JSON: a strict reader refused a diverged run's
    metrics.json whole. Records are written with null there, nested values too."""
    from landmark_kd.outputs import atomic_json

    path = tmp_path / "m.json"
    atomic_json(str(path), {"nme": float("nan"), "history": {"loss": [1.5, float("inf")]}, "n": 3, "ok": [0.1]})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nme": None, "history": {"loss": [1.5, None]}, "n": 3, "ok": [0.1]}


def test_help_shows_a_default_of_zero():
    """0 == False, so `default in (None, False, ...)` took a real default of 0 (--seed) for none and hid it."""
    from landmark_kd.cli import ArgumentParser

    parser = ArgumentParser(prog="p")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--padding", type=float, default=0.0, help="room")
    parser.add_argument("--flag", action="store_true", help="a switch")
    parser.add_argument("--name", default=None, help="a name")
    text = " ".join(parser.format_help().split())
    assert "random seed (default: 0)" in text and "room (default: 0.0)" in text
    assert "a switch (default" not in text and "a name (default" not in text
