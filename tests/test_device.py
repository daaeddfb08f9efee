"""The device path: a .tflite model runs with only numpy, OpenCV and tflite_runtime (TensorFlow and Keras
cannot be imported), and latency is measured in a process that has only those."""
import json
import os
import subprocess
import sys
import textwrap

import cv2
import keras
import numpy as np
import pytest

from conftest import ROOT
from landmark_kd.export import convert
from landmark_kd.export.benchmark import measure_latency
from landmark_kd.models import build_landmark_model

BLOCK_TF = textwrap.dedent("""
    import importlib.abc, sys
    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("tensorflow", "keras"):
                raise ImportError(f"{name} is not installed on this device")
    sys.meta_path.insert(0, NoTensorFlow())
""")


@pytest.fixture(scope="module")
def tflite_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_landmark_model("mobilevitv2_pico", "68", 64)
    path = tmp_path_factory.mktemp("device") / "tiny_fp32.tflite"
    path.write_bytes(convert(model, "fp32"))
    return str(path)


def _run_without_tensorflow(code: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-c", BLOCK_TF + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_tflite_detector_and_predict_cli_run_without_tensorflow(tflite_path, tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (96, 80, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), image)
    done = _run_without_tensorflow(f"""
        import numpy as np, cv2
        from landmark_kd import LandmarkDetector  # the package import pulls in no TensorFlow
        from landmark_kd.predict import main
        detector = LandmarkDetector({tflite_path!r}, detector="full")
        faces = detector(cv2.imread("face.png")[..., ::-1].copy())
        print("points", faces[0].landmarks.shape)
        code = main(["face.png", "--model", {tflite_path!r}, "--detector", "full", "--out", "out"])
        print("exit", code, "tensorflow loaded:", any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "points (68, 2)" in done.stdout and "exit 0 tensorflow loaded: False" in done.stdout
    saved = json.load(open(tmp_path / "out" / "landmarks.json"))
    assert len(saved["results"][str("face.png")]["faces"]) == 1


def test_latency_is_measured_in_a_tflite_runtime_only_process(tflite_path):
    isolated = measure_latency(tflite_path, threads=1, warmup=3, runs=10)
    assert isolated["process"] == "tflite_runtime only" and isolated["tensorflow_imported"] is False
    assert isolated["runtime"] == "tflite_runtime"
    assert 0 < isolated["median"] <= isolated["p90"]
    in_process = measure_latency(tflite_path, threads=1, warmup=3, runs=10, isolated=False)
    assert in_process["process"] == "in-process" and in_process["median"] > 0


def test_a_broken_model_fails_the_latency_process_with_its_name(tmp_path):
    from landmark_kd.errors import ModelFileError

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(4) + b"TFL3" + bytes(64))
    with pytest.raises(ModelFileError, match="bad.tflite: not a loadable .tflite model"):
        measure_latency(str(bad), runs=1, warmup=0)


def test_the_board_latency_script_refuses_bad_input_in_one_line(tflite_path, tmp_path):
    """`python landmark_kd/export/benchmark.py MODEL` on a board (no TensorFlow): a good model gives one JSON line;
    a missing, random, truncated (which crashes the runtime) or non-.tflite file and bad counts give one `error:`
    line and exit 2."""
    script = os.path.join(ROOT, "landmark_kd", "export", "benchmark.py")
    (tmp_path / "random.tflite").write_bytes(np.random.default_rng(0).bytes(100))
    whole = open(tflite_path, "rb").read()
    (tmp_path / "half.tflite").write_bytes(whole[: len(whole) // 2])
    cases = {"missing.tflite": "missing.tflite: no such file", "random.tflite": "random.tflite: not a loadable",
             "half.tflite": "half.tflite: not a loadable", f"{tflite_path} --runs 0": "--runs: must be at least 1",
             f"{tflite_path} --threads 0": "--threads: must be at least 1"}
    for args, needle in cases.items():
        done = _run_without_tensorflow(f"import runpy, sys; sys.argv = [{script!r}, *{args.split()!r}]; "
                                       f"runpy.run_path({script!r}, run_name='__main__')", tmp_path)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and len(errors) == 1 and needle in errors[0], (args, done.stderr[-1500:])
        assert "Traceback" not in done.stderr
    done = _run_without_tensorflow(f"import runpy, sys; sys.argv = [{script!r}, {tflite_path!r}, '--runs', '3']; "
                                   f"runpy.run_path({script!r}, run_name='__main__')", tmp_path)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["runs"] == 3 and result["tensorflow_imported"] is False and result["median"] > 0


def test_the_board_latency_script_runs_on_litert_and_names_a_missing_runtime(tflite_path, tmp_path):
    """tflite-runtime has no wheel past Python 3.11, so a board may have only LiteRT (`ai_edge_litert`), which
    LandmarkDetector runs on: the latency script died there with a traceback, and with no runtime at all it called
    the model "not loadable". Here LiteRT is tflite_runtime's own interpreter under LiteRT's module name."""
    script = os.path.join(ROOT, "landmark_kd", "export", "benchmark.py")
    litert = ("import types; import tflite_runtime.interpreter as runtime; "
              "sys.modules['ai_edge_litert'] = types.ModuleType('ai_edge_litert'); "
              "sys.modules['ai_edge_litert.interpreter'] = runtime; ")
    no_runtime = "sys.modules['ai_edge_litert'] = sys.modules['ai_edge_litert.interpreter'] = None; "
    block_runtime = "sys.modules['tflite_runtime'] = sys.modules['tflite_runtime.interpreter'] = None; "
    run = (f"sys.argv = [{script!r}, {tflite_path!r}, '--runs', '2']; import runpy; "
           f"runpy.run_path({script!r}, run_name='__main__')")
    done = _run_without_tensorflow("import sys; " + litert + block_runtime + run, tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-1500:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["runs"] == 2 and result["runtime"] == "ai_edge_litert"  # named so, not "tflite_runtime only"
    done = _run_without_tensorflow("import sys; " + no_runtime + block_runtime + run, tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "needs tflite-runtime" in errors[0], done.stderr[-1500:]


def test_the_shipped_student_finds_landmarks_on_a_real_photo_without_tensorflow(tmp_path):
    """A new user's first call: no model, no training, no TensorFlow; the astronaut photograph's face."""
    from skimage.data import astronaut

    cv2.imwrite(str(tmp_path / "astronaut.jpg"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    done = _run_without_tensorflow("""
        import cv2, json
        from landmark_kd.inference import LandmarkDetector, default_model_path
        faces = LandmarkDetector()(cv2.imread("astronaut.jpg")[..., ::-1].copy())
        print(json.dumps({"model": default_model_path(), "faces": [f.to_dict() for f in faces]}))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["model"].endswith(".tflite") and len(result["faces"]) == 1
    points = np.array(result["faces"][0]["landmarks"])
    assert points.shape == (68, 2)
    # on the face (about x 175-275, y 65-175 in the 512 x 512 photo), eyes above the mouth, left eye left
    assert np.all((points[:, 0] > 150) & (points[:, 0] < 300) & (points[:, 1] > 50) & (points[:, 1] < 220))
    eyes_y, mouth_y = points[36:48, 1].mean(), points[48:68, 1].mean()
    assert eyes_y < points[30, 1] < mouth_y and points[36, 0] < points[45, 0]


def test_batch_pts_with_blazeface_runs_without_tensorflow(tflite_path, tmp_path):
    """The challenge's batch interface on a device: --list, BlazeFace, .pts out, no TensorFlow."""
    from skimage.data import astronaut

    cv2.imwrite(str(tmp_path / "astronaut.jpg"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((64, 64, 3), 128, np.uint8))
    (tmp_path / "list.txt").write_text("astronaut.jpg\ngrey.png\n")
    done = _run_without_tensorflow(f"""
        from landmark_kd.predict import main
        code = main(["--list", "list.txt", "--model", {tflite_path!r}, "--out", "pts", "--format", "pts",
                     "--points", "51"])
        print("exit", code, "tensorflow loaded:", any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exit 0 tensorflow loaded: False" in done.stdout and "1 with no face" in done.stdout
    text = (tmp_path / "pts" / "astronaut.pts").read_text()
    assert text.count("n_points: 51") == 1 and (tmp_path / "pts" / "grey.pts").read_text() == ""


def test_video_tracking_runs_without_tensorflow(tmp_path):
    """Video with the tracker, BlazeFace, the shipped student and face chips, on a device without TensorFlow."""
    from skimage.data import astronaut

    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    frame = cv2.cvtColor(cv2.resize(astronaut(), (256, 256)), cv2.COLOR_RGB2BGR)
    for _ in range(5):
        writer.write(frame)
    writer.release()
    done = _run_without_tensorflow("""
        from landmark_kd.predict import main
        code = main(["clip.avi", "--out", "out", "--redetect-every", "3", "--chips", "112"])
        print("exit", code, "tensorflow loaded:", any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exit 0 tensorflow loaded: False" in done.stdout
    result = json.load(open(tmp_path / "out" / "landmarks.json"))["results"]["clip.avi"]
    assert len(result["frames"]) == 5 and result["tracking"]["detector_runs"] < 5
    assert all(len(f["faces"]) == 1 for f in result["frames"])
    assert all(cv2.imread(str(tmp_path / f["faces"][0]["chip"])).shape == (112, 112, 3) for f in result["frames"])


def test_a_keras_model_on_a_device_is_one_clear_error(tmp_path):
    """A board has no TensorFlow: a .keras model, a missing file or a folder given to predict is one `error:` line
    that says what to do, not a ModuleNotFoundError traceback from the Keras loader."""
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "folder").mkdir()
    cases = {os.path.join(ROOT, "landmark_kd", "pretrained", "real_fast.keras"): "needs TensorFlow",
             "missing.keras": "missing.keras: model file not found", "folder": "folder: a folder, not a model file"}
    for model, needle in cases.items():
        done = _run_without_tensorflow(f"""
            from landmark_kd.predict import main
            sys.exit(main([{str(image)!r}, "--model", {model!r}, "--detector", "full"]))
        """, tmp_path)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and len(errors) == 1 and needle in errors[0], (model, done.stderr[-1500:])


def test_the_package_without_its_keras_models_runs_on_a_board(tmp_path):
    """The README's board copy: landmark_kd/ without its .keras files (7.0 MB, not 76 MB; the teacher alone is
    56 MB) and no TensorFlow still finds the face with the default model and runs the latency script."""
    import shutil

    from skimage.data import astronaut

    board = tmp_path / "board"
    shutil.copytree(os.path.join(ROOT, "landmark_kd"), board / "landmark_kd",
                    ignore=shutil.ignore_patterns("*.keras", "__pycache__"))
    assert not list(board.rglob("*.keras"))
    cv2.imwrite(str(board / "photo.jpg"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    code = BLOCK_TF + textwrap.dedent("""
        from landmark_kd.predict import main
        sys.exit(main(["photo.jpg", "--out", "out"]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the copy, not the checkout
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=board, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.load(open(board / "out" / "landmarks.json"))
    assert result["model"].startswith(str(board / "landmark_kd")) and result["model"].endswith(".tflite")
    assert len(result["results"]["photo.jpg"]["faces"]) == 1
    latency = subprocess.run([sys.executable, "landmark_kd/export/benchmark.py",
                              "landmark_kd/pretrained/real_student_fp16.tflite", "--runs", "3"],
                             capture_output=True, text=True, cwd=board, env=env, timeout=120)
    assert latency.returncode == 0, latency.stderr[-2000:]


def test_the_latency_script_reports_a_blocked_tensorflow_as_not_imported_and_sends_keras_models_to_convert(
        tflite_path, tmp_path):
    """`sys.modules["tensorflow"] = None` (how a process blocks TensorFlow) is a name in sys.modules, not TensorFlow
    loaded; a .keras given to the latency script is one line that says to export it with convert.py first."""
    script = os.path.join(ROOT, "landmark_kd", "export", "benchmark.py")

    def latency(prelude: str, model: str) -> subprocess.CompletedProcess:
        code = (f"import runpy, sys, types; {prelude}; sys.argv = [{script!r}, {model!r}, '--runs', '2']; "
                f"runpy.run_path({script!r}, run_name='__main__')")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)

    blocked = latency("sys.modules['tensorflow'] = None", tflite_path)
    assert blocked.returncode == 0, blocked.stderr[-1500:]
    assert json.loads(blocked.stdout.strip().splitlines()[-1])["tensorflow_imported"] is False
    loaded = latency("sys.modules['tensorflow'] = types.ModuleType('tensorflow')", tflite_path)
    assert json.loads(loaded.stdout.strip().splitlines()[-1])["tensorflow_imported"] is True
    keras_model = os.path.join(ROOT, "landmark_kd", "pretrained", "real_fast.keras")
    refused = latency("pass", keras_model)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-1500:]
    assert errors == [f"error: {keras_model}: a Keras model; this times .tflite files: export it first with "
                      f"`python convert.py --model {keras_model}` and time the .tflite it writes"]


def test_evaluate_scores_a_tflite_without_tensorflow_as_with_it(tmp_path):
    """`python -m landmark_kd.evaluate --model X.tflite` on a board (no TensorFlow, Keras or matplotlib): the faces
    are cropped with OpenCV, and the scores agree with TensorFlow's pipeline on a 300-W folder and a custom JSON."""
    from landmark_kd.data import load_dataset
    from landmark_kd.data.synthetic import generate
    from landmark_kd.evaluate import EvalConfig, run_evaluation

    faces = generate(str(tmp_path / "faces"), 6, seed=11, size=96, sheet=False)
    samples, _ = load_dataset(faces, num_points=68)
    (tmp_path / "faces.json").write_text(json.dumps(
        {"samples": [{"image": s.image_path, "landmarks": s.landmarks.tolist()} for s in samples]}))
    model = os.path.join(ROOT, "landmark_kd", "pretrained", "real_fast_fp16.tflite")
    no_plots = BLOCK_TF.replace('("tensorflow", "keras")', '("tensorflow", "keras", "matplotlib")')
    for data, block in ((faces, BLOCK_TF), (str(tmp_path / "faces.json"), no_plots)):
        out = str(tmp_path / f"out_{os.path.basename(data)}")
        code = block + textwrap.dedent(f"""
            from landmark_kd.evaluate import main
            code = main(["--model", {model!r}, "--data", {data!r}, "--out", {out!r}])
            print("exit", code, "tensorflow loaded:", any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules))
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "exit 0 tensorflow loaded: False" in done.stdout, done.stdout[-2000:]
        assert "the faces are cropped with OpenCV" in done.stdout
        without = json.load(open(os.path.join(out, "eval_metrics.json")))
        assert without["num_images"] == 6 and without["undecodable"] == 0
        if block is no_plots:
            assert "note: no CED plot (matplotlib is not installed)" in done.stdout
            assert sorted(os.listdir(out)) == ["eval_metrics.json", "eval_predictions.png"]  # overlays need only cv2
        else:
            assert os.path.isfile(os.path.join(out, "eval_ced.png"))
        with_tf = run_evaluation(EvalConfig(model=model, data=data, out=str(tmp_path / "with_tf")))
        assert without["nme"] == pytest.approx(with_tf["nme"], rel=2e-3)
        assert without["nme_inner51"] == pytest.approx(with_tf["nme_inner51"], rel=2e-3)


def test_a_report_names_the_runtime_its_latency_was_taken_on():
    """convert's report said "tflite_runtime" whatever the timing process ran on: LiteRT on a Python without a
    tflite_runtime wheel, or TensorFlow's own interpreter, whose figures are not a device's."""
    from landmark_kd.export.benchmark import PROCESS_NOTE, process_note

    assert process_note({"runtime": "tflite_runtime", "tensorflow_imported": False}) == PROCESS_NOTE
    assert "numpy + ai_edge_litert imported" in process_note({"runtime": "ai_edge_litert", "tensorflow_imported": False})
    assert "not a device's figure" in process_note({"runtime": "tensorflow", "tensorflow_imported": True})
