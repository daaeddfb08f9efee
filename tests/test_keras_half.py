import os
import zipfile

import keras
import numpy as np
import pytest

from landmark_kd.errors import MissingFileError, ModelFileError, OutputError
from landmark_kd.export.keras_half import main, save_with_half_weights
from landmark_kd.models import build_landmark_model
from landmark_kd.models.landmark_model import load_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_landmark_model("swinv2_pico", "68", 64)
    path = str(tmp_path_factory.mktemp("half") / "full.keras")
    model.save(path)
    return model, path


def test_half_weights_load_as_the_same_float32_model_at_about_half_the_size(saved, tmp_path):
    model, path = saved
    target = str(tmp_path / "half.keras")
    halved = save_with_half_weights(path, target)
    assert halved == sum(1 for w in model.weights if w.dtype == "float32")
    assert os.path.getsize(target) < 0.6 * os.path.getsize(path)
    loaded = load_model(target)  # the stock loader, safe mode on
    assert [w.dtype for w in loaded.weights] == [w.dtype for w in model.weights]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(b.numpy(), a.numpy().astype(np.float16).astype(a.dtype))
    x = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    points = model(x, training=False)["landmarks"].numpy()
    moved = np.abs(loaded(x, training=False)["landmarks"].numpy() - points).max()
    assert 0 < moved < 0.05  # pixels of a 64 px crop: rounded, not changed
    assert os.listdir(tmp_path) == ["half.keras"]  # no temporary file left beside it


def test_only_float32_arrays_are_halved_and_the_h5_layout_is_kept(tmp_path):
    """A float64 layer's weights stay float64 to the last bit; groups keep their attributes (Keras' layer names)."""
    import io

    import h5py

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2, dtype="float64")])
    source, target = str(tmp_path / "mixed.keras"), str(tmp_path / "half.keras")
    model.save(source)
    assert save_with_half_weights(source, target) == 2  # the float32 kernel and bias

    def layout(path):
        found = {}

        def note(name, item):  # returns None: visititems stops at the first other answer
            found[name] = dict(item.attrs), None if isinstance(item, h5py.Group) else str(item.dtype)

        with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
            h5.visititems(note)
        return found

    before, after = layout(source), layout(target)
    assert list(after) == list(before) and any(attrs for attrs, _ in after.values())
    assert {name: (attrs, {"float32": "float16"}.get(dtype, dtype)) for name, (attrs, dtype) in before.items()} == after
    loaded = keras.saving.load_model(target)
    np.testing.assert_array_equal(loaded.layers[1].kernel.numpy(), model.layers[1].kernel.numpy())
    assert loaded.layers[1].kernel.dtype == "float64"


def test_what_is_not_a_keras_archive_is_named_and_nothing_is_written(tmp_path, capsys):
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match=r"notes\.keras: not a \.keras archive"):
        save_with_half_weights(str(text), str(tmp_path / "out.keras"))
    with pytest.raises(MissingFileError, match=r"missing\.keras: model file not found"):
        save_with_half_weights(str(tmp_path / "missing.keras"), str(tmp_path / "out.keras"))
    (tmp_path / "run").mkdir()
    with pytest.raises(MissingFileError, match=r"run: a folder, not a model file"):
        save_with_half_weights(str(tmp_path / "run"), str(tmp_path / "out.keras"))
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("config.json", "{}")
    assert main([str(other), str(tmp_path / "out.keras")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {other}: a zip file without model.weights.h5, not a .keras archive"
    assert not (tmp_path / "out.keras").exists()


def test_a_keras_archive_with_damaged_weights_is_one_line(tmp_path, capsys):
    """Weights h5py cannot open ended in h5py's OSError traceback."""
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(damaged, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"not hdf5" * 16)
    assert main([str(damaged), str(tmp_path / "out.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {damaged}: a damaged .keras archive (model.weights.h5 cannot be read") and \
        "\n" not in err
    assert not (tmp_path / "out.keras").exists()


def test_runs_by_its_path_and_refuses_a_target_keras_cannot_load(tmp_path):
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "landmark_kd", "export",
                          "keras_half.py")
    helped = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "float16" in helped.stdout  # once an ImportError (relative import)
    (tmp_path / "m.keras").write_bytes(b"")
    refused = subprocess.run([sys.executable, script, str(tmp_path / "m.keras"), str(tmp_path / "m.h5")],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "must end in .keras" in refused.stderr
    assert not (tmp_path / "m.h5").exists()


def test_a_target_that_is_the_source_is_refused_and_the_model_left_as_it_was(tmp_path, capsys):
    source = tmp_path / "real_fast.keras"
    with zipfile.ZipFile(source, "w") as archive:  # refused before the weights are read
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"float32 weights")
    before = source.read_bytes()
    (tmp_path / "link.keras").symlink_to(source)
    for target in (source, tmp_path / "link.keras", tmp_path / "." / "real_fast.keras"):
        assert main([str(source), str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {target}: the same file as the source model") and "\n" not in err
        assert "float32 weights" in err and "name another output" in err
    with pytest.raises(OutputError, match="the same file as the source"):
        save_with_half_weights(str(source), str(source))
    assert source.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["link.keras", "real_fast.keras"]


def test_a_run_folder_or_a_shipped_model_name_is_read_like_every_cli_reads_a_model(saved, tmp_path, monkeypatch):
    """The source is resolved as the other CLIs resolve a model argument: a run folder stands for its best.keras,
    a bare shipped file name for the shipped model (it was 'not found' outside landmark_kd/pretrained/)."""
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(saved[1], run / "best.keras")
    assert main([str(run), str(tmp_path / "from_run.keras")]) == 0
    assert load_model(str(tmp_path / "from_run.keras")).count_params() == saved[0].count_params()
    monkeypatch.chdir(tmp_path)  # away from the checkout: the bare name can only mean the shipped model
    assert main(["real_fast.keras", "fast_half.keras"]) == 0
    assert os.path.getsize(tmp_path / "fast_half.keras") > 0.4 * os.path.getsize(
        os.path.join(os.path.dirname(__file__), "..", "landmark_kd", "pretrained", "real_fast.keras"))
