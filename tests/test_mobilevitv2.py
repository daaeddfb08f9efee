import pytest

from conftest import assert_backbone_matches_reference, assert_import_names_missing_key
from landmark_kd.models.mobilevitv2.mobilevitv2_backbone import MobileViTV2Config
from landmark_kd.models.mobilevitv2.mobilevitv2_presets import mobilevitv2_config


def test_matches_transformers_reference():
    assert_backbone_matches_reference("mobilevitv2_05")


@pytest.mark.parametrize("width,channels", [(0.5, [16, 32, 64, 128, 192, 256]), (1.0, [32, 64, 128, 256, 384, 512]),
                                            (2.0, [64, 128, 256, 512, 768, 1024])])
def test_width_multipliers(width, channels):
    assert MobileViTV2Config(width_multiplier=width).channels() == channels


def test_presets():
    assert mobilevitv2_config("mobilevitv2_050").width_multiplier == 0.5
    assert mobilevitv2_config("mobilevitv2_200").width_multiplier == 2.0
    fast = mobilevitv2_config("mobilevitv2_050_fast")
    fast.n_attn_blocks.append(1)  # a config's lists are its own: the preset table stays as it was
    assert mobilevitv2_config("mobilevitv2_050_fast").n_attn_blocks == [1, 1, 1]
    with pytest.raises(ValueError, match="unknown MobileViT-v2 preset"):
        mobilevitv2_config("mobilevitv2_300")


def test_importer_names_a_missing_key(tmp_path):
    """layer1's second inverted residual is part of the architecture: a checkpoint without it fails on its key."""
    assert_import_names_missing_key("mobilevitv2_05", "encoder.layer.1.layer.1.",
                                    r"missing parameter 'encoder\.layer\.1\.layer\.1\.expand_1x1", tmp_path)
