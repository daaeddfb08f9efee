import re

import numpy as np
import pytest

from landmark_kd.decode import soft_argmax
from landmark_kd.models import build_landmark_model, load_model, model_image_size, model_scheme
from landmark_kd.models.aam_head import EdgeToHeatmap


# swinv2_tiny: the published shapes (the shipped teacher's); at 64 px its windows still shift in stage 0
@pytest.mark.parametrize("preset", ["swinv2_pico", "mobilevitv2_pico", "swinv2_tiny"])
def test_outputs_and_keras_round_trip(preset, tmp_path):
    model = build_landmark_model(preset, "68", 64)
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    out = model(x, training=False)
    assert out["heatmaps"].shape == (2, 16, 16, 68) and out["edge_maps"].shape == (2, 16, 16, 9)
    assert out["landmarks"].shape == (2, 68, 2)
    assert float(np.min(out["heatmaps"])) >= 0
    # landmarks are the soft-argmax of the fused heatmaps, in input pixels
    expected = soft_argmax(out["heatmaps"].numpy()) * 4 + 1.5
    assert np.allclose(out["landmarks"].numpy(), expected, atol=1e-3)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = load_model(path)  # safe_mode=True
    again = loaded(x, training=False)
    assert np.array_equal(again["landmarks"].numpy(), out["landmarks"].numpy())
    assert model_scheme(loaded).name == "68" and model_image_size(loaded) == 64
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded._flatten_layers())
    backbone = preset.split("_")[0]  # the backbone layer's name; reloaded as its own class
    assert type(loaded.get_layer(backbone)) is type(model.get_layer(backbone))


@pytest.mark.parametrize("preset", ["swinv2_pico", "mobilevitv2_pico"])
def test_backbone_config_round_trip_and_safe_mode_reload(preset, tmp_path):
    """A backbone's config is its constructor arguments: from_config rebuilds the same architecture, and a
    .keras file reloads (safe_mode) as the same class with the same outputs."""
    import keras

    from landmark_kd.models.landmark_model import build_backbone
    from landmark_kd.models.mobilevitv2.mobilevitv2_backbone import MobileViTV2Backbone
    from landmark_kd.models.swinv2.swinv2_backbone import SwinV2Backbone

    backbone = build_backbone(preset, 64)[0]
    cls = SwinV2Backbone if preset.startswith("swinv2") else MobileViTV2Backbone
    assert isinstance(backbone, cls)
    again = cls.from_config(backbone.get_config())
    assert again.get_config() == backbone.get_config() and again.count_params() == backbone.count_params()
    assert [(w.path, w.shape) for w in again.weights] == [(w.path, w.shape) for w in backbone.weights]
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert type(loaded) is cls and loaded.get_config() == backbone.get_config()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    for a, b in zip(backbone(x, training=False), loaded(x, training=False)):
        assert np.array_equal(a.numpy(), b.numpy())


def test_fused_heatmap_is_product_with_edge_attention():
    layer = EdgeToHeatmap(__import__("landmark_kd.schemes", fromlist=["x"]).get_scheme("29").get_config())
    edges = np.random.default_rng(0).uniform(0, 1, (1, 4, 4, 7)).astype(np.float32)
    out = layer(edges).numpy()
    assert out.shape == (1, 4, 4, 29)
    assert np.allclose(out[..., 8], edges[..., 2])  # eye corner 8 lies on edge 2 (left eye)
    assert np.allclose(out[..., 28], 1.0)  # the chin is on no edge: constant 1



