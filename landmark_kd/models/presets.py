"""The backbone preset names, importable without Keras: the CLIs' --preset choices, so `--help` stays fast."""
from .mobilevitv2.mobilevitv2_presets import MOBILEVITV2_PRESETS
from .swinv2.swinv2_presets import SWINV2_PRESETS

BACKBONES = sorted(SWINV2_PRESETS) + sorted(MOBILEVITV2_PRESETS)
