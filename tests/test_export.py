import json
import os

import keras
import numpy as np
import pytest

from landmark_kd.data.synthetic import generate
from landmark_kd.export import (MODES, ExportedGraph, RuntimeCompatibilityError, TFLiteLandmarkModel, audit, convert,
                                export_graph, read_model)
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


@pytest.fixture(scope="module")
def tiny_graph(tiny_model):
    with ExportedGraph(tiny_model) as graph:
        yield graph


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_converts_with_builtins_for_runtime_2_11(tiny_model, tiny_graph, mode):
    buffer = convert(tiny_graph, mode, _representative)
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


@pytest.mark.slow
def test_an_exported_graph_converts_as_from_keras_model_and_its_folder_goes_on_close(tiny_model):
    """convert.py exports a model's graph once for all its modes: each mode's .tflite is byte for byte the one
    TFLiteConverter.from_keras_model makes, and the temporary SavedModel is removed."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(export_graph(tiny_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with ExportedGraph(tiny_model) as graph:
        assert os.path.isfile(os.path.join(graph.path, "saved_model.pb"))
        assert convert(graph, "fp32") == converter.convert()
        with pytest.raises(ValueError, match="exported without the heatmaps output"):
            convert(graph, "fp32", with_heatmaps=True)
    assert not os.path.exists(graph.path)
    # Keras' default serving signature, left out while the graph was written, is back for any later SavedModel
    assert tiny_model._default_save_signature is not None


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_a_model_trained_with_mixed_precision_converts_to_float32(tiny_model, policy):
    """train.py --mixed-precision saves layers that compute in float16/bfloat16; TFLite's builtins run neither, and
    convert.py died with "'tf.Sub' op is neither a custom op nor a flex op". It exports computing in float32."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        mixed = build_landmark_model("mobilevitv2_pico", "68", 64)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    mixed.set_weights(tiny_model.get_weights())
    runner = TFLiteLandmarkModel(convert(mixed, "fp32"))
    assert runner.input["dtype"] == np.float32
    x = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    out = runner.predict_landmarks(x)
    assert all(d["dtype"] == np.float32 for d in runner.interpreter.get_output_details())
    assert np.abs(out - tiny_model(x, training=False)["landmarks"].numpy()).max() < 1e-2  # the float32 model's answer
    assert {layer.dtype_policy.name for layer in mixed._flatten_layers()} >= {policy}  # the model itself is unchanged


@pytest.mark.slow
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