def test_fused_heatmaps_are_spatial_softmax_times_point_maps_times_edge_attention():
    """The AAM head's fused maps: a softmax over each map's H x W cells (each sums to 1), times the sigmoid point
    maps, times E2H of the edge maps (each point's edge map, 1 for points on no edge)."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_landmark_model("mobilevitv2_pico", "68", 64)
    names = ("head_heatmaps_softmax", "point_maps", "edge_maps", "edge_to_heatmap", "heatmaps")
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    x = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    soft, points, edges, attention, fused = (t.numpy() for t in probe(x, training=False))
    assert np.allclose(soft.sum(axis=(1, 2)), 1.0, atol=1e-4) and soft.std() > 0
    matrix, bias = model_scheme(model).edge_to_point_matrix()
    assert np.allclose(attention, edges @ matrix.T + bias, atol=1e-5)
    assert points.min() > 0 and points.max() < 1  # sigmoid maps, about 0.5 untrained: dropped, the product doubles
    assert np.allclose(fused, soft * points * attention, rtol=1e-4, atol=1e-7)


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(str(tmp_path / "none.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a loadable .keras model"):
        load_model(str(bad))
    renamed = tmp_path / "renamed.keras"  # a .tflite under the wrong name: Keras itself says "File not found"
    renamed.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(32))
    with pytest.raises(ValueError, match="renamed.keras: not a loadable .keras model .*TFLite flatbuffer"):
        load_model(str(renamed))
    with pytest.raises(FileNotFoundError, match="a folder, not a model file"):
        load_model(str(tmp_path))


def test_pretrained_checkpoint_initialises_the_backbone():
    from conftest import reference
    from landmark_kd.models.transformers_import import load_state_dict

    weights = reference("swinv2_mini_w8.safetensors")
    model = build_landmark_model("swinv2_nano", "68", 128, pretrained=weights)
    backbone = model.get_layer("swinv2")
    expected = load_state_dict(weights)["embeddings.patch_embeddings.projection.weight"].transpose(2, 3, 1, 0)
    assert np.array_equal(backbone.get_layer("embeddings").projection.kernel.numpy(), expected)
    with pytest.raises(ValueError, match="does not fit preset"):
        build_landmark_model("mobilevitv2_050", "68", 128, pretrained=weights)


def test_mixed_precision_decodes_in_float32():
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_landmark_model("mobilevitv2_pico", "68", 64)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = model(np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32))
    assert out["landmarks"].dtype == "float32" and out["heatmaps"].dtype == "float32"
    backbone = model.get_layer("mobilevitv2")  # its policy is saved with it: rebuilt in float32, still bfloat16
    assert type(backbone).from_config(backbone.get_config()).get_layer("conv_stem").compute_dtype == "bfloat16"


def test_fast_student_preset_halves_the_students_cost(tmp_path):
    """mobilevitv2_050_fast: width 0.5 with unexpanded inverted residuals and one attention block per stage."""
    from landmark_kd.models import HeadConfig

    fast = build_landmark_model("mobilevitv2_050_fast", "68", 128, HeadConfig(32, 2, True))
    base = build_landmark_model("mobilevitv2_050", "68", 128, HeadConfig(64, 2, True))
    config = fast.get_layer("mobilevitv2").get_config()
    assert config["expand_ratio"] == 1.0 and config["n_attn_blocks"] == [1, 1, 1] and config["width_multiplier"] == 0.5
    assert 0.4 < fast.count_params() / base.count_params() < 0.5  # 0.53M against 1.18M
    path = str(tmp_path / "fast.keras")
    fast.save(path)
    x = np.random.default_rng(1).uniform(0, 1, (1, 128, 128, 3)).astype(np.float32)
    assert np.array_equal(load_model(path)(x)["landmarks"].numpy(), fast(x)["landmarks"].numpy())


@pytest.mark.parametrize("preset, size, message, near", [
    ("mobilevitv2_pico", 96, "multiple of 64", "64, 128, 192"),
    ("swinv2_pico", 100, "stage 0's 25x25 map does not tile into 4x4 windows", "64, 128"),
    ("swinv2_nano", 192, "stage 2's 12x12 map", "64, 128, 256")])
def test_an_image_size_the_backbone_cannot_take_is_one_clear_error(preset, size, message, near):
    """Such a size used to get through the CLI and end in a Keras traceback after the data had loaded; the
    check agrees with what actually builds."""
    from landmark_kd.errors import ConfigError
    from landmark_kd.models.landmark_model import check_image_size

    with pytest.raises(ConfigError, match=f"--image-size {size} does not fit {preset}: .*{re.escape(message)}.*"
                                          f"nearest that do: {near}"):
        build_landmark_model(preset, "68", size)
    for fits in [int(s) for s in near.split(", ")][:2]:
        check_image_size(preset, fits)
    build_landmark_model(preset, "68", int(near.split(", ")[0]))  # a suggested size builds


def test_architecture_flags_read_back_the_flags_a_model_was_built_with():
    """What a refused --init-from tells the user to pass: read from the layers, for both backbones."""
    from landmark_kd.models import HeadConfig
    from landmark_kd.models.landmark_model import architecture_flags

    teacher = build_landmark_model("swinv2_pico", "68", 64, HeadConfig(40, 3, False))
    assert architecture_flags(teacher) == {"preset": "swinv2_pico", "image-size": 64, "head": "full", "head-dim": 40,
                                           "head-convs": 3}
    student = build_landmark_model("mobilevitv2_pico", "68", 128, HeadConfig(24, 1, True), name="renamed")
    assert architecture_flags(student) == {"image-size": 128, "head": "light", "head-dim": 24, "head-convs": 1}


@pytest.mark.parametrize("light, convs", [(True, 2), (False, 1), (True, 0)])
def test_the_head_features_view_shares_the_models_weights_and_reads_before_the_relu(light, convs):
    """with_head_features: the model's own outputs plus the feature map the 1x1 output convolutions read, taken
    before its ReLU (negative values survive); a change to the model's weights is a change to the view's."""
    import keras

    from landmark_kd.models import HeadConfig, with_head_features

    keras.utils.set_random_seed(0)
    model = build_landmark_model("mobilevitv2_pico", "68", 64, HeadConfig(16, convs, light))
    view = with_head_features(model)
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    out, seen = model(x), view(x)
    assert seen["features"].shape == (2, 16, 16, 16)
    np.testing.assert_allclose(seen["heatmaps"], out["heatmaps"], atol=0)
    read = keras.Model(model.input, model.get_layer("head_heatmaps").input)(x).numpy()
    if convs:  # the refinement ends in a ReLU: the view reads its input
        np.testing.assert_allclose(np.maximum(seen["features"], 0), read, atol=1e-6)
        assert float(np.min(seen["features"])) < 0
    else:  # no refinement: the fused lateral features, as they are
        np.testing.assert_allclose(seen["features"], read, atol=1e-6)
    kernel = model.get_layer("head_heatmaps").kernel
    kernel.assign(kernel * 2.0)
    assert not np.allclose(view(x)["heatmaps"], seen["heatmaps"])
    assert len(view.weights) == len(model.weights)
