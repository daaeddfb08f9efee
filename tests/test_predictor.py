"""One predictor for .keras and .tflite models: same landmarks, batched, typed dataset results."""
import re

import numpy as np
import pytest

from landmark_kd.data import load_dataset
from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
from landmark_kd.data.synthetic import generate
from landmark_kd.errors import MissingFileError, ModelFileError
from landmark_kd.models import HeadConfig, build_landmark_model
from landmark_kd.predictor import KerasPredictor, Predictor, TFLitePredictor
from landmark_kd.schemes import custom_scheme, get_scheme


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import keras

    from landmark_kd.export import convert

    keras.utils.set_random_seed(3)
    model = build_landmark_model("mobilevitv2_pico", get_scheme("68"), 64, HeadConfig(16, 1, True))
    root = tmp_path_factory.mktemp("predictor")
    model.save(str(root / "m.keras"))
    (root / "m.tflite").write_bytes(convert(model, "fp32"))
    return root


def test_keras_and_tflite_predictors_agree_in_any_batch_size(saved_model):
    crops = np.random.default_rng(0).uniform(0, 1, (5, 64, 64, 3)).astype(np.float32)
    keras_p = Predictor.from_path(str(saved_model / "m.keras"))
    tflite_p = Predictor.from_path(str(saved_model / "m.tflite"))
    assert isinstance(keras_p, KerasPredictor) and isinstance(tflite_p, TFLitePredictor)
    assert keras_p.image_size == tflite_p.image_size == 64 and keras_p.scheme.name == tflite_p.scheme.name == "68"
    keras_p.batch_size = 2  # 5 crops in batches of 2, 2 and 1
    a, b = keras_p(crops), tflite_p(crops)
    assert a.shape == b.shape == (5, 68, 2)
    assert np.abs(a - b).max() < 0.05  # crop pixels
    assert np.allclose(keras_p(crops[3:4]), a[3:4], atol=1e-4)


def test_peak_shares_come_with_the_landmarks_from_keras_and_tflite_alike(saved_model):
    from landmark_kd.decode import peak_share

    crops = np.random.default_rng(1).uniform(0, 1, (5, 64, 64, 3)).astype(np.float32)
    keras_p = Predictor.from_path(str(saved_model / "m.keras"))
    tflite_p = Predictor.from_path(str(saved_model / "m.tflite"))
    keras_p.batch_size = 2
    (a, share_a), (b, share_b) = keras_p.predict_with_scores(crops), tflite_p.predict_with_scores(crops)
    assert share_a.shape == share_b.shape == (5, 68)
    np.testing.assert_allclose(a, keras_p(crops), atol=1e-4)  # the same landmarks as a plain call
    np.testing.assert_allclose(b, tflite_p(crops), atol=1e-6)
    # the Keras model's share is decode.peak_share of its fused heatmaps; the export computes it in the graph
    np.testing.assert_allclose(share_a, peak_share(keras_p.model(crops, training=False)["heatmaps"]), rtol=1e-5)
    np.testing.assert_allclose(share_b, share_a, rtol=1e-3)
    assert np.all(share_a >= 1 / (16 * 16) - 1e-7) and np.all(share_a <= 1)
    for p in (keras_p, tflite_p):  # no crops: no landmarks and no shares, in the right shapes
        points, shares = p.predict_with_scores(crops[:0])
        assert points.shape == (0, 68, 2) and shares.shape == (0, 68)


