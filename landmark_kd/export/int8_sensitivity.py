"""Which blocks a full-int8 export keeps in float, chosen by simulating int8 rounding on the Keras model.

Full-integer quantization adds rounding noise of up to half a step, (max - min) / 255 per tensor, at every
activation. Its effect on the landmarks is far from uniform: in the trained MobileViT-v2 student the first
inverted residual (64 x 64, feeding every later stage) carries most of the int8 landmark error. Simulating the
noise in Keras costs forward passes instead of conversions, so every block can be ranked, and the fewest most
sensitive ones are kept in float until the predicted NME increase is within budget.

The simulation adds uniform noise to the output of each leaf layer of a block, with min/max ranges measured on
the calibration crops as the converter's calibrator does. It is an estimate (TFLite folds batch norm into the
convolution and quantizes some tensors inside custom layers); convert.py reports the real NME of the result.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    import keras

_SKIP_TYPES = ("InputLayer",)


@dataclass
class Int8Sensitivity:
    """Per-block simulated landmark deviation and the blocks chosen to stay float."""
    deviation_px: dict[str, float]          # mean landmark deviation (input px) with only that block quantized
    nme_float: float
    nme_int8: float                         # simulated, every block quantized
    nme_chosen: float                       # simulated, `keep_float` blocks in float
    keep_float: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[str]:
        return sorted(self.deviation_px, key=self.deviation_px.get, reverse=True)


def quantizable_blocks(model: keras.Model, skip: Sequence[str] = ()) -> dict:
    """Name -> layer for the top-level layers of the model and of its backbone (a nested functional model),
    leaving out those whose name starts with one in `skip` (the export's float tail)."""
    blocks = {}
    for layer in model.layers:
        if type(layer).__name__ in _SKIP_TYPES or layer.name.startswith(tuple(skip)):
            continue
        if _is_nested_model(layer):
            blocks.update({inner.name: inner for inner in layer.layers if type(inner).__name__ not in _SKIP_TYPES})
        else:
            blocks[layer.name] = layer
    return blocks


def _is_nested_model(layer) -> bool:
    """A functional sub-model (plain or a keras.Model subclass built from inputs/outputs, like the backbones)."""
    import keras

    return type(layer).__name__ == "Functional" or (isinstance(layer, keras.Model) and bool(getattr(layer, "layers", None))
                                                    and hasattr(layer, "_operations"))


def _leaves(layer) -> list:
    inner = [s for s in layer._flatten_layers(include_self=False, recursive=True)
             if not list(s._flatten_layers(include_self=False, recursive=False))]
    return inner or [layer]


@contextlib.contextmanager
def _observed(layers, transform):
    """Temporarily route each layer's output through `transform(layer, output)`.

    Keras has no forward hooks; the bound `call` is replaced on the instance and always restored.
    """
    missing = object()
    saved = []
    try:
        for layer in layers:
            original = layer.call

            def call(*args, _original=original, _layer=layer, **kwargs):
                return transform(_layer, _original(*args, **kwargs))

            saved.append((layer, layer.__dict__.get("call", missing)))
            object.__setattr__(layer, "call", call)
        yield
    finally:
        for layer, before in reversed(saved):
            if before is missing:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", before)


def _landmarks(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([model(images[i: i + batch_size], training=False)["landmarks"].numpy()
                           for i in range(0, len(images), batch_size)])


def analyse(model: keras.Model, crops: np.ndarray, score: Callable[[np.ndarray], float], budget: float = 0.02,
            max_float: int = 3, skip: Sequence[str] = (), rank_crops: int = 64, batch_size: int = 64,
            seed: int = 0) -> Int8Sensitivity:
    """Rank `model`'s blocks by simulated int8 damage on the first `rank_crops` of `crops`; keep float the fewest
    (at most `max_float`) that bring the simulated relative NME increase on all `crops` within `budget` (`score`
    maps their crop-pixel landmarks to NME)."""
    import tensorflow as tf

    blocks = {name: _leaves(layer) for name, layer in quantizable_blocks(model, skip).items()}
    ranges: dict[int, tuple[float, float]] = {}

    def record(layer, y):
        lo, hi = ranges.get(id(layer), (np.inf, -np.inf))
        ranges[id(layer)] = (min(lo, float(tf.reduce_min(y))), max(hi, float(tf.reduce_max(y))))
        return y

    def predict(noisy: Sequence[str] = (), images: np.ndarray = crops) -> np.ndarray:
        rng = np.random.default_rng(seed)

        def add_rounding_noise(layer, y):
            lo, hi = ranges[id(layer)]
            step = max(max(hi, 0.0) - min(lo, 0.0), 1e-12) / 255.0  # int8 ranges always include zero
            return y + tf.constant(rng.uniform(-step / 2, step / 2, tuple(y.shape)), y.dtype)

        with _observed([leaf for name in noisy for leaf in blocks[name]], add_rounding_noise):
            return _landmarks(model, images, batch_size)

    with _observed([leaf for leaves in blocks.values() for leaf in leaves], record):
        reference = _landmarks(model, crops, batch_size)
    n = min(rank_crops, len(crops))
    deviation = {name: float(np.linalg.norm(predict([name], crops[:n]) - reference[:n], axis=-1).mean())
                 for name in blocks}
    nme_float = score(reference)
    nme_int8 = nme = score(predict(list(blocks)))
    keep: list[str] = []
    for name in sorted(deviation, key=deviation.get, reverse=True):
        if (nme - nme_float) / max(nme_float, 1e-12) <= budget or len(keep) >= max_float:
            break
        keep.append(name)
        nme = score(predict([b for b in blocks if b not in keep]))
    return Int8Sensitivity(deviation, nme_float, nme_int8, nme, keep)
