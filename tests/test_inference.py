import json
import os

import cv2
import keras
import numpy as np
import pytest

from landmark_kd.data import load_dataset
from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
from landmark_kd.data.synthetic import generate, render_face
from landmark_kd.inference import LandmarkDetector, OneEuroFilter, crop_affine
from landmark_kd.models import build_landmark_model
from landmark_kd.predict import main as predict_main
from landmark_kd.schemes import get_scheme


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("model") / "m.keras")
    build_landmark_model("mobilevitv2_pico", "68", 64).save(path)
    return path


def test_crop_matches_the_training_pipeline(tmp_path):
    samples, _ = load_dataset(generate(str(tmp_path / "f"), 2, seed=4, size=128, sheet=False), num_points=68)
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    images, targets = next(iter(pipeline.dataset(samples, 2, training=False)))
    box = samples[0].face_box()
    assert np.allclose(crop_affine(box, 64, 0.25), targets["affine"].numpy()[0], atol=1e-4)
    image = cv2.cvtColor(cv2.imread(samples[0].image_path), cv2.COLOR_BGR2RGB)
    crop = cv2.warpAffine(image, crop_affine(box, 64, 0.25), (64, 64), flags=cv2.INTER_LINEAR) / 255.0
    assert np.abs(crop - images.numpy()[0]).mean() < 0.01


def test_detector_maps_landmarks_into_the_box(model_path):
    image, pts = render_face(3, 128)
    box = [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
    detector = LandmarkDetector(model_path, detector="haar")
    faces = detector(image, boxes=[box])
    assert len(faces) == 1 and faces[0].landmarks.shape == (68, 2) and faces[0].score == 1.0
    side = max(box[2] - box[0], box[3] - box[1]) * 1.25
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    assert np.all(np.abs(faces[0].landmarks - centre) <= side / 2 + 1)  # inside the crop
    assert detector.predict_batch([image, image], [[box], []])[1] == []
    with pytest.raises(ValueError, match="RGB uint8"):
        detector(image.astype(np.float32))


def test_haar_finds_a_real_face():
    skimage_data = pytest.importorskip("skimage.data")
    from landmark_kd.inference import HaarFaceDetector

    faces = HaarFaceDetector()(skimage_data.astronaut())
    assert len(faces) >= 1
    x0, y0, x1, y1 = faces[0][0]
    assert 100 < (x0 + x1) / 2 < 300 and 20 < (y0 + y1) / 2 < 200  # the astronaut's face, upper middle


def test_one_euro_filter_cuts_jitter_and_follows_moves():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    noisy = 50 + rng.normal(0, 1.0, (200, 3, 2))
    out = np.stack([f(x, 1 / 30) for x in noisy])
    assert out[50:].std() < 0.5 * noisy[50:].std()
    g = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    steps = [g(np.full((1, 2), 0.0 if i < 30 else 100.0), 1 / 30) for i in range(60)]
    assert steps[-1][0, 0] > 95  # catches up with a real move


def test_predict_cli_image_folder_and_video(model_path, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    image, pts = render_face(9, 128)
    cv2.imwrite(str(folder / "face.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    assert predict_main([str(folder), "--model", model_path, "--out", str(out), "--detector", "full"]) == 0
    result = json.load(open(out / "landmarks.json"))
    assert result["scheme"] == "68"
    entry = result["results"][str(folder / "face.png")]
    assert len(entry["faces"]) == 1 and np.array(entry["faces"][0]["landmarks"]).shape == (68, 2)
    assert os.path.exists(entry["annotated"])
    assert "cannot read image" in result["results"][str(folder / "broken.png")]["error"]
    # a blank image has no face for the Haar detector: reported, not a crash
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 90, np.uint8))
    assert predict_main([str(blank), "--model", model_path, "--out", str(tmp_path / "o2")]) == 0
    assert "no face found" in capsys.readouterr().out
    # a short video, with smoothing
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 128))
    for i in range(6):
        frame, _ = render_face(9, 128)
        writer.write(cv2.cvtColor(np.roll(frame, i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    assert predict_main([video, "--model", model_path, "--out", str(tmp_path / "o3"), "--detector", "full"]) == 0
    frames = json.load(open(tmp_path / "o3" / "landmarks.json"))["results"][video]["frames"]
    assert len(frames) == 6 and all(len(f["faces"]) == 1 for f in frames)
    assert os.path.getsize(tmp_path / "o3" / "clip_landmarks.mp4") > 0
    assert predict_main([str(tmp_path / "none.png"), "--model", model_path]) == 2
    assert predict_main([str(blank), "--model", str(tmp_path / "none.keras")]) == 2


def test_batch_pts_format_one_file_per_image(model_path, tmp_path, capsys):
    """--list ... --format pts: one .pts per image with every face; an unreadable image gets an empty file."""
    from landmark_kd.data.pts300w import read_pts

    for i in range(2):
        image, _ = render_face(i, 96)
        cv2.imwrite(str(tmp_path / f"face{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (tmp_path / "list.txt").write_text("\ufeff# challenge list\nface0.png\n\nface1.png\nmissing.png\n")
    out = tmp_path / "pts"
    code = predict_main(["--list", str(tmp_path / "list.txt"), "--model", model_path, "--out", str(out),
                         "--detector", "full", "--format", "pts", "--points", "51"])
    assert code == 0
    assert sorted(os.listdir(out)) == ["face0.pts", "face1.pts", "missing.pts"]
    assert read_pts(str(out / "face0.pts")).shape == (51, 2)
    assert (out / "missing.pts").read_text() == ""
    printed = capsys.readouterr().out
    assert "2 face(s) written" in printed and "1 unreadable" in printed


def test_pts_faces_are_ordered_right_to_left(tmp_path):
    from landmark_kd.inference import Face
    from landmark_kd.predict import predict_pts

    image, _ = render_face(0, 64)
    cv2.imwrite(str(tmp_path / "two.png"), image)
    left = Face(np.array([0, 0, 10, 10], np.float32), np.full((68, 2), 5.0, np.float32), 0.9)
    right = Face(np.array([40, 0, 50, 10], np.float32), np.full((68, 2), 45.0, np.float32), 0.5)
    result = predict_pts(lambda img: [left, right], [str(tmp_path / "two.png")], str(tmp_path), inner51=False)
    text = open(result["pts"][str(tmp_path / "two.png")]).read()
    blocks = text.split("version: 1")[1:]
    assert len(blocks) == 2 and "46.000 46.000" in blocks[0] and "6.000 6.000" in blocks[1]
    assert result["faces"] == 2 and result["no_face"] == 0


def test_predict_needs_an_input_or_a_list(capsys):
    with pytest.raises(SystemExit) as stop:
        predict_main([])
    assert stop.value.code == 2 and "--list" in capsys.readouterr().err
