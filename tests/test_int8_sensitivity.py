import keras
import numpy as np
import pytest

from landmark_kd.export import ExportedGraph, TFLiteLandmarkModel, convert
from landmark_kd.export.int8_sensitivity import analyse, quantizable_blocks
from landmark_kd.export.tflite_export import FLOAT_TAIL
from landmark_kd.models import build_landmark_model


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return build_landmark_model("mobilevitv2_pico", "68", 64)


def _crops(n=8, size=64):
    return np.random.default_rng(0).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


def _outlier_model():
    """`wide` carries the signal next to a channel 1000x larger (its int8 step is 1000x coarser than the
    signal needs); `narrow` only passes the signal on. Rounding in `wide` must dominate."""
    inputs = keras.Input((2,))
    wide = keras.layers.Dense(3, name="wide")
    narrow = keras.layers.Dense(2, name="narrow")
    out = keras.layers.Reshape((1, 2), name="landmarks")(narrow(wide(inputs)))
    model = keras.Model(inputs, {"landmarks": out})
    wide.set_weights([np.array([[1, 0, 1000], [0, 1, 0]], np.float32), np.zeros(3, np.float32)])
    narrow.set_weights([np.array([[1, 0], [0, 1], [0, 0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_rounding_in_a_block_with_an_outlier_channel_ranks_first():
    model = _outlier_model()
    x = np.random.default_rng(1).uniform(0, 1, (64, 2)).astype(np.float32)
    truth = model(x)["landmarks"].numpy()
    score = lambda pred: float(np.abs(pred - truth).mean()) + 0.01  # noqa: E731  (float model scores 0.01)
    result = analyse(model, x, score, budget=0.05, max_float=1, skip=("landmarks",))
    assert result.ranked == ["wide", "narrow"]
    # wide's step is ~1000/255, narrow's ~1/255: the simulated deviations differ by about that factor
    assert result.deviation_px["wide"] > 200 * result.deviation_px["narrow"] > 0
    assert result.nme_float == pytest.approx(0.01)
    assert result.keep_float == ["wide"] and result.nme_chosen < result.nme_int8


def test_simulated_rounding_is_zero_centred_with_a_step_of_a_range_that_includes_zero(monkeypatch):
    """`offset` outputs lie in [10, 11]: an int8 range holds zero, so its step is 11/255, not (11 - 10)/255; the
    rounding noise is centred (it moves no landmark on average). Ranking runs on the first `rank_crops` only."""
    import landmark_kd.export.int8_sensitivity as sensitivity

    inputs = keras.Input((2,))
    offset = keras.layers.Dense(2, name="offset")
    model = keras.Model(inputs, {"landmarks": keras.layers.Reshape((1, 2), name="landmarks")(offset(inputs))})
    offset.set_weights([np.eye(2, dtype=np.float32), np.full(2, 10, np.float32)])
    x = np.random.default_rng(2).uniform(0, 1, (4000, 2)).astype(np.float32)
    truth = model(x)["landmarks"].numpy()
    seen, landmarks = [], sensitivity._landmarks
    monkeypatch.setattr(sensitivity, "_landmarks",
                        lambda m, images, b: seen.append(len(images)) or landmarks(m, images, b))
    result = analyse(model, x, lambda pred: float(np.abs((pred - truth).mean(axis=0)).max()) + 0.01, budget=1.0,
                     skip=("landmarks",), rank_crops=3000, batch_size=4000)
    step = 11.0 / 255  # the mean length of a 2-D uniform offset in [-step/2, step/2]^2 is about 0.383 step
    assert 0.36 * step < result.deviation_px["offset"] < 0.41 * step
    assert result.nme_int8 - result.nme_float < 0.02 * step  # no drift: the noise averages out
    assert seen == [4000, 3000, 4000] and result.keep_float == []  # reference, ranking, every block rounded


@pytest.mark.slow
def test_budget_decides_how_many_blocks_stay_float(tiny_model):
    crops = _crops()
    reference = tiny_model(crops, training=False)["landmarks"].numpy()
    score = lambda pred: float(np.linalg.norm(pred - reference, axis=-1).mean()) + 1.0  # noqa: E731
    blocks = quantizable_blocks(tiny_model, FLOAT_TAIL)
    assert "layer0_ir0" in blocks and "conv_stem" in blocks and not any(b.startswith(FLOAT_TAIL) for b in blocks)

    lenient = analyse(tiny_model, crops, score, budget=10.0, skip=FLOAT_TAIL)
    assert set(lenient.deviation_px) == set(blocks)
    assert all(np.isfinite(v) and v >= 0 for v in lenient.deviation_px.values()) and max(lenient.deviation_px.values()) > 0
    assert lenient.keep_float == [] and lenient.nme_chosen == lenient.nme_int8 > lenient.nme_float == 1.0

    strict = analyse(tiny_model, crops, score, budget=-1.0, max_float=2, skip=FLOAT_TAIL)
    assert strict.keep_float == lenient.ranked[:2]  # same seed, same ranking
    assert strict.nme_chosen < strict.nme_int8


@pytest.mark.slow
def test_analysis_leaves_the_model_as_it_was(tiny_model):
    crops = _crops(4)
    before = tiny_model(crops, training=False)["landmarks"].numpy()
    analyse(tiny_model, crops, lambda pred: 1.0, budget=-1.0, max_float=1)
    after = tiny_model(crops, training=False)["landmarks"].numpy()
    np.testing.assert_array_equal(before, after)
    patched = [layer.name for layer in tiny_model._flatten_layers(recursive=True) if "call" in layer.__dict__]
    assert patched == []


@pytest.mark.slow
def test_float_blocks_keep_their_ops_float_in_the_int8_model(tiny_model):
    def representative():
        for crop in _crops(8):
            yield [crop[None]]

    def dtypes_of(buffer, block):
        runner = TFLiteLandmarkModel(buffer)
        return {d["dtype"] for d in runner.interpreter.get_tensor_details() if f"/{block}_" in d["name"]}

    with ExportedGraph(tiny_model) as graph:
        plain = convert(graph, "int8", representative)
        kept = convert(graph, "int8", representative, float_blocks=["layer0_ir0"])
    assert np.float32 not in dtypes_of(plain, "layer0_ir0") and np.int8 in dtypes_of(plain, "layer0_ir0")
    assert np.float32 in dtypes_of(kept, "layer0_ir0")
    assert np.float32 not in dtypes_of(kept, "layer1_ir0")  # only the named block
    out = TFLiteLandmarkModel(kept).predict_landmarks(_crops(2))
    assert out.shape == (2, 68, 2) and np.all(np.isfinite(out))
