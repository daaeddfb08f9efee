import json
import os

import keras
import numpy as np
import pytest

from landmark_kd.data.synthetic import generate
from landmark_kd.export import MODES, RuntimeCompatibilityError, TFLiteLandmarkModel, audit, convert, read_model
from landmark_kd.export.flops import count_flops
from landmark_kd.errors import ConfigError
from landmark_kd.export.report import ExportConfig, run_export
from landmark_kd.models import build_landmark_model


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return build_landmark_model("mobilevitv2_pico", "68", 64)


def _representative():
    rng = np.random.default_rng(0)
    for _ in range(8):
        yield [rng.uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_converts_with_builtins_for_runtime_2_11(tiny_model, mode):
    buffer = convert(tiny_model, mode, _representative)
    report = audit(buffer, "2.11.0")
    assert report.ok and report.min_runtime_version is not None
    assert tuple(int(p) for p in report.min_runtime_version.split(".")) <= (2, 11, 0)
    names = {op.name for op in report.ops}
    assert "CUSTOM" not in names and not any(n.startswith("Flex") for n in names)
    runner = TFLiteLandmarkModel(buffer)
    x = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    out = runner.predict_landmarks(x)
    assert out.shape == (2, 68, 2) and np.all(np.isfinite(out))
    if mode == "fp32":
        expected = tiny_model(x, training=False)["landmarks"].numpy()
        assert np.abs(out - expected).max() < 1e-2  # pixels


def test_swinv2_converts_without_6d_transposes():
    model = build_landmark_model("swinv2_pico", "68", 64)
    buffer = convert(model, "fp32")
    report = audit(buffer)
    transposes = [op for op in report.ops if op.name == "TRANSPOSE"]
    assert transposes and all(op.version < 6 for op in transposes)
    assert count_flops(buffer) > 1e6


def test_audit_rejects_a_6d_transpose_with_the_op_named():
    import tensorflow as tf

    inputs = keras.Input((2, 2, 2, 2, 2), batch_size=1)
    outputs = keras.layers.Permute((5, 4, 3, 2, 1))(inputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    buffer = converter.convert()
    ops, runtime = read_model(buffer)
    assert ("TRANSPOSE", 6) in [(o.name, o.version) for o in ops] and runtime == "2.12.0"
    with pytest.raises(RuntimeCompatibilityError, match=r"TRANSPOSE v6 \(needs runtime 2.12.0\)"):
        audit(buffer, "2.11.0", source="six_d.tflite")
    assert audit(buffer, "2.12.0").ok


def test_corrupt_tflite_files_are_reported(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a loadable .tflite model"):
        TFLiteLandmarkModel(str(bad))
    with pytest.raises(FileNotFoundError):
        TFLiteLandmarkModel(str(tmp_path / "none.tflite"))


def test_convert_cli_writes_report(tiny_model, tmp_path):
    import convert as convert_cli

    faces = generate(str(tmp_path / "faces"), 8, seed=2, size=96, sheet=False)
    model_path = str(tmp_path / "student" / "best.keras")
    os.makedirs(os.path.dirname(model_path))
    tiny_model.save(model_path)
    out = str(tmp_path / "export")
    rc = convert_cli.main(["--model", model_path, "--modes", "fp32,int8", "--data", faces, "--calibration-data", faces,
                           "--calibration-samples", "4", "--runs", "3", "--threads", "1", "--output", out])
    assert rc == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["params"] == tiny_model.count_params() and report["num_images"] == 8
    for mode in ("fp32", "int8"):
        entry = report["exports"][mode]
        for key in ("min_runtime_version", "ops", "size_bytes", "params", "flops", "latency_ms", "nme_keras",
                    "nme_tflite", "max_deviation_px", "quantization"):
            assert key in entry, key
        assert os.path.getsize(entry["file"]) == entry["size_bytes"]
        assert entry["latency_ms"]["1"]["median"] > 0 and entry["latency_ms"]["1"]["p90"] >= entry["latency_ms"]["1"]["median"]
        assert entry["flops"] > 0
    int8 = report["exports"]["int8"]
    assert int8["calibration_data"] == faces
    sensitivity = int8["int8_sensitivity"]  # --int8-float-blocks auto: every block ranked, the choice recorded
    assert "layer0_ir0" in sensitivity["deviation_px"] and sensitivity["calibration_images"] == 4
    assert set(int8["float_blocks"]) <= set(sensitivity["deviation_px"])
    assert report["exports"]["fp32"]["max_deviation_px"] < 0.05
    assert report["exports"]["fp32"]["nme_tflite"] == pytest.approx(report["nme_keras"], rel=1e-3)
    assert "| fp32 |" in open(os.path.join(out, "report.md")).read()
    # each export has its layout beside it: a user's own layout is not mistaken for the built-in one of its size
    from landmark_kd.errors import ModelFileError
    from landmark_kd.models import model_scheme
    from landmark_kd.schemes import custom_scheme

    fp32 = report["exports"]["fp32"]
    assert json.load(open(fp32["scheme_file"]))["name"] == "68"
    assert TFLiteLandmarkModel(fp32["file"]).scheme.get_config() == model_scheme(tiny_model).get_config()
    json.dump(custom_scheme(68, name="my68").get_config(), open(fp32["scheme_file"], "w"))
    assert TFLiteLandmarkModel(fp32["file"]).scheme.name == "my68"
    json.dump(custom_scheme(5, name="five").get_config(), open(fp32["scheme_file"], "w"))
    with pytest.raises(ModelFileError, match="a 5-point scheme beside a 68-point model"):
        TFLiteLandmarkModel(fp32["file"])
    assert convert_cli.main(["--model", str(tmp_path / "missing.keras")]) == 2
    # a 98-point model and the (68-point) synthetic defaults: refused at once, naming the flags, not after an
    # evaluation and a 2,000-face generation
    keras.utils.set_random_seed(0)
    wflw = str(tmp_path / "wflw.keras")
    build_landmark_model("mobilevitv2_pico", "98", 64).save(wflw)
    with pytest.raises(ConfigError, match="98-point model; the default .* pass --calibration-data with faces"):
        run_export(ExportConfig(model=wflw, modes=("int8",), data=faces, output=str(tmp_path / "e98")))
    assert convert_cli.main(["--model", model_path, "--modes", "int8", "--data", faces, "--calibration-data", faces,
                             "--int8-float-blocks", "layer9", "--output", out]) == 2  # no such block


def test_op_flops_names_each_ops_layer_and_sums_to_the_model_count():
    import tensorflow as tf

    from landmark_kd.export.flops import op_flops

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_probe")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="conv_out")(x))
    buffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    ops = list(op_flops(buffer))
    # the inner tensor carries its layer's name (the model's output tensor is named by the signature)
    assert [flops for name, flops in ops if "conv_probe" in name] == [2 * 8 * 8 * 4 * 3 * 3 * 3]
    assert sorted(flops for _, flops in ops) == [2 * 8 * 8 * 2 * 4, 2 * 8 * 8 * 4 * 3 * 3 * 3]  # 2 x MACs each
    assert count_flops(buffer) == sum(flops for _, flops in ops)
