"""Pose-balanced sampling: turned faces repeated by their yaw index, frontal faces kept once."""
import numpy as np
import pytest

from conftest import realfaces
from landmark_kd.data import load_dataset
from landmark_kd.data.pose_balance import pose_balanced, pose_copies
from landmark_kd.data.records import Sample
from landmark_kd.errors import ConfigError
from landmark_kd.metrics import yaw_index
from landmark_kd.schemes import get_scheme


def _face(nose_x: float) -> np.ndarray:
    face = np.zeros((68, 2), np.float32)
    face[0], face[16], face[30] = [-50, 0], [50, 0], [nose_x, 20]
    return face


def test_copies_follow_the_yaw_index_bounds():
    faces = np.stack([_face(0), _face(12), _face(-24), _face(35), _face(-40)])
    yaw = np.abs(yaw_index(faces))
    assert yaw[0] == 0 and 0 < yaw[1] < 0.3 and 0.3 <= yaw[2] < 0.5 and yaw[3] >= 0.5 and yaw[4] >= 0.5
    assert pose_copies(faces, get_scheme("68")).tolist() == [1, 1, 2, 3, 3]
    on_bounds = np.stack([_face(0), _face(0)])
    on_bounds[:, 30] = [[15, 0], [25, 0]]  # the nose on the jaw line: yaw index x / 50, exactly 0.3 and 0.5
    assert np.abs(yaw_index(on_bounds)).tolist() == [0.3, 0.5]
    assert pose_copies(on_bounds, get_scheme("68")).tolist() == [2, 3]  # a bound reached counts


def test_balanced_list_repeats_turned_faces_in_order():
    samples = [Sample(f"{i}.jpg", _face(x)) for i, x in enumerate([0, -24, 35])]
    names = [s.image_path for s in pose_balanced(samples, get_scheme("68"))]
    assert names == ["0.jpg", "1.jpg", "1.jpg", "2.jpg", "2.jpg", "2.jpg"]
    assert pose_balanced([], get_scheme("68")) == []


def test_a_layout_without_jaw_and_nose_is_refused():
    with pytest.raises(ConfigError, match="scheme '29' is not one"):
        pose_copies(np.zeros((1, 29, 2)), get_scheme("29"))


def test_on_real_faces_the_strongly_turned_share_doubles():
    """ytf68/val: about one face in seven is strongly turned (|yaw index| >= 0.5); pose balancing makes them
    over a quarter of the list and keeps every frontal face exactly once."""
    samples, _ = load_dataset(realfaces("ytf68/val"), num_points=68)
    balanced = pose_balanced(samples, get_scheme("68"))
    before = np.abs(yaw_index(np.stack([s.landmarks for s in samples])))
    after = np.abs(yaw_index(np.stack([s.landmarks for s in balanced])))
    assert 0.08 < np.mean(before >= 0.5) < 0.2
    assert np.mean(after >= 0.5) > 2 * np.mean(before >= 0.5) - 0.05 and np.mean(after >= 0.5) > 0.25
    assert np.sum(after < 0.3) == np.sum(before < 0.3)
