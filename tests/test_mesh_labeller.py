"""MediaPipe's mesh as a 68-point labeller, on real photographs from ../shared/realfaces (skipped without)."""
import cv2
import numpy as np
import pytest

from conftest import realfaces
from landmark_kd.data import load_dataset
from landmark_kd.metrics import nme_inner51
from landmark_kd.mesh_labeller import MeshLabeller


def _labeller(**kw):
    return MeshLabeller(realfaces("labellers/face_landmark.tflite"), realfaces("labellers/mesh468_to_ibug68.json"), **kw)


def test_mesh_labels_agree_with_the_annotations_on_real_faces():
    samples, _ = load_dataset(realfaces("ytf68/val"), num_points=68)
    labeller = _labeller(passes=1)
    pred, gt = [], []
    for sample in samples[::40]:
        image = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
        points, score = labeller.label(image, sample.face_box())
        assert points.shape == (68, 2) and 0.5 < score <= 1.0
        pred.append(points)
        gt.append(sample.landmarks)
    errors = nme_inner51(np.stack(pred), np.stack(gt))
    assert errors.mean() < 0.07  # about 0.05 measured on the whole val set: another convention, not another face


def test_a_box_far_off_the_face_gives_a_low_score_or_far_points():
    samples, _ = load_dataset(realfaces("ytf68/val"), num_points=68)
    image = cv2.cvtColor(cv2.imread(samples[0].image_path), cv2.COLOR_BGR2RGB)
    noise = np.random.default_rng(0).integers(0, 255, image.shape, dtype=np.uint8)
    _, score = _labeller().label(noise, samples[0].face_box())
    assert score < 0.5


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tflite"):
        MeshLabeller(str(tmp_path / "nope.tflite"), str(tmp_path / "t.json"))
