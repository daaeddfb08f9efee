import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "reference")
REALFACES = os.path.join(os.path.dirname(ROOT), "shared", "realfaces")


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: the cores this process may use, at most 4 (each worker is a TensorFlow process of a few GB;
    beyond 4 the suite is bound by its longest module, not by the workers)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def reference(name: str) -> str:
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        pytest.skip(f"reference data {path} not available")
    return path


def realfaces(name: str) -> str:
    """A path inside ../shared/realfaces (real photographs); the test skips where it is absent."""
    path = os.path.join(REALFACES, name)
    if not os.path.exists(path):
        pytest.skip(f"real-face data {path} not available")
    return path


def assert_backbone_matches_reference(stem: str, limits: dict | None = None, default_limit: float = 1e-4) -> None:
    """Our Keras backbone, loaded from `{stem}.config.json` + `.safetensors`, reproduces every stage output in
    `{stem}.outputs.npz` (the transformers model's) within `limits[stage]` (else `default_limit`) max abs."""
    from landmark_kd.models import backbone_from_transformers

    model = backbone_from_transformers(reference(f"{stem}.config.json"), reference(f"{stem}.safetensors"))
    ref = np.load(reference(f"{stem}.outputs.npz"))
    outputs = model(ref["input_nhwc"], training=False)
    assert len(outputs) == 5
    for i, out in enumerate(outputs):
        expected = ref[f"hidden_{i}_nhwc"]
        assert out.shape == expected.shape
        assert np.abs(out.numpy() - expected).max() <= (limits or {}).get(i, default_limit), f"hidden_{i}"


def assert_import_names_missing_key(stem: str, dropped_prefix: str, match: str, tmp_path) -> dict:
    """The importer fills the blocks its config describes, so a checkpoint lacking `dropped_prefix.*` fails on
    that key (`match`). Returns the full state dict for further checks."""
    from safetensors.numpy import save_file

    from landmark_kd.models import backbone_from_transformers
    from landmark_kd.models.transformers_import import WeightImportError, load_state_dict

    state = load_state_dict(reference(f"{stem}.safetensors"))
    path = str(tmp_path / "short.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith(dropped_prefix)}, path)
    with pytest.raises(WeightImportError, match=match):
        backbone_from_transformers(reference(f"{stem}.config.json"), path)
    return state


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def posed_face(yaw: float, pitch: float = 0.0, roll: float = 0.0, at=(0.0, 0.0, 600.0), size=(640, 480),
               focal: float | None = None) -> np.ndarray:
    """(68, 2) image landmarks of the shipped mean 3D face at `at` (mm, camera frame) turned by (yaw, pitch, roll)
    degrees against the line of sight, in a `size` picture; the jaw points, which the head pose does not read,
    repeat points 17-33 (finite filler)."""
    from landmark_kd.head_pose import camera_matrix, line_of_sight, load_mean_face, rotation_from_angles

    at = np.asarray(at, np.float64)
    turned = np.asarray(load_mean_face()) @ (line_of_sight(at) @ rotation_from_angles(yaw, pitch, roll)).T + at
    projected = turned @ camera_matrix(size, focal).T
    points = np.zeros((68, 2))
    points[17:] = projected[:, :2] / projected[:, 2:]
    points[:17] = points[17:34]
    return points
