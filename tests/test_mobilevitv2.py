import numpy as np
import pytest

from conftest import reference
from landmark_kd.models import backbone_from_transformers
from landmark_kd.models.mobilevitv2.mobilevitv2_backbone import MobileViTV2Config
from landmark_kd.models.mobilevitv2.mobilevitv2_presets import mobilevitv2_config


def test_matches_transformers_reference():
    model = backbone_from_transformers(reference("mobilevitv2_05.config.json"), reference("mobilevitv2_05.safetensors"))
    ref = np.load(reference("mobilevitv2_05.outputs.npz"))
    outputs = model(ref["input_nhwc"], training=False)
    assert len(outputs) == 5
    for i, out in enumerate(outputs):
        expected = ref[f"hidden_{i}_nhwc"]
        assert out.shape == expected.shape
        assert np.abs(out.numpy() - expected).max() <= 1e-4, f"hidden_{i}"


@pytest.mark.parametrize("width,channels", [(0.5, [16, 32, 64, 128, 192, 256]), (1.0, [32, 64, 128, 256, 384, 512]),
                                            (2.0, [64, 128, 256, 512, 768, 1024])])
def test_width_multipliers(width, channels):
    assert MobileViTV2Config(width_multiplier=width).channels() == channels


def test_presets():
    assert mobilevitv2_config("mobilevitv2_050").width_multiplier == 0.5
    assert mobilevitv2_config("mobilevitv2_200").width_multiplier == 2.0
    with pytest.raises(ValueError, match="unknown MobileViT-v2 preset"):
        mobilevitv2_config("mobilevitv2_300")
