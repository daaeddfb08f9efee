"""Unlabelled photos for distillation: faces are cut as LandmarkDetector cuts them, boxes are cached per detector."""
import glob
import json
import os
import shutil

import numpy as np
import pytest

from conftest import realfaces
from landmark_kd.data.pts300w import read_pts
from landmark_kd.data.unlabeled import DETECTOR, load_unlabeled
from landmark_kd.inference import HaarFaceDetector


def _framing(box: np.ndarray, points: np.ndarray) -> tuple[float, float]:
    """Centre offset and size ratio of a box against the 68-landmark box, in landmark-box sides."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = float(max(hi - lo))
    offset = np.linalg.norm((box[:2] + box[2:]) / 2 - (lo + hi) / 2) / side
    return float(offset), float(max(box[2:] - box[:2]) / side)


def test_unlabelled_faces_are_framed_like_labelled_ones(tmp_path):
    """On real frames with 68-point labels, the default boxes sit on the landmark box that training crops from;
    the raw Haar box the loader used before sits a fifth of the face off."""
    photos = sorted(glob.glob(os.path.join(realfaces("ytf68/val"), "*.jpg")))[::40][:10]
    for path in photos:
        shutil.copy(path, tmp_path / os.path.basename(path))
    points = {os.path.basename(p): read_pts(p[:-4] + ".pts") for p in photos}

    def framing(samples):
        return np.array([_framing(s.bbox, points[os.path.basename(s.image_path)]) for s in samples])

    default = framing(load_unlabeled(str(tmp_path), 68))
    haar = framing(load_unlabeled(str(tmp_path), 68, detector=HaarFaceDetector()))
    assert len(default) == len(photos)
    assert np.median(default[:, 0]) < 0.08 and 0.85 < np.median(default[:, 1]) < 1.2
    assert np.median(haar[:, 0]) > 2 * np.median(default[:, 0])


def test_the_box_cache_is_reused_only_for_the_same_detector(tmp_path):
    import cv2
    from skimage.data import astronaut

    root = tmp_path / "photos"
    root.mkdir()
    cv2.imwrite(str(root / "a.jpg"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    cache = tmp_path / "boxes.json"
    calls = []

    def fixed(image):
        calls.append(image.shape)
        return [(np.array([10, 20, 110, 120], np.float32), 1.0)]

    first = load_unlabeled(str(root), 68, str(cache), detector=fixed)
    again = load_unlabeled(str(root), 68, str(cache), detector=fixed)
    assert len(calls) == 1 and np.allclose(again[0].bbox, first[0].bbox) and np.allclose(first[0].bbox, [10, 20, 110, 120])
    assert json.load(open(cache))["detector"] == "fixed"
    # the default detector does not take another detector's boxes: it finds the astronaut's face itself
    default = load_unlabeled(str(root), 68, str(cache))
    assert not np.allclose(default[0].bbox, [10, 20, 110, 120]) and 150 < default[0].bbox[0] < 250
    assert json.load(open(cache))["detector"] == DETECTOR
    # a cache in the old form (path -> box, no detector) is detected again, not trusted
    cache.write_text(json.dumps({str(root / "a.jpg"): [0, 0, 5, 5]}))
    assert load_unlabeled(str(root), 68, str(cache), detector=fixed)[0].bbox[2] == 110


def test_a_photo_replaced_under_the_same_name_is_detected_again(tmp_path):
    """The cache outlives --restart: a photo edited or replaced in place (here: padded, so the face moves) must not
    be cut at the box found in the old picture."""
    import cv2

    root = tmp_path / "photos"
    root.mkdir()
    photo = root / "a.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 200, np.uint8))
    cache = str(tmp_path / "boxes.json")

    def by_size(image):  # the "face" is the picture's top-left quarter, so it follows the picture's size
        h, w = image.shape[:2]
        return [(np.array([0, 0, w / 2, h / 2], np.float32), 1.0)]

    assert np.allclose(load_unlabeled(str(root), 68, cache, detector=by_size)[0].bbox, [0, 0, 32, 32])
    cv2.imwrite(str(photo), np.full((128, 128, 3), 200, np.uint8))
    os.utime(photo, ns=(1, 1))  # a new file, whatever the clock's resolution
    assert np.allclose(load_unlabeled(str(root), 68, cache, detector=by_size)[0].bbox, [0, 0, 64, 64])


def test_missing_folder_is_a_clear_error(tmp_path):
    from landmark_kd.data.records import DatasetError

    with pytest.raises(DatasetError, match="no such file"):
        load_unlabeled(str(tmp_path / "absent"), 68)


def _png_claiming(width: int, height: int) -> bytes:
    """A real small PNG whose header says `width` x `height` (the check reads the header, not the pixels)."""
    import cv2

    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


def test_each_skipped_photo_is_reported_with_its_own_reason(tmp_path, capsys):
    """Damaged, oversized, unreadable and faceless photos each get their reason (not one vague one), counted
    per reason, and the reasons are cached with the boxes so a resumed run reports them without detecting."""
    import cv2

    from landmark_kd.data.records import LoadReport

    root = tmp_path / "photos"
    root.mkdir()
    face = np.full((120, 120, 3), 200, np.uint8)
    cv2.imwrite(str(root / "face.png"), face)
    cv2.imwrite(str(root / "blank.png"), np.zeros((120, 120, 3), np.uint8))
    jpeg = cv2.imencode(".jpg", face)[1].tobytes()
    (root / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "huge.png").write_bytes(_png_claiming(10000, 8000))
    (root / "text.jpg").write_text("not a photo")
    calls = []

    def bright(image):  # a "face" wherever the picture is bright
        calls.append(1)
        return [(np.array([10, 10, 110, 110], np.float32), 1.0)] if image.mean() > 100 else []

    cache = str(tmp_path / "boxes.json")
    for run in range(2):
        report = LoadReport()
        samples = load_unlabeled(str(root), 68, cache, detector=bright, report=report)
        assert [os.path.basename(s.image_path) for s in samples] == ["face.png"]
        reasons = {os.path.basename(p): r for p, r in report.skipped}
        assert reasons == {
            "blank.png": "no face found",
            "cut.jpg": "truncated JPEG (no end-of-image marker)",
            "huge.png": "image too large to decode: 10000x8000 pixels (the limit is 50 million)",
            "text.jpg": "not a PNG/JPEG/BMP/GIF/TIFF/WebP image"}
        out = capsys.readouterr().out
        assert "1 samples loaded, 4 skipped" in out and "skipped by reason: " in out
        assert "no face found 1" in out and "image too large to decode 1" in out
    assert len(calls) == 2  # face and blank, detected once: the second load took boxes and reasons from the cache
    for name in ("face.png", "blank.png"):
        os.remove(root / name)
    from landmark_kd.data.records import DatasetError

    with pytest.raises(DatasetError, match=r"no usable unlabelled face photos \(3 skipped: truncated JPEG"):
        load_unlabeled(str(root), 68, cache, detector=bright)


def test_spread_reads_evenly_spaced_photos_and_landmarks_sit_at_the_box_centre(tmp_path, capsys):
    import cv2

    root = tmp_path / "photos"
    root.mkdir()
    for i in range(7):
        cv2.imwrite(str(root / f"p{i}.png"), np.full((40 + i, 40, 3), 200, np.uint8))
    seen = []

    def boxed(image):  # each photo's box tells it apart: its height
        seen.append(image.shape[0])
        return [(np.array([2, 4, 12, image.shape[0]], np.float32), 1.0)]

    samples = load_unlabeled(str(root), 5, detector=boxed, spread=3)
    assert [os.path.basename(s.image_path) for s in samples] == ["p0.png", "p3.png", "p6.png"] and seen == [40, 43, 46]
    for sample, height in zip(samples, (40, 43, 46)):
        np.testing.assert_allclose(sample.bbox, [2, 4, 12, height])
        np.testing.assert_allclose(sample.landmarks, np.tile([7, (4 + height) / 2], (5, 1)))
    assert len(load_unlabeled(str(root), 5, detector=boxed, spread=7)) == 7
    one = load_unlabeled(str(root), 5, detector=boxed, spread=1)
    assert [os.path.basename(s.image_path) for s in one] == ["p0.png"]
