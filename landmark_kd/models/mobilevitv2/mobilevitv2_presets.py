"""MobileViT-v2 presets by width multiplier (apple/mobilevitv2-{0.5..2.0}-imagenet1k-256 shapes)."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names alone load without Keras (the CLIs' --preset choices)
    from .mobilevitv2_backbone import MobileViTV2Config

MOBILEVITV2_PRESETS = {f"mobilevitv2_{round(w * 100):03d}": dict(width_multiplier=w)
                       for w in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)}  # mobilevitv2_050 ... mobilevitv2_200
# The fast student (issue: deployment speed): width 0.5 with unexpanded inverted residuals and one attention block
# per stage, half the FLOPs of mobilevitv2_050 (0.144 vs 0.294 GFLOPs at 128 px with a 32-channel head).
MOBILEVITV2_PRESETS["mobilevitv2_050_fast"] = dict(width_multiplier=0.5, expand_ratio=1.0, n_attn_blocks=[1, 1, 1])
MOBILEVITV2_PRESETS["mobilevitv2_pico"] = dict(width_multiplier=0.25, n_attn_blocks=[1, 1, 1])


def mobilevitv2_config(preset: str, image_size: int = 256) -> MobileViTV2Config:
    """The backbone config of a named preset at `image_size`, with lists of its own (editing them leaves the
    preset table alone); an unknown name is a ValueError listing the known ones."""
    from .mobilevitv2_backbone import MobileViTV2Config

    if preset not in MOBILEVITV2_PRESETS:
        raise ValueError(f"unknown MobileViT-v2 preset {preset!r}; known: {sorted(MOBILEVITV2_PRESETS)}")
    # a copy: the config's lists are its own, so editing one leaves the preset table as it was
    return MobileViTV2Config(image_size=image_size, **copy.deepcopy(MOBILEVITV2_PRESETS[preset]))