def test_read_model_counts_each_ops_uses_and_audit_refuses_a_custom_op():
    """Every use of an op is counted (ADD twice here), and an op outside the builtins (a custom op, as
    allow_custom_ops writes for tf.math.igamma) is refused by name whatever it is called."""
    import tensorflow as tf

    def converted(fn, custom=False):
        fn = tf.function(fn, input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        converter.allow_custom_ops = custom
        return converter.convert()

    ops, _ = read_model(converted(lambda x: (x + 1.0) * 2.0 + tf.reverse(x, [1])))
    assert [(o.name, o.count, o.custom) for o in ops] == [("ADD", 2, False), ("MUL", 1, False),
                                                          ("REVERSE_V2", 1, False)]
    buffer = converted(lambda x: tf.math.igamma(x, x + 1.0), custom=True)
    assert [(o.name, o.custom) for o in read_model(buffer)[0]] == [("ADD", False), ("Igamma", True)]
    with pytest.raises(RuntimeCompatibilityError, match=r"igamma\.tflite needs .*: Igamma \(custom/Flex op"):
        audit(buffer, "2.11.0", source="igamma.tflite")


def test_corrupt_tflite_files_are_reported(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a loadable .tflite model"):
        TFLiteLandmarkModel(str(bad))
    with pytest.raises(FileNotFoundError):
        TFLiteLandmarkModel(str(tmp_path / "none.tflite"))


@pytest.mark.slow
def test_convert_cli_writes_report(tiny_model, tmp_path, capsys):
    import convert as convert_cli

    faces = generate(str(tmp_path / "faces"), 8, seed=2, size=96, sheet=False)
    model_path = str(tmp_path / "student" / "best.keras")
    os.makedirs(os.path.dirname(model_path))
    tiny_model.save(model_path)
    out = str(tmp_path / "export")
    rc = convert_cli.main(["--model", model_path, "--modes", "fp32,int8", "--data", faces, "--calibration-data", faces,
                           "--calibration-samples", "4", "--runs", "3", "--threads", "1", "--output", out])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "warning: int8 calibration on only 4 faces" in printed
    report = json.load(open(os.path.join(out, "report.json")))
    # report.json carries the warnings the console and report.md give: few calibration faces, and int8's speed
    # against this run's own fp32 timing
    few = next(w for w in report["warnings"] if w.startswith("warning: int8 calibration on only 4 faces of"))
    assert few in open(os.path.join(out, "report.md")).read().replace("**warning**:", "warning:")
    ms = {m: report["exports"][m]["latency_ms"]["1"]["median"] for m in ("fp32", "int8")}
    speed = next(w for w in report["warnings"] if w.startswith("note: full int8 measured"))
    assert f"fp32 in this run ({ms['int8']:.2f} vs {ms['fp32']:.2f} ms median, 1 thread" in speed and speed in printed
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
    assert "calibration: 4 faces of" in open(os.path.join(out, "report.md")).read() and \
        "(**few**: 100-300 is usual)" in open(os.path.join(out, "report.md")).read()
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


def test_an_int8_input_and_output_model_is_fed_and_read_through_its_scale_and_zero_point():
    """Quantised with the input tensor's (scale, zero point), dequantised with the output's: an int8-output model
    (zero point -128 here, its outputs all positive) answers the Keras model's landmarks, not raw integers."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    dense = keras.layers.Dense(10, bias_initializer=keras.initializers.Constant(3.0))(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Reshape((5, 2))(dense))
    crops = np.random.default_rng(0).uniform(0, 1, (16, 4, 4, 3)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c[None]] for c in crops)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    runner = TFLiteLandmarkModel(converter.convert())
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    (in_scale, in_zero), (out_scale, out_zero) = runner.input["quantization"], runner.output["quantization"]
    assert in_zero == -128 and out_zero == -128 and 0 < in_scale < 0.01 and 0 < out_scale < 0.1
    expected = model(crops[:4]).numpy()
    assert np.abs(runner.predict_landmarks(crops[:4]) - expected).max() < 2 * out_scale
    np.testing.assert_array_equal(runner._quantize(np.array([0.0, 0.5, 1.0, 2.0, -1.0], np.float32)),
                                  np.clip(np.round(np.array([0.0, 0.5, 1.0, 2.0, -1.0]) / in_scale - 128), -128, 127))
    np.testing.assert_allclose(runner._dequantize(np.array([-128, 0, 127], np.int8), runner.output),
                               (np.array([0, 128, 255]) * out_scale).astype(np.float32), rtol=1e-6)


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


def test_op_flops_counts_depthwise_dense_matmul_and_transposed_convs_by_their_macs():
    import tensorflow as tf

    from landmark_kd.export.flops import op_flops

    inputs = keras.Input((8, 8, 3), batch_size=1)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", name="dw_probe")(inputs)  # (1, 8, 8, 3), 3x3
    up = keras.layers.Conv2DTranspose(2, 2, strides=2)(depthwise)  # input (1, 8, 8, 3), kernel (2, 2, 2, 3)
    dense = keras.layers.Dense(5, name="fc_probe")(keras.layers.Flatten(name="flat_probe")(depthwise))  # K = 192
    seq = keras.layers.Reshape((16, 3))(keras.layers.Dense(48)(dense))
    gram = keras.layers.Lambda(lambda s: keras.ops.matmul(s, keras.ops.transpose(s, (0, 2, 1))))(seq)  # K = 3
    # the first operand transposed (adj_x): K is its second-last dimension, 16
    cov = keras.layers.Lambda(lambda s: keras.ops.matmul(keras.ops.transpose(s, (0, 2, 1)), s))(seq)
    ops = dict(op_flops(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, [up, gram, cov])).convert()))
    named = lambda probe: [flops for name, flops in ops.items() if probe in name]  # noqa: E731
    assert named("dw_probe") == [2 * 8 * 8 * 3 * 3 * 3] and named("fc_probe") == [2 * 5 * 192]
    assert named("flat_probe") == [192]  # any other op: one per output element
    outputs = sorted(flops for name, flops in ops.items() if name.startswith("StatefulPartitionedCall"))
    assert outputs == sorted([2 * 8 * 8 * 3 * 2 * 2 * 2, 2 * 16 * 16 * 3, 2 * 3 * 3 * 16])


def _saved(model, tmp_path) -> str:
    path = str(tmp_path / "student" / "best.keras")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save(path)
    return path


@pytest.mark.slow
def test_int8_io_export_takes_an_int8_image_and_a_rerun_replaces_the_earlier_export(tiny_model, tiny_graph, tmp_path,
                                                                                    capsys):
    import convert as convert_cli
    from landmark_kd.data import load_dataset
    from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
    from landmark_kd.export.report import _crops, int8_warnings, markdown
    from landmark_kd.models import model_scheme
    from landmark_kd.predictor import TFLitePredictor

    faces = generate(str(tmp_path / "faces"), 6, seed=3, size=96, sheet=False)
    model_path, out = _saved(tiny_model, tmp_path), str(tmp_path / "export")
    common = ["--model", model_path, "--data", faces, "--runs", "1", "--threads", "1", "--output", out]
    assert convert_cli.main(common + ["--modes", "fp32,int8", "--int8-io", "--int8-float-blocks", "none",
                                      "--calibration-data", faces, "--calibration-samples", "6"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["exports"]["int8"]["int8_io"] is True and report["exports"]["fp32"]["int8_io"] is False
    runner = TFLiteLandmarkModel(report["exports"]["int8"]["file"])
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.float32
    scale, zero = runner.input["quantization"]
    assert scale == pytest.approx(1 / 255) and zero == -128
    # the same calibration (all 6 faces, the evaluation set) with a float input: the predictor quantizes the
    # int8-input model's crops itself, and the landmarks agree
    samples, _ = load_dataset(faces, num_points=68)
    crops = _crops(LandmarkPipeline(model_scheme(tiny_model), PipelineConfig(image_size=64)), samples)[0]
    float_input = convert(tiny_graph, "int8", lambda: ([c[None]] for c in crops))
    assert TFLiteLandmarkModel(float_input).input["dtype"] == np.float32
    expected = TFLitePredictor(float_input)(crops)
    assert np.abs(TFLitePredictor(report["exports"]["int8"]["file"])(crops) - expected).max() < 0.05  # crop px
    md = open(os.path.join(out, "report.md")).read()
    int8_row = next(line for line in md.splitlines() if line.startswith("| int8 |"))
    assert "int8 image input" in int8_row and "int8 image input" not in md.split("| fp32 |")[1].split("\n")[0]
    assert f"- calibration: 6 faces of `{faces}` (labelled faces)" in md
    assert "and no block (as given by `--int8-float-blocks`)" in md
    assert f"measured {report['exports']['int8']['nme_relative_change']:+.1%} on the evaluation faces" in md
    assert "- input: int8 image (uint8 pixel - 128" in md and "max dev (px): the largest deviation" in md
    # calibrated on the faces it is scored on: said in the output and in report.md
    assert "note: int8 was calibrated on the faces it is scored on" in capsys.readouterr().out
    assert report["warnings"] and "**note**: int8 was calibrated" in md
    over = {**report, "exports": {"int8": {**report["exports"]["int8"], "nme_relative_change": 0.022,
                                           "calibration_is_eval_data": False, "calibration_images": 100}}}
    assert int8_warnings(over)[:1] == ["warning: int8 NME +2.2% against the Keras model, over the 2% budget "
                                       "(--int8-budget): keep more blocks in float (--int8-float-blocks, "
                                       "--int8-max-float-blocks) or calibrate on more faces like the ones it will see"]
    assert len(int8_warnings(over)) == 2 and int8_warnings(over)[1].startswith("note: full int8 is for runtimes")
    assert "**warning**: int8 NME +2.2%" in markdown({**over, "warnings": int8_warnings(over)}, [1])

    # A rerun with fewer modes: the earlier export's files go, files it did not list stay.
    old_int8 = report["exports"]["int8"]
    open(os.path.join(out, "notes.txt"), "w").write("mine")
    open(os.path.join(out, "other_int8.tflite"), "wb").write(b"x")
    assert convert_cli.main(common + ["--modes", "fp32"]) == 0
    assert f"replacing the earlier export in {out} (6 files)" in capsys.readouterr().out
    assert not os.path.exists(old_int8["file"]) and not os.path.exists(old_int8["scheme_file"])
    assert sorted(os.listdir(out)) == sorted(["notes.txt", "other_int8.tflite", "report.json", "report.md",
                                              "student_best_fp32.tflite", "student_best_fp32.scheme.json"])
    report = json.load(open(os.path.join(out, "report.json")))
    assert list(report["exports"]) == ["fp32"] and report["warnings"] == []
    assert "int8" not in open(os.path.join(out, "report.md")).read().split("max dev (px):")[1].split("Latency")[0]


@pytest.mark.slow
def test_calibration_data_is_loaded_first_and_unlabelled_photos_are_boxed(tiny_model, tmp_path, capsys):
    import cv2
    import skimage.data

    import convert as convert_cli

    faces = generate(str(tmp_path / "faces"), 4, seed=4, size=96, sheet=False)
    model_path, out = _saved(tiny_model, tmp_path), str(tmp_path / "export")
    common = ["--model", model_path, "--data", faces, "--modes", "int8", "--runs", "1", "--threads", "1",
              "--output", out]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert convert_cli.main(common + ["--calibration-data", str(empty)]) == 2
    captured = capsys.readouterr()
    # unlabelled photos are taken too, so "no .pts files found" would send the user labelling them
    assert captured.err == (f"error: {empty}: neither images nor .pts files found; --calibration-data takes face "
                            "photos, with or without a .pts beside each\n") and "Keras NME" not in captured.out
    (empty / "faces.json").write_text("[]")  # the 300-W reader's hint stays
    assert convert_cli.main(common + ["--calibration-data", str(empty)]) == 2
    assert f"{empty}: neither images nor .pts files found (it holds faces.json: pass that file as the dataset); " \
        in capsys.readouterr().err
    photos = tmp_path / "photos" / "person"  # LFW's layout: <person>/*.jpg, no labels
    photos.mkdir(parents=True)
    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    calibration = str(tmp_path / "photos")
    assert convert_cli.main(common + ["--calibration-data", calibration]) == 0
    printed = capsys.readouterr().out
    assert "the calibration faces are these unlabelled photos, boxed by the face detector" in printed
    assert printed.index("boxed by the face detector") < printed.index("Keras NME")
    int8 = json.load(open(os.path.join(out, "report.json")))["exports"]["int8"]
    assert int8["calibration_images"] == 1 and int8["calibration_labelled"] is False
    assert int8["calibration_data"] == calibration and not int8["calibration_is_eval_data"]
    sensitivity = int8["int8_sensitivity"]  # auto: scored against the Keras model's own landmarks
    assert np.isfinite(sensitivity["simulated_nme_all_int8"])
    assert sensitivity["simulated_nme_float"] == pytest.approx(json.load(open(os.path.join(out, "report.json")))["nme_keras"])
    assert "1 face of `" + calibration + "` (unlabelled photos, each face boxed by the face detector)" in \
        open(os.path.join(out, "report.md")).read()


@pytest.mark.slow
def test_records_the_reader_skips_are_said_and_kept_in_the_report(tiny_model, tmp_path, capsys):
    """A garbage .pts in --data used to vanish: 'Keras NME ... on 2 faces' and no skip in report.json. Now said as
    evaluate says it (the count, each file with its reason) and recorded in report.json and report.md."""
    import convert as convert_cli

    faces = generate(str(tmp_path / "faces"), 3, seed=7, size=96, sheet=False)
    garbage = os.path.join(faces, "face_00001.pts")
    with open(garbage, "w") as handle:
        handle.write("garbage")
    out = str(tmp_path / "export")
    assert convert_cli.main(["--model", _saved(tiny_model, tmp_path), "--modes", "fp32", "--data", faces,
                             "--runs", "1", "--threads", "1", "--output", out]) == 0
    printed = capsys.readouterr().out
    reason = "missing 'n_points' header or '{'"
    assert f"{faces}: 2 samples loaded, 1 skipped\n  skipped {garbage}: {reason}\n" in printed
    assert printed.index("1 skipped") < printed.index("Keras NME") and "on 2 faces" in printed
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["num_images"] == 2 and report["eval_skipped"] == 1
    assert report["eval_skipped_files"] == [{"file": garbage, "reason": reason}]
    assert (f"1 record of `{faces}` skipped (first: `{garbage}`: {reason}; each with its reason in report.json)."
            in open(os.path.join(out, "report.md")).read())


def test_calibration_records_the_reader_skips_are_said(tmp_path, capsys):
    """The int8 calibration faces: a record the reader skips is said as for --data (it used to pass silently)."""
    from landmark_kd.export.report import ExportConfig, _load_calibration

    faces = generate(str(tmp_path / "calib"), 3, seed=8, size=96, sheet=False)
    garbage = os.path.join(faces, "face_00002.pts")
    with open(garbage, "w") as handle:
        handle.write("garbage")
    samples, labelled = _load_calibration(faces, ExportConfig(calibration_samples=10), 68)
    assert len(samples) == 2 and labelled
    printed = capsys.readouterr().out
    assert f"int8 calibration data {faces}: 2 samples loaded, 1 skipped\n  skipped {garbage}: " in printed


def test_unlabelled_calibration_detects_only_the_photos_it_calibrates_on(tmp_path, monkeypatch, capsys):
    """A folder of unlabelled photos: only --calibration-samples photos, evenly spaced, go through the face
    detector, not every photo of the folder (LFW's 3,740 took longer than the int8 export itself)."""
    import cv2

    from landmark_kd.data import unlabeled
    from landmark_kd.export.report import ExportConfig, _load_calibration

    root = tmp_path / "photos"
    root.mkdir()
    for i in range(20):
        cv2.imwrite(str(root / f"p{i:02d}.png"), np.full((32, 32, 3), 100 + i, np.uint8))
    seen = []

    def found(path, detector):
        seen.append(os.path.basename(path))
        return [0.0, 0.0, 16.0, 16.0]

    monkeypatch.setattr(unlabeled, "_box_or_reason", found)
    monkeypatch.setattr("landmark_kd.inference.make_face_detector", lambda name: object())
    samples, labelled = _load_calibration(str(root), ExportConfig(calibration_samples=4), 68)
    assert not labelled and len(samples) == 4
    assert seen == ["p00.png", "p06.png", "p12.png", "p19.png"]
    assert [os.path.basename(s.image_path) for s in samples] == seen


def test_convert_says_when_int8_only_flags_are_given_without_int8(tiny_model, tmp_path, capsys, monkeypatch):
    """--calibration-data with --modes fp16 calibrated nothing, silently: a user could believe it did."""
    import convert as convert_cli
    import landmark_kd.export.report as report_module

    model_path = str(tmp_path / "m.keras")
    tiny_model.save(model_path)
    given = []
    monkeypatch.setattr(report_module, "run_export", lambda config, silenced: given.append(config) or
                        {"paths": {"json": "r.json", "markdown": "r.md"}})
    assert convert_cli.main(["--model", model_path, "--modes", "fp16", "--calibration-data", str(tmp_path),
                             "--int8-budget", "0.05"]) == 0
    assert ("note: --calibration-data, --int8-budget only affect full int8, which --modes fp16 does not include: "
            "not used") in capsys.readouterr().out
    assert convert_cli.main(["--model", model_path, "--modes", "fp16,int8", "--calibration-data", str(tmp_path)]) == 0
    assert convert_cli.main(["--model", model_path, "--modes", "fp32"]) == 0
    assert "only affect" not in capsys.readouterr().out and len(given) == 3


@pytest.mark.slow
def test_convert_refuses_early_and_writes_nothing_when_an_audit_fails(tiny_model, tmp_path, capsys, monkeypatch):
    import zipfile

    import convert as convert_cli
    from landmark_kd.export import op_audit

    # dynamic_int8 below 2.7.0: refused before the model is read (this zip is no model at all)
    junk = tmp_path / "junk.keras"
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("config.json", "{}")
    out = tmp_path / "export"
    assert convert_cli.main(["--model", str(junk), "--target-runtime", "2.4", "--modes", "fp16,dynamic_int8",
                             "--output", str(out)]) == 2
    assert "error: mode dynamic_int8 needs tflite-runtime 2.7.0 or newer" in capsys.readouterr().err
    assert not out.exists()
    # one mode failing the audit: no .tflite of any mode is written, and an earlier export stays untouched
    real_audit = op_audit.audit

    def audit(buffer, target, source="model"):
        return real_audit(buffer, "2.1.0" if source.startswith("fp16") else target, source)

    monkeypatch.setattr(op_audit, "audit", audit)
    faces = generate(str(tmp_path / "faces"), 2, seed=5, size=96, sheet=False)
    out.mkdir()
    model_path = _saved(tiny_model, tmp_path)
    (out / "report.json").write_text(json.dumps({"model": model_path, "model_path": model_path, "exports": {}}))
    with pytest.raises(RuntimeCompatibilityError, match="fp16 export of .* needs a newer TFLite runtime than 2.1.0"):
        run_export(ExportConfig(model=model_path, modes=("fp32", "fp16"), data=faces, output=str(out),
                                runs=1, threads=(1,)))
    assert sorted(os.listdir(out)) == ["report.json"]


def test_convert_names_a_folder_or_a_tflite_given_as_the_keras_model(tmp_path, capsys):
    import convert as convert_cli

    assert convert_cli.main(["--model", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path}: a folder, not a model file (a run folder stands "
                                               "for its best.keras, and this one has none)")
    renamed = tmp_path / "model.keras"
    renamed.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    assert convert_cli.main(["--model", str(renamed)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {renamed}: not a loadable .keras model (a .keras file is a zip "
                                               "archive, this is not one or is damaged; it is a TFLite flatbuffer: "
                                               "name it .tflite)")
    with pytest.raises(SystemExit):
        convert_cli.parse_args(["--help"])
    assert "at most this many faces of --calibration-data, evenly spaced over it (default: 100)" in \
        " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_another_models_export_is_refused_before_any_work_and_replaced_only_with_overwrite(tiny_model, tmp_path,
                                                                                          capsys):
    """runs/export is every model's default --output: converting the student there must not delete the teacher's
    export. Refused in one line (nothing loaded, nothing written) unless --overwrite; files no export lists stay."""
    import convert as convert_cli

    out = tmp_path / "export"
    out.mkdir()
    teacher = {"model": "runs/teacher/best.keras", "model_path": str(tmp_path / "runs" / "teacher" / "best.keras"),
               "exports": {"fp32": {"file": "runs/export/teacher_best_fp32.tflite",
                                    "scheme_file": "runs/export/teacher_best_fp32.scheme.json"}}}
    for name, text in {"report.json": json.dumps(teacher), "report.md": "# teacher", "notes.txt": "mine",
                       "teacher_best_fp32.tflite": "tflite", "teacher_best_fp32.scheme.json": "{}"}.items():
        (out / name).write_text(text)
    before = {p.name: p.read_text() for p in out.iterdir()}
    model_path = _saved(tiny_model, tmp_path)
    faces = generate(str(tmp_path / "faces"), 2, seed=6, size=96, sheet=False)
    common = ["--model", model_path, "--modes", "fp32", "--data", faces, "--runs", "1", "--threads", "1",
              "--output", str(out)]
    assert convert_cli.main(common) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"error: {out} holds an export of another model ({teacher['model_path']}); pass "
                                    f"another --output (e.g. {tmp_path / 'export_student_best'}), or --overwrite to "
                                    "replace it")
    assert "Keras NME" not in captured.out and {p.name: p.read_text() for p in out.iterdir()} == before
    # an older report (no model_path) of another model: told apart by its file-name prefix
    (out / "report.json").write_text(json.dumps({**teacher, "model_path": None}))
    assert convert_cli.main(common) == 2 and "holds an export of another model" in capsys.readouterr().err
    # a file this run would write that no export of ours lists (a report.md of someone else's, say)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    assert convert_cli.main(common[:-1] + [str(mine)]) == 2
    assert f"error: {mine / 'report.md'}: already there, and no earlier export of {model_path}" in capsys.readouterr().err
    assert (mine / "report.md").read_text() == "my notes"
    # --overwrite: the teacher's export (the files its report lists) is replaced; files it does not list stay
    (out / "report.json").write_text(json.dumps(teacher))
    assert convert_cli.main(common + ["--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["notes.txt", "report.json", "report.md", "student_best_fp32.scheme.json",
                                       "student_best_fp32.tflite"]
    report = json.load(open(out / "report.json"))
    assert report["model_path"] == os.path.realpath(model_path)
    # and the same model again needs no flag: its own earlier export is replaced
    assert convert_cli.main(common) == 0
    assert "replacing the earlier export" in capsys.readouterr().out


@pytest.mark.slow
def test_an_export_stopped_halfway_is_replaced_by_the_same_command(tiny_model, tmp_path, capsys, monkeypatch):
    """Ctrl-C while timing, after the first .tflite was written: its provisional report.json names the files as
    this model's, so the same command replaces them instead of refusing them as someone else's."""
    import convert as convert_cli
    import landmark_kd.export.benchmark as benchmark

    out = tmp_path / "export"
    model_path = _saved(tiny_model, tmp_path)
    faces = generate(str(tmp_path / "faces"), 2, seed=6, size=96, sheet=False)
    common = ["--model", model_path, "--modes", "fp32,fp16", "--data", faces, "--runs", "1", "--threads", "1",
              "--output", str(out)]
    measure = benchmark.measure_latency

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "measure_latency", stopped)
    assert convert_cli.main(common) == 130
    assert (out / "student_best_fp32.tflite").exists() and not (out / ".lock").exists()
    assert json.load(open(out / "report.json"))["status"] == "partial"
    monkeypatch.setattr(benchmark, "measure_latency", measure)
    capsys.readouterr()
    assert convert_cli.main(common) == 0, capsys.readouterr().err
    report = json.load(open(out / "report.json"))
    assert "status" not in report and sorted(report["exports"]) == ["fp16", "fp32"]


@pytest.mark.slow
def test_bad_compare_models_and_a_single_image_are_refused_before_the_export(tiny_model, tiny_graph, tmp_path,
                                                                            capsys):
    """--compare with something that is no .tflite (or a damaged one), and one photo given as --data or
    --calibration-data: one line naming the file and the flag, before the model is loaded or anything written."""
    import cv2

    import convert as convert_cli

    model_path = _saved(tiny_model, tmp_path)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "random.tflite").write_bytes(np.random.default_rng(0).bytes(200))
    (tmp_path / "half.tflite").write_bytes(convert(tiny_graph, "fp32")[:5000])
    photo = str(tmp_path / "photo.jpg")
    cv2.imwrite(photo, np.full((64, 64, 3), 128, np.uint8))
    out = tmp_path / "export"
    cases = {
        ("--compare", str(tmp_path / "notes.txt")): f"--compare {tmp_path / 'notes.txt'}: not a .tflite file (.txt)",
        ("--compare", model_path): f"--compare {model_path}: a Keras model; --compare times .tflite files: export it "
                                   "first",
        ("--compare", str(tmp_path / "random.tflite")): f"--compare {tmp_path / 'random.tflite'}: not a loadable "
                                                        ".tflite model",
        ("--compare", str(tmp_path / "half.tflite")): f"--compare {tmp_path / 'half.tflite'}: not a loadable",
        ("--calibration-data", photo): f"--calibration-data {photo}: a single image; --calibration-data takes a "
                                       "folder of face photos",
        ("--data", photo): f"--data {photo}: a single image; --data takes a labelled dataset",
    }
    for flag, needle in cases.items():
        assert convert_cli.main(["--model", model_path, "--modes", "int8", "--output", str(out), *flag]) == 2, flag
        captured = capsys.readouterr()
        errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {needle}"), (flag, captured.err)
        assert "pass --data-format" not in errors[0] and "Keras NME" not in captured.out
        assert not out.exists()


def test_the_int8_latency_note_cites_this_runs_timings_or_what_the_project_measured():
    """With a float export timed in the same run, its own ratio; without one, the figure the project measured
    (landmark_kd/pretrained/README.md's side-by-side run), which the constants must match."""
    from landmark_kd.export.report import MEASURED_FP16_MS, MEASURED_INT8_MS, int8_latency_note

    def timed(ms):
        return {"latency_ms": {"1": {"median": ms}, "2": {"median": ms * 2}}}

    assert int8_latency_note({"exports": {"fp16": timed(4.0)}}) is None
    report = {"latency_process": "separate process", "exports": {"fp32": timed(4.4), "fp16": timed(4.0),
                                                                 "int8": timed(31.0)}}
    assert int8_latency_note(report).startswith("note: full int8 measured 7.8x slower than fp16 in this run (31.00 vs "
                                                "4.00 ms median, 1 thread, separate process); tflite-runtime's x86")
    assert int8_latency_note({"exports": {"fp32": timed(4.0), "int8": timed(1.0)}}).startswith(
        "note: full int8 measured 4.0x faster than fp32 in this run")
    alone = int8_latency_note({"exports": {"int8": timed(31.0)}})
    assert "the project measured its full-int8 student at 31.0 ms against 4.00 ms in fp16 (1 thread, 7.8x slower" in alone
    card = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "landmark_kd", "pretrained",
                             "README.md")).read()
    assert f"`real_student_fp16.tflite` {MEASURED_FP16_MS:.2f} ms" in card
    assert f"`real_student_int8.tflite` {MEASURED_INT8_MS:.1f} ms" in card


@pytest.mark.slow
def test_converting_a_real_face_model_without_data_warns_that_its_nme_is_on_drawn_faces(tiny_model, tmp_path,
                                                                                        monkeypatch, capsys):
    """No --data: convert scores on the synthetic faces. For a model of real photos that is said (console,
    report.md, report.json), and its exports carry the mark, so evaluating the .tflite without --data warns too."""
    import convert as convert_cli
    from landmark_kd.evaluate import EvalConfig, run_evaluation

    monkeypatch.chdir(tmp_path)
    drawn = generate(os.path.join("data", "synthetic", "test"), 2, seed=9, size=96, sheet=False)
    model_path = _saved(tiny_model, tmp_path)
    (tmp_path / "student" / "config.json").write_text(json.dumps({"train_data": "photos/ytf68/train",
                                                                  "synthetic_root": "data/synthetic"}))
    out = str(tmp_path / "export")
    assert convert_cli.main(["--model", model_path, "--modes", "fp32", "--runs", "1", "--threads", "1",
                             "--output", out]) == 0
    printed = capsys.readouterr().out
    warning = next(line for line in printed.splitlines() if line.startswith(f"warning: {model_path} was trained on "
                                                                            "real photographs"))
    assert f"this accuracy is on drawn synthetic faces ({drawn}) because no --data was given; pass --data" in warning
    assert printed.index(warning) < printed.index("Keras NME")  # said before the scores it qualifies
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["warnings"] == [warning] and "photos/ytf68/train" in report["trained_on_real_faces"]
    assert warning.split(":", 1)[1] in open(os.path.join(out, "report.md")).read()
    metrics = run_evaluation(EvalConfig(model=report["exports"]["fp32"]["file"], out=str(tmp_path / "scored")))
    assert metrics["warnings"] and f"(exported from {model_path}: its run's config.json names photos/ytf68/train)" \
        in metrics["warnings"][0]


def test_no_mode_is_refused_before_an_earlier_export_is_replaced(tmp_path, capsys):
    """`--modes ""` exported nothing, yet deleted the earlier export of the same model and wrote an empty report
    (exit 0)."""
    import convert as convert_cli

    out = tmp_path / "export"
    out.mkdir()
    (out / "report.json").write_text("{}")
    for modes in ("", " , "):
        assert convert_cli.main(["--model", "real_fast.keras", "--modes", modes, "--output", str(out)]) == 2
        assert capsys.readouterr().err.strip() == ("error: --modes names no mode; choose from fp32, fp16, "
                                                   "dynamic_int8, int8")
    assert sorted(os.listdir(out)) == ["report.json"]
    with pytest.raises(ConfigError, match="--modes names no mode"):
        run_export(ExportConfig(model="unused.keras", modes=(), output=str(out)))


def test_a_negative_int8_max_float_blocks_is_refused_by_the_parser(capsys):
    """-1 was taken and read as 0 (no block kept float) without a word."""
    import convert as convert_cli

    with pytest.raises(SystemExit) as stop:
        convert_cli.parse_args(["--int8-max-float-blocks", "-1"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("error: argument --int8-max-float-blocks: must be 0 or more, got -1")
    assert convert_cli.parse_args(["--int8-max-float-blocks", "0"]).int8_max_float_blocks == 0


def test_int8_float_blocks_naming_no_block_is_refused(tmp_path, capsys):
    """`--int8-float-blocks ""` was read as `none` without a word."""
    import convert as convert_cli

    (tmp_path / "report.json").write_text("{}")  # another export: refused too, but after the flag
    assert convert_cli.main(["--model", "real_fast.keras", "--int8-float-blocks", " , ", "--output",
                             str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("error: --int8-float-blocks ' , ' names no block; pass auto, none or "
                                               "comma-separated layer names")


class _FakeInterpreter:
    """What the timing code calls on an interpreter: counts invokes and keeps the inputs it is given."""

    def __init__(self, model_path=None, num_threads=1):
        self.invokes, self.inputs = 0, {}

    def allocate_tensors(self):
        pass

    def get_input_details(self):
        return [{"index": 0, "dtype": np.float32, "shape": np.array([1, 8, 8, 3])},
                {"index": 1, "dtype": np.int8, "shape": np.array([1, 4000])}]

    def set_tensor(self, index, data):
        self.inputs[index] = data

    def invoke(self):
        self.invokes += 1


def test_latency_is_the_median_and_p90_of_the_timed_runs_after_the_warmup(monkeypatch):
    """time_invokes times `runs` invokes after `warmup` untimed ones, in milliseconds; the report's median and p90
    are of those runs alone (clock ticks of 1..10 ms: median 5.5, p90 9.1); inputs cover each dtype's range."""
    import landmark_kd.export.benchmark as benchmark

    ticks = iter([0.0, 0.5] + [t for i in range(10) for t in (10.0 * i, 10.0 * i + (i + 1) / 1e3)])
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(ticks))
    made = []
    result = benchmark._time_interpreter(lambda **kw: made.append(_FakeInterpreter(**kw)) or made[-1], "m.tflite",
                                         threads=2, warmup=3, runs=10, seed=0)
    assert made[0].invokes == 13
    assert result == {"init_ms": 500.0, "median": 5.5, "p90": 9.1, "runs": 10, "warmup": 3}
    floats, ints = made[0].inputs[0], made[0].inputs[1]
    assert floats.dtype == np.float32 and floats.shape == (1, 8, 8, 3) and 0 <= floats.min() and floats.max() <= 1
    assert ints.dtype == np.int8 and ints.min() < -120 and ints.max() > 120


def test_report_md_rows_carry_each_exports_numbers_in_their_columns():
    """report.md's table: size in MB, GFLOPs, NME, max deviation and each thread count's median / p90, in the
    header's order; the int8 lines give the simulated change relative to the float model's simulated NME."""
    from landmark_kd.export.report import markdown

    latency = {"1": {"median": 4.25, "p90": 5.5}, "4": {"median": 1.5, "p90": 2.0}}
    report = {"model": "m.keras", "params": 1_230_000, "image_size": 64, "num_points": 68, "num_images": 6,
              "eval_data": "faces", "normalization": "inter_ocular", "nme_keras": 0.0512, "target_runtime": "2.11",
              "exports": {"int8": {"quantization": "full int8", "size_bytes": 2_500_000, "flops": 1_234_000_000,
                                   "min_runtime_version": "2.11", "nme_tflite": 0.0533, "max_deviation_px": 0.25,
                                   "latency_ms": latency, "file": "out/m_int8.tflite", "float_blocks": ["head"],
                                   "int8_sensitivity": {"simulated_nme_chosen": 0.055, "simulated_nme_float": 0.05},
                                   "calibration_images": 120, "calibration_data": "cal", "nme_relative_change": 0.041}},
              "compare": {"dir/other.tflite": {"size_bytes": 1_000_000, "flops": 2e8, "min_runtime_version": "2.14",
                                               "latency_ms": latency}}}
    md = markdown(report, [1, 4])
    assert "1.23M parameters, 64px input, 68 points" in md and "Keras model NME 0.0512" in md
    assert ("| int8 | full int8 | 2.50 | 1.234 | 2.11 | 0.0533 | 0.250 | 4.25 / 5.50 | 1.50 / 2.00 |"
            in md.splitlines())
    assert "| other.tflite (compare) | - | 1.00 | 0.200 | 2.14 | - | - | 4.25 / 5.50 | 1.50 / 2.00 |" in md.splitlines()
    assert "simulated +10.0% on the calibration faces; measured +4.1% on the evaluation faces" in md
    assert "- calibration: 120 faces of `cal` (labelled faces)\n" in md + "\n"


def test_the_unlabelled_int8_score_adds_the_deviation_from_keras_to_its_nme_in_quadrature():
    """Calibration photos without labels: each face's mean deviation from the Keras model's landmarks, over its
    inter-ocular distance, is added in quadrature to the Keras model's NME, and the faces' values averaged."""
    from landmark_kd.export.report import _unlabelled_score
    from landmark_kd.schemes import get_scheme

    reference = np.random.default_rng(0).uniform(10, 50, (2, 68, 2))
    reference[:, 36], reference[:, 45] = [10, 30], [50, 30]  # 40 px between the outer eye corners
    score = _unlabelled_score(reference, 0.03, "inter_ocular", get_scheme("68"))
    off = reference + np.array([[3.0, 4.0], [0.0, 0.0]])[:, None, :]  # the first face 5 px off: 0.125
    assert score(off) == pytest.approx((np.hypot(0.03, 0.125) + 0.03) / 2)
    assert score(reference) == pytest.approx(0.03)
