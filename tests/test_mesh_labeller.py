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
    with pytest.raises(FileNotFoundError, match="a folder; the labeller needs the file itself"):
        MeshLabeller(str(tmp_path), str(tmp_path / "t.json"))  # a folder is named as such, not as missing


def test_wrong_labeller_files_are_one_line_errors_naming_the_file(tmp_path):
    """Swapped files, another model, a table of another layout: each is a user error that names the file and
    what is wrong (these were a StopIteration, a KeyError and a UnicodeDecodeError)."""
    import json
    import os

    from landmark_kd.errors import DataError, ModelFileError

    model, table = realfaces("labellers/face_landmark.tflite"), realfaces("labellers/mesh468_to_ibug68.json")
    with pytest.raises(DataError, match=f"{model}: not a JSON text file"):
        MeshLabeller(table, model)  # swapped: the model read as the table
    with pytest.raises(ModelFileError, match=f"{table}: not a loadable .tflite model"):
        MeshLabeller(table, table)
    student = os.path.join(os.path.dirname(__file__), "..", "landmark_kd", "pretrained", "real_student_fp16.tflite")
    with pytest.raises(ModelFileError, match=r"not MediaPipe's Face Mesh landmark model .*outputs \[\(1, 68\), \(1, 68, 2\)\]"):
        MeshLabeller(student, table)
    rows = json.load(open(table))["ibug68_from_mesh468"]
    cases = {"other.json": ({"rows": rows}, "no 'ibug68_from_mesh468' entry"),
             "short.json": ({"ibug68_from_mesh468": rows[:5]}, "'ibug68_from_mesh468' must list 68 rows, got 5"),
             "index.json": ({"ibug68_from_mesh468": rows[:67] + [[468]]},
                            r"'ibug68_from_mesh468' row 67 is \[468\]; each row lists mesh vertex indices 0\.\.467"),
             "text.json": ("{not json", "not valid JSON")}
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(DataError, match=f"{path}: {message}"):
            MeshLabeller(model, str(path))


def test_the_mesh_depth_puts_the_nose_in_front_of_the_eyes():
    """`label_3d`: `label`'s points with the mesh's depth (smaller nearer the camera), what the head-pose mean
    face is built from."""
    samples, _ = load_dataset(realfaces("ytf68/val"), num_points=68)
    labeller = _labeller()
    for sample in samples[::100]:
        image = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
        points, score = labeller.label_3d(image, sample.face_box())
        flat, _ = labeller.label(image, sample.face_box())
        assert points.shape == (68, 3) and np.array_equal(points[:, :2], flat)
        eye_distance = np.linalg.norm(points[45, :2] - points[36, :2])
        assert points[30, 2] < min(points[36, 2], points[45, 2]) - 0.2 * eye_distance  # nose tip nearest