def test_a_tflite_exported_before_peak_shares_gives_landmarks_and_no_shares(saved_model, tmp_path):
    import keras
    import tensorflow as tf

    model = keras.models.load_model(str(saved_model / "m.keras"))
    image = keras.Input((64, 64, 3), batch_size=1)
    old = keras.Model(image, {"landmarks": model(image)["landmarks"]})  # the outputs of earlier exports
    (tmp_path / "old.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(old).convert())
    crops = np.random.default_rng(2).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    predictor = Predictor.from_path(str(tmp_path / "old.tflite"), scheme="68")
    points, shares = predictor.predict_with_scores(crops)
    assert shares is None and predictor.runner.score_output is None
    np.testing.assert_allclose(points, Predictor.from_path(str(saved_model / "m.tflite"))(crops), atol=0.05)


def test_a_model_trained_with_mixed_precision_predicts_in_float32(saved_model, tmp_path):
    """Loaded as saved, a --mixed-precision model computed in float16 on the CPU (slowly), not as its float32
    .tflite export does."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = build_landmark_model("mobilevitv2_pico", get_scheme("68"), 64, HeadConfig(16, 1, True))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    plain = KerasPredictor(keras.saving.load_model(str(saved_model / "m.keras"), safe_mode=True, compile=False))
    mixed.set_weights(plain.model.get_weights())
    mixed.save(str(tmp_path / "mixed.keras"))
    loaded = Predictor.from_path(str(tmp_path / "mixed.keras"))
    assert {layer.dtype_policy.name for layer in loaded.model._flatten_layers()} == {"float32"}
    crops = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    assert np.allclose(loaded(crops), plain(crops), atol=1e-4)


def test_predict_dataset_maps_back_to_image_pixels(saved_model, tmp_path):
    faces = generate(str(tmp_path / "faces"), 20, seed=2, size=96, sheet=False)
    samples, _ = load_dataset(faces, num_points=68)
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    result = Predictor.from_path(str(saved_model / "m.tflite")).predict_dataset(pipeline.dataset(samples, 8, training=False))
    assert result.landmarks.shape == (20, 68, 2) and sorted(result.index.tolist()) == list(range(20))
    assert result.overlay_crops.shape == (16, 64, 64, 3) and result.overlay_landmarks.shape == (16, 68, 2)
    # image pixels = the crop matrix inverted on the crop-pixel predictions
    m = result.affine[0]
    back = (result.landmarks[0] @ m[:, :2].T) + m[:, 2]
    assert np.allclose(back, result.overlay_landmarks[0], atol=1e-3)


def test_missing_and_broken_model_files_are_user_errors(tmp_path):
    with pytest.raises(MissingFileError):
        Predictor.from_path(str(tmp_path / "none.keras"))
    (tmp_path / "bad.tflite").write_bytes(b"TFL3" * 10)
    with pytest.raises(ModelFileError, match="bad.tflite"):
        Predictor.from_path(str(tmp_path / "bad.tflite"))


def test_a_shipped_model_can_be_named_from_any_folder(tmp_path, monkeypatch):
    from landmark_kd.predictor import PRETRAINED_DIR, resolve_model_path

    monkeypatch.chdir(tmp_path)  # outside the checkout: the relative path no longer exists
    shipped = f"{PRETRAINED_DIR}/real_fast_fp16.tflite"
    assert resolve_model_path("real_fast_fp16.tflite") == shipped
    assert resolve_model_path("landmark_kd/pretrained/real_fast_fp16.tflite") == shipped
    (tmp_path / "real_fast_fp16.tflite").write_bytes(b"mine")
    assert resolve_model_path("real_fast_fp16.tflite") == "real_fast_fp16.tflite"  # the user's own file comes first
    assert resolve_model_path("nowhere.tflite") == "nowhere.tflite"
    assert Predictor.from_path("landmark_kd/pretrained/real_fast_fp16.tflite").image_size == 128
    # a path into another folder that is not there is the user's mistake, not the shipped model of that name
    assert resolve_model_path("runs/x/real_fast_fp16.tflite") == "runs/x/real_fast_fp16.tflite"
    with pytest.raises(MissingFileError, match="runs/x/real_fast_fp16.tflite"):
        Predictor.from_path("runs/x/real_fast_fp16.tflite")


def test_a_pathlib_path_loads_like_its_string(saved_model):
    """`LandmarkDetector(Path(...))` used to die with "'PosixPath' object has no attribute 'lower'"."""
    from landmark_kd.inference import LandmarkDetector

    assert isinstance(Predictor.from_path(saved_model / "m.tflite"), TFLitePredictor)
    assert isinstance(Predictor.from_path(saved_model / "m.keras"), KerasPredictor)
    detector = LandmarkDetector(saved_model / "m.tflite", detector="full")
    assert detector.model_path == str(saved_model / "m.tflite")
    with pytest.raises(MissingFileError, match="none.tflite"):
        Predictor.from_path(saved_model / "none.tflite")


def test_a_run_folder_stands_for_its_best_keras(saved_model, tmp_path):
    """`--model runs/student` (the folder distill.py printed) is its best.keras; a folder without one stays a
    folder, refused by the loader with that reason."""
    import shutil

    from landmark_kd.predictor import resolve_model_path

    run = tmp_path / "student"
    run.mkdir()
    shutil.copy(saved_model / "m.keras", run / "best.keras")
    assert resolve_model_path(str(run)) == str(run / "best.keras")
    assert Predictor.from_path(str(run)).scheme.num_points == 68
    (tmp_path / "empty").mkdir()
    assert resolve_model_path(str(tmp_path / "empty")) == str(tmp_path / "empty")
    with pytest.raises(MissingFileError, match="empty: a folder, not a model file"):
        Predictor.from_path(str(tmp_path / "empty"))


def test_models_of_other_frameworks_and_layouts_a_keras_model_lacks_are_named(saved_model, tmp_path):
    from landmark_kd.errors import ConfigError

    (tmp_path / "face.onnx").write_bytes(b"\x08\x07onnx")
    with pytest.raises(ModelFileError, match=r"face.onnx: not a model landmark_kd runs \(.onnx\)"):
        Predictor.from_path(str(tmp_path / "face.onnx"))
    keras_model = str(saved_model / "m.keras")
    assert Predictor.from_path(keras_model, scheme="68").scheme.name == "68"  # its own layout: fine
    with pytest.raises(ConfigError, match="carries its own landmark layout"):
        Predictor.from_path(keras_model, scheme="98")


def _fake_python(path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_the_tflite_load_check_is_skipped_not_blamed_on_the_model_where_no_child_python_runs(
        saved_model, tmp_path, monkeypatch, capsys):
    """Under uWSGI or a frozen app sys.executable is not a Python; the load check cannot run in a child, and
    the model (which is fine) must load with a warning rather than be reported damaged."""
    import sys

    from landmark_kd.export import tflite_runner

    model = str(saved_model / "m.tflite")
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path / "uwsgi", "exit 1"))
    assert tflite_runner.child_python() is None
    assert TFLitePredictor(model).image_size == 64
    assert "loaded without the child-process check (no Python interpreter to start" in capsys.readouterr().err
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path / "python3", "echo usage >&2; exit 2"))
    assert TFLitePredictor(model).image_size == 64
    assert "did not run as Python (exit 2)" in capsys.readouterr().err
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python-gone"))
    assert TFLitePredictor(model).image_size == 64
    assert "could not be started" in capsys.readouterr().err
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert tflite_runner.child_python() is None
    monkeypatch.undo()
    (tmp_path / "bad.tflite").write_bytes(b"TFL3" * 10)  # a real Python child still catches a damaged file
    with pytest.raises(ModelFileError, match="bad.tflite: not a loadable"):
        TFLitePredictor(str(tmp_path / "bad.tflite"))


def test_without_tflite_runtime_tensorflows_interpreter_runs_with_one_note(saved_model, monkeypatch, capsys):
    import sys
    import warnings

    from landmark_kd.export import tflite_runner

    monkeypatch.setitem(sys.modules, "tflite_runtime", None)  # None in sys.modules: the import fails
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    tflite_runner.interpreter_class.cache_clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # TF's deprecation notice is not passed on
            runner = tflite_runner.TFLiteLandmarkModel(str(saved_model / "m.tflite"))
            again = tflite_runner.TFLiteLandmarkModel(str(saved_model / "m.tflite"))
        assert "tensorflow" in type(runner.interpreter).__mro__[1].__module__
        crop = np.full((64, 64, 3), 0.5, np.float32)
        assert np.allclose(runner.invoke(crop), again.invoke(crop))
        assert capsys.readouterr().err.count("tflite_runtime is not installed") == 1
    finally:
        tflite_runner.interpreter_class.cache_clear()


def test_a_tflite_layout_comes_from_beside_it_or_is_named(saved_model, tmp_path, capsys):
    """The .tflite holds only a point count: without the .scheme.json convert.py writes beside it, a user's own
    68-point layout would pass for iBUG's. So that case warns; a layout given by name or file does not, and one
    with another point count is refused."""
    import json
    import shutil

    from landmark_kd.errors import ConfigError

    model = tmp_path / "m.tflite"
    shutil.copy(saved_model / "m.tflite", model)
    assert Predictor.from_path(str(model)).scheme.name == "68"
    assert "no m.scheme.json beside it; taking the built-in 68-point layout" in capsys.readouterr().err
    assert Predictor.from_path(str(model), scheme="ibug").scheme.name == "68"
    layout = dict(get_scheme("68").get_config(), name="my_layout")
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    assert Predictor.from_path(str(model), scheme=str(tmp_path / "layout.json")).scheme.name == "my_layout"
    (tmp_path / "m.scheme.json").write_text(json.dumps(layout))
    assert Predictor.from_path(str(model)).scheme.name == "my_layout"
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match=f"^{re.escape(str(model))}: a 68-point model, given a 98-point layout .--scheme / scheme=.$"):  # not "(98)": a name said
        Predictor.from_path(str(model), scheme="wflw")                                   # nothing
    with pytest.raises(ConfigError, match=r": a 68-point model, given a 5-point layout \('mine'\) .--scheme"):
        Predictor.from_path(str(model), scheme=custom_scheme(5, name="mine"))


def test_crops_of_the_wrong_shape_or_0_255_pixels_are_one_data_error(saved_model):
    """From Python a single crop without its batch axis, a crop of another size or uint8 pixels died deep in the
    runtime (a Keras trace, a TFLite "Dimension mismatch") or, as uint8, were taken for [0, 1]; no crops at all
    gave TFLite's np.stack error where Keras answered (0, N, 2)."""
    from landmark_kd.errors import DataError

    for name in ("m.keras", "m.tflite"):
        predictor = Predictor.from_path(str(saved_model / name))
        assert predictor(np.zeros((0, 64, 64, 3), np.float32)).shape == (0, 68, 2)
        with pytest.raises(DataError, match=re.escape("crops of shape (64, 64, 3): expected (B, 64, 64, 3) (one crop: crops[None])")):
            predictor(np.zeros((64, 64, 3), np.float32))
        with pytest.raises(DataError, match=re.escape("crops of shape (1, 100, 100, 3)")):
            predictor(np.zeros((1, 100, 100, 3), np.float32))
        with pytest.raises(DataError, match="crops of dtype uint8"):
            predictor(np.zeros((1, 64, 64, 3), np.uint8))
        assert predictor([np.zeros((64, 64, 3))]).shape == (1, 68, 2)  # a list of float64 crops is fine
