import numpy as np
import pytest

from conftest import assert_backbone_matches_reference, assert_import_names_missing_key, reference
from landmark_kd.models import backbone_from_transformers
from landmark_kd.models.swinv2.swinv2_block import shifted_window_mask, window_partition, window_reverse
from landmark_kd.models.swinv2.swinv2_presets import swinv2_config
from landmark_kd.models.swinv2.swinv2_window_attention import relative_coords_table
from landmark_kd.models.transformers_import import WeightImportError, load_state_dict


def test_matches_transformers_reference():
    assert_backbone_matches_reference("swinv2_mini_w8", limits={4: 5e-4})


def test_window_partition_round_trip_and_mask():
    x = np.arange(2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (8, 16, 3)
    assert np.array_equal(windows[1, 0], x[0, 0, 4])  # second window of the first image starts at column 4
    assert np.array_equal(window_reverse(windows, 4, 8, 8).numpy(), x)
    mask = shifted_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert np.all(mask[0] == 0)  # the top-left window holds one region only
    assert set(np.unique(mask[-1])) == {0.0, -100.0}


def test_position_table_uses_pretrained_window():
    a = relative_coords_table(8)
    b = relative_coords_table(8, pretrained_window=16)
    assert a.shape == (225, 2) and np.abs(a).max() == pytest.approx(np.log2(9) / np.log2(8))
    assert np.abs(b).max() < np.abs(a).max()


def test_importer_rejects_wrong_shapes(tmp_path):
    from safetensors.numpy import save_file

    state = load_state_dict(reference("swinv2_mini_w8.safetensors"))
    state["embeddings.norm.weight"] = np.zeros(7, np.float32)
    bad = str(tmp_path / "bad.safetensors")
    save_file(state, bad)
    with pytest.raises(WeightImportError, match="embeddings.norm.weight"):
        backbone_from_transformers(reference("swinv2_mini_w8.config.json"), bad)
    with pytest.raises(WeightImportError, match="not found"):
        load_state_dict(str(tmp_path / "none.safetensors"))


def test_presets():
    tiny = swinv2_config("swinv2_tiny")
    assert tiny.embed_dim == 96 and tiny.depths == [2, 2, 6, 2] and tiny.window_size == 8
    assert swinv2_config("swinv2_small_w16").depths[2] == 18
    tiny.depths[2] = 18  # a config's lists are its own: the preset table (and its alias swinv2_tiny_w8) stays
    assert swinv2_config("swinv2_tiny").depths == swinv2_config("swinv2_tiny_w8").depths == [2, 2, 6, 2]
    with pytest.raises(ValueError, match="unknown SwinV2 preset"):
        swinv2_config("swinv2_huge")


def test_importer_accepts_published_checkpoint_layout(tmp_path):
    """Published checkpoints carry a task prefix, a classifier, and derived position buffers."""
    from safetensors.numpy import save_file

    state = load_state_dict(reference("swinv2_mini_w8.safetensors"))
    published = {f"swinv2.{k}": v for k, v in state.items()}
    published["swinv2.encoder.layers.0.blocks.0.attention.self.relative_position_index"] = np.zeros((64 * 64,), np.int64)
    published["swinv2.encoder.layers.0.blocks.0.attention.self.relative_coords_table"] = np.zeros((1, 15, 15, 2), np.float32)
    published["classifier.weight"] = np.zeros((1000, 256), np.float32)
    path = str(tmp_path / "model.safetensors")
    save_file(published, path)
    model = backbone_from_transformers(reference("swinv2_mini_w8.config.json"), path)
    ref = np.load(reference("swinv2_mini_w8.outputs.npz"))
    assert np.abs(model(ref["input_nhwc"])[1].numpy() - ref["hidden_1_nhwc"]).max() <= 1e-4
    state["encoder.layers.0.blocks.0.attention.self.unexpected"] = np.zeros(3, np.float32)
    save_file(state, path)
    with pytest.raises(WeightImportError, match="were not used"):
        backbone_from_transformers(reference("swinv2_mini_w8.config.json"), path)


def test_importer_names_a_missing_key(tmp_path):
    """The blocks to fill come from the config, so a checkpoint lacking one fails on its first key."""
    assert_import_names_missing_key("swinv2_mini_w8", "encoder.layers.3.blocks.1.",
                                    r"missing parameter 'encoder\.layers\.3\.blocks\.1\.attention", tmp_path)


DROP_PATH_MIRRORED = r"""
import json, numpy as np, keras, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from landmark_kd.models.swinv2.swinv2_block import SwinV2Block
keras.utils.set_random_seed(0)
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    inputs = keras.Input((8, 8, 16))
    block = SwinV2Block(16, 1, (8, 8), window_size=4, drop_path=0.5)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(block(inputs)))
    model.compile("adam", "mse")
weights = len(model.weights)
model.fit(np.ones((4, 8, 8, 16), np.float32), np.zeros((4, 16), np.float32), batch_size=4, epochs=2, verbose=0)
masks = [block._drop_path(tf.ones((256, 1, 1, 1)), True).numpy().ravel() for _ in range(2)]
print("RESULT" + json.dumps({"weights": [weights, len(model.weights)], "dropped": [float(np.mean(m == 0)) for m in masks],
                             "changed": int(np.sum(masks[0] != masks[1]))}))
"""


def test_drop_path_trains_under_a_mirrored_strategy(tmp_path):
    """swinv2_nano (the default teacher) drops paths; its noise came from Keras' global seed generator, whose state
    variable was created inside the replicas' traced step, and `train.py --strategy mirrored` died in the first
    step ("tf.function only supports singleton tf.Variables created on the first call")."""
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", DROP_PATH_MIRRORED], capture_output=True, text=True, cwd=root,
                         timeout=300, env={**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = next((l for l in run.stdout.splitlines() if l.startswith("RESULT")), None)
    assert line, run.stderr[-3000:]
    out = json.loads(line[6:])
    assert out["weights"][0] == out["weights"][1]  # no weight added: models saved before load as they did
    assert all(0.3 < share < 0.7 for share in out["dropped"]) and out["changed"] > 0  # about half, fresh each call
