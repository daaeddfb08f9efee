"""SwinV2 presets. `tiny`/`small` follow the published microsoft/swinv2-*-patch4-window{8,16}-256 shapes;
`nano`/`pico` are small configurations for CPU training and tests."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names alone load without Keras (the CLIs' --preset choices)
    from .swinv2_backbone import SwinV2Config

SWINV2_PRESETS = {
    "swinv2_tiny_w8": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=8),
    "swinv2_tiny_w16": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=16),
    "swinv2_small_w8": dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=8, drop_path_rate=0.3),
    "swinv2_small_w16": dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=16, drop_path_rate=0.3),
    "swinv2_nano": dict(embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=8, drop_path_rate=0.05),
    "swinv2_pico": dict(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4, drop_path_rate=0.0),
}
SWINV2_PRESETS["swinv2_tiny"] = SWINV2_PRESETS["swinv2_tiny_w8"]
SWINV2_PRESETS["swinv2_small"] = SWINV2_PRESETS["swinv2_small_w8"]


def swinv2_config(preset: str, image_size: int = 256) -> SwinV2Config:
    """The backbone config of a named preset at `image_size`, with lists of its own (editing them leaves the
    preset table alone); an unknown name is a ValueError listing the known ones."""
    from .swinv2_backbone import SwinV2Config

    if preset not in SWINV2_PRESETS:
        raise ValueError(f"unknown SwinV2 preset {preset!r}; known: {sorted(SWINV2_PRESETS)}")
    # a copy: the config's lists are its own, so editing one leaves the preset table as it was
    return SwinV2Config(image_size=image_size, **copy.deepcopy(SWINV2_PRESETS[preset]))
