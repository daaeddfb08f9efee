"""Every layer and loss under landmark_kd/models and landmark_kd/losses is registered and round-trips its config.

The walk finds the classes itself, so a new layer without an entry in `LAYERS` (or `LOSSES`) fails here rather
than first in a `.keras` file that will not load. Whole backbones and models are covered in
test_landmark_model.py (config round trip, safe-mode reload, same outputs).
"""
import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest

import landmark_kd.losses
import landmark_kd.models
from landmark_kd.schemes import get_scheme


def _classes(package, base) -> dict:
    """The `base` subclasses defined in `package`'s modules, by name."""
    found = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, base) and cls.__module__ == module.__name__:
                found[name] = cls
    return found


# name -> (constructor arguments, non-default where the class has defaults; input shape)
LAYERS = {
    "ImagePreprocessing": (dict(mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7), flip_channels=True), (2, 8, 8, 3)),
    "ConvNormAct": (dict(filters=8, kernel_size=3, strides=2, use_bias=True, activation="relu"), (2, 8, 8, 4)),
    "InvertedResidual": (dict(in_channels=8, out_channels=8, strides=1, expand_ratio=3.0), (2, 8, 8, 8)),
    "LinearAttentionTransformer": (dict(dim=8, ffn_dim=16, epsilon=1e-4), (2, 4, 4, 8)),
    "MobileViTV2Block": (dict(in_channels=8, out_channels=16, attn_dim=8, num_blocks=2, ffn_multiplier=3.0,
                              expand_ratio=1.0, patch_size=2, epsilon=1e-4), (2, 8, 8, 8)),
    "SwinV2PatchEmbedding": (dict(dim=8, patch_size=2, epsilon=1e-4), (2, 8, 8, 3)),
    "SwinV2PatchMerging": (dict(dim=8, epsilon=1e-4), (2, 4, 4, 8)),
    "SwinV2WindowAttention": (dict(dim=8, num_heads=2, window_size=4, pretrained_window_size=8, qkv_bias=False,
                                   cpb_hidden=16), (3, 16, 8)),
    "SwinV2Block": (dict(dim=8, num_heads=2, resolution=(8, 8), window_size=4, shift_size=2, mlp_ratio=2.0,
                         pretrained_window_size=8, qkv_bias=False, epsilon=1e-4, drop_path=0.1), (2, 8, 8, 8)),
    "LayerNorm": (dict(epsilon=1e-3, center=False), (2, 4, 8)),
    "BatchNorm": (dict(momentum=0.8, epsilon=1e-3, synchronized=True), (2, 4, 4, 8)),
    "GroupNormOneGroup": (dict(epsilon=1e-3), (2, 4, 4, 8)),
    "EdgeToHeatmap": (dict(scheme=get_scheme("29").get_config()), (1, 4, 4, 7)),
    "SpatialSoftmax": (dict(), (2, 4, 4, 3)),
    "SoftArgmax": (dict(stride=2), (2, 4, 4, 3)),
}
# Functional models: round trip and safe-mode reload in test_landmark_model.py; `Backbone` is their abstract base.
MODELS = {"SwinV2Backbone", "MobileViTV2Backbone", "Backbone"}
LOSSES = {
    "STARLoss": dict(w=2.0, dist="l2", epsilon=1e-4, name="star"),
    "AdaptiveWingLoss": dict(omega=10.0, theta=0.4, epsilon=2.0, alpha=2.2, use_weight_map=False, weight=5.0,
                             threshold=0.3, name="awing", reduction="sum"),
    "HeatmapDistillationLoss": dict(mode="mse", normalize=False, name="kd"),
    "ChannelDistillationLoss": dict(tau=2.5, name="feature_kd"),
}
LOSS_INPUTS = {"STARLoss": ((2, 3, 2), (2, 8, 8, 3))}  # (y_true, y_pred) shapes; others take two maps


def _registered(cls) -> None:
    name = keras.saving.get_registered_name(cls)
    assert name == f"landmark_kd>{cls.__name__}", f"{cls.__name__} is not registered for serialisation"
    assert keras.saving.get_registered_object(name) is cls


def test_every_layer_and_loss_has_a_round_trip_case():
    layers = _classes(landmark_kd.models, keras.layers.Layer)
    assert sorted(set(layers) - MODELS) == sorted(LAYERS), "add the new layer to LAYERS (or MODELS)"
    assert sorted(_classes(landmark_kd.losses, keras.losses.Loss)) == sorted(LOSSES)
    assert not _classes(landmark_kd.losses, keras.layers.Layer)
    for name in MODELS - {"Backbone"}:
        _registered(layers[name])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_config_round_trip_and_same_output(name, tmp_path):
    """from_config(get_config()) is the same layer: same config, weights (path, shape, dtype) and outputs; and a
    model of the layer alone reloads from a .keras file with safe_mode=True, giving the same outputs."""
    cls = _classes(landmark_kd.models, keras.layers.Layer)[name]
    _registered(cls)
    kwargs, shape = LAYERS[name]
    x = np.random.default_rng(0).uniform(0.1, 1, shape).astype(np.float32)
    layer = cls(**kwargs, name=f"my_{name.lower()}")
    out = layer(x, training=False)
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    clone(x, training=False)
    assert [(w.path, tuple(w.shape), w.dtype) for w in clone.weights] == \
           [(w.path, tuple(w.shape), w.dtype) for w in layer.weights]
    clone.set_weights(layer.get_weights())
    for a, b in zip(keras.tree.flatten(out), keras.tree.flatten(clone(x, training=False))):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    inputs = keras.Input(shape[1:])
    path = str(tmp_path / "layer.keras")
    keras.Model(inputs, layer(inputs)).save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    again = loaded.get_layer(layer.name)
    assert type(again) is cls and again.get_config() == config
    assert np.array_equal(np.asarray(loaded(x, training=False)), np.asarray(out))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_dtype_policy_reaches_its_sublayers_and_survives_the_config(name):
    """A layer built under mixed_bfloat16 computes every sublayer in bfloat16, and so does its clone (a sublayer
    made without `dtype=self.dtype_policy` would compute in the global policy instead)."""
    cls = _classes(landmark_kd.models, keras.layers.Layer)[name]
    kwargs, shape = LAYERS[name]
    layer = cls(**kwargs, dtype="mixed_bfloat16")
    clone = cls.from_config(layer.get_config())
    for built in (layer, clone):
        built(np.zeros(shape, np.float32), training=False)
        policies = {sub.name: sub.dtype_policy.name for sub in built._flatten_layers()}
        assert set(policies.values()) == {"mixed_bfloat16"}, policies


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_config_round_trip_registered_and_same_value(name):
    cls = _classes(landmark_kd.losses, keras.losses.Loss)[name]
    _registered(cls)
    loss = cls(**LOSSES[name])
    config = loss.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is cls and clone.get_config() == config == cls.from_config(config).get_config()
    rng = np.random.default_rng(0)
    true_shape, pred_shape = LOSS_INPUTS.get(name, ((2, 8, 8, 3), (2, 8, 8, 3)))
    y_true = rng.uniform(-0.5 if name == "STARLoss" else 0, 0.5 if name == "STARLoss" else 1, true_shape)
    y_pred = rng.uniform(0.01, 1, pred_shape)
    y_true, y_pred = y_true.astype(np.float32), y_pred.astype(np.float32)
    assert float(clone(y_true, y_pred)) == float(loss(y_true, y_pred))
