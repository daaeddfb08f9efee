"""BlazeFace detector (landmark_kd/face_detector.py): anchors, decoding, weighted NMS, and real photos."""
import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import realfaces

from landmark_kd.face_detector import (ASSETS_DIR, LANDMARK_BOX_FITS, BlazeFaceDetector, Detection, box_containment,
                                       box_iou, decode, letterbox, ssd_anchor_centres, unturn_points, weighted_nms)


@pytest.fixture(scope="module")
def detectors():
    return {name: BlazeFaceDetector(name) for name in ("short", "full", "auto")}


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return astronaut()  # 512x512 RGB, one face at about x 175-275, y 65-175


def rotate(image, degrees, centre=(225, 125)):
    """cv2 convention: positive degrees turn the picture counter-clockwise on screen."""
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]))


def test_short_range_anchors():
    anchors = ssd_anchor_centres(128, (8, 16, 16, 16), 2)
    assert anchors.shape == (896, 2)
    # stride 8: a 16x16 grid, 2 anchors per cell, row-major (x varies fastest)
    assert np.allclose(anchors[0], [1 / 32, 1 / 32]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2], [3 / 32, 1 / 32])
    assert np.allclose(anchors[32], [1 / 32, 3 / 32])
    # the three stride-16 layers share an 8x8 grid with 3 * 2 = 6 anchors per cell
    assert np.allclose(anchors[512:518], [1 / 16, 1 / 16])
    assert np.allclose(anchors[518], [3 / 16, 1 / 16])
    assert np.allclose(anchors[-1], [15 / 16, 15 / 16])


def test_full_range_anchors():
    anchors = ssd_anchor_centres(192, (4,), 1)
    assert anchors.shape == (2304, 2)
    assert np.allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    assert np.allclose(anchors[1], [1.5 / 48, 0.5 / 48])
    assert np.allclose(anchors[48], [0.5 / 48, 1.5 / 48])
    assert np.allclose(anchors[-1], [47.5 / 48, 47.5 / 48])


def test_anchor_counts_match_the_shipped_models(detectors):
    short, full = detectors["auto"].models
    assert (short.input_size, len(short.anchors)) == (128, 896)
    assert (full.input_size, len(full.anchors)) == (192, 2304)


def test_decoding_a_hand_made_row():
    anchors = np.array([[0.5, 0.5], [0.25, 0.75]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    # x, y centre offsets, width, height in input pixels (input 128), then 6 keypoints (x, y)
    raw[0, :4] = [12.8, -6.4, 32.0, 64.0]
    raw[0, 4:6] = [6.4, 0.0]
    raw[0, 6:8] = [-12.8, 12.8]
    boxes, keypoints, scores = decode(raw, np.array([0.0, 1000.0]), anchors, 128)
    assert np.allclose(boxes[0], [0.6 - 0.125, 0.45 - 0.25, 0.6 + 0.125, 0.45 + 0.25])
    assert np.allclose(keypoints[0, 0], [0.55, 0.5]) and np.allclose(keypoints[0, 1], [0.4, 0.6])
    assert np.allclose(keypoints[0, 2:], [0.5, 0.5])  # zero offsets sit on the anchor centre
    assert np.allclose(boxes[1], [0.25, 0.75, 0.25, 0.75])  # an all-zero row is a point at its anchor
    assert np.allclose(keypoints[1], [0.25, 0.75])
    assert np.allclose(scores, [0.5, 1.0])  # sigmoid of the logit clipped to +-100


def test_weighted_nms_merges_overlapping_and_keeps_separate_boxes():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0],  # best
                      [0.1, 0.1, 1.1, 1.1],  # IoU 0.68 with the best: blended into it
                      [3.0, 3.0, 4.0, 4.0],  # far away: its own face
                      [0.5, 0.0, 1.5, 1.0]], np.float32)  # IoU 1/3 > 0.3: blended too
    scores = np.array([0.9, 0.6, 0.7, 0.55], np.float32)
    keypoints = np.repeat(boxes[:, None, :2], 6, axis=1)
    out = weighted_nms(boxes, keypoints, scores, 0.3)
    assert len(out) == 2
    (box, kps, score), (box2, kps2, score2) = out
    assert score == pytest.approx(0.9) and score2 == pytest.approx(0.7)  # the best score, not a mean
    w = np.array([0.9, 0.6, 0.55])[:, None]
    expected = (boxes[[0, 1, 3]] * w).sum(0) / w.sum()
    assert np.allclose(box, expected) and np.allclose(kps, np.repeat(expected[None, :2], 6, axis=0))
    assert np.allclose(box2, boxes[2]) and np.allclose(kps2, boxes[2, :2])
    # a stricter grouping threshold keeps the one-third overlap apart
    assert len(weighted_nms(boxes, keypoints, scores, 0.5)) == 3
    assert weighted_nms(boxes[:0], keypoints[:0], scores[:0]) == []



def test_weighted_nms_gives_a_best_box_without_area_its_own_group():
    """A box with no area has IoU 0 even with itself: as the best box it still forms its own group (else the loop
    never shrinks the remaining boxes, and the blend divides by a zero weight)."""
    import threading

    boxes = np.array([[5, 5, 5, 5], [0, 0, 1, 1]], np.float32)
    keypoints = np.repeat(boxes[:, None, :2], 6, axis=1)
    result = []
    worker = threading.Thread(target=lambda: result.append(weighted_nms(boxes, keypoints, np.array([0.9, 0.8]))),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert result, "weighted_nms did not finish"
    (box, kps, score), (box2, _, score2) = result[0]
    assert box.tolist() == [5, 5, 5, 5] and np.allclose(kps, 5) and score == pytest.approx(0.9)
    assert box2.tolist() == [0, 0, 1, 1] and score2 == pytest.approx(0.8)


def test_box_containment_measures_the_smaller_box():
    big = np.array([0, 0, 100, 100], np.float32)
    boxes = np.array([[20, 20, 70, 70],  # wholly inside: 1, though its IoU is 0.25
                      [80, 0, 130, 50],  # 20 of its 50 columns inside: 0.4
                      [200, 200, 250, 250],  # apart
                      [10, 10, 10, 50]], np.float32)  # no area
    assert np.allclose(box_containment(big, boxes), [1.0, 0.4, 0.0, 0.0])
    assert box_iou(big, boxes[:1])[0] == pytest.approx(0.25)


def _face(box, score, model):
    """A Detection whose 68-point box estimate (what auto mode compares) is `box`."""
    dx, dy, sw, sh = LANDMARK_BOX_FITS[model]
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) / sw, (y1 - y0) / sh
    cx, cy = (x0 + x1) / 2 - dx * w, (y0 + y1) / 2 - dy * h
    face = Detection(np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32), score,
                     np.zeros((6, 2), np.float32), model)
    assert np.allclose(face.landmark_box(), box, atol=1e-3)
    return face


def test_auto_mode_merges_a_small_face_inside_a_loose_short_range_box(detectors):
    merge = detectors["auto"]._merge
    loose = _face([340, 120, 420, 200], 0.6, "short")  # short range's one box around a small face
    small = _face([364, 137, 402, 173], 0.8, "full")  # the face, inside it: IoU 0.21, containment 1
    assert merge([loose], small) == [small]  # the better-scored full-range face replaces the loose box
    weak = _face([364, 137, 402, 173], 0.5, "full")
    assert merge([loose], weak) == [loose]  # one face either way: the short-range box stays
    close = _face([345, 125, 425, 205], 0.9, "full")  # IoU 0.78: short range's box stays, as before
    assert merge([loose], close) == [loose]
    apart = _face([100, 100, 140, 140], 0.7, "full")
    assert merge([loose], apart) == [loose, apart]
    edge = _face([410, 120, 450, 160], 0.9, "full")  # a quarter of it inside: another face beside
    assert merge([loose], edge) == [loose, edge]



def test_a_models_rows_come_back_in_the_pixels_of_the_picture_it_was_given():
    """run(): the letterboxed input's normalised rows -> 0-based image pixel centres of the original (scale and the
    letterbox's border undone); rows under the threshold are dropped. A 256x101 picture in the 128 px square:
    scale 1/2 across and 50/101 down (50 rows), a 39 px border above."""
    import threading

    from landmark_kd.face_detector import MODELS, _BlazeFaceModel

    anchors = ssd_anchor_centres(128, MODELS["short"].strides, 2)
    rows, logits = np.zeros((len(anchors), 16), np.float32), np.full((len(anchors), 1), -100.0, np.float32)
    rows[0, :4] = [60, 60, 32, 32]  # anchor 0 sits at (4, 4) px: centre (64, 64), a 32 px square
    rows[0, 4:6] = [28, 60]  # first keypoint at (32, 64)
    logits[0] = 3.0

    class Interpreter:
        def set_tensor(self, index, tensor):
            assert index == 0 and tensor.shape == (1, 128, 128, 3) and -1 <= tensor.min() and tensor.max() <= 1

        def invoke(self):
            pass

        def get_tensor(self, index):
            return {1: rows, 2: logits}[index][None]

    model = object.__new__(_BlazeFaceModel)
    model.interpreter, model.input_index, model.regressor_index, model.score_index = Interpreter(), 0, 1, 2
    model.input_size, model.spec, model.anchors, model._lock = 128, MODELS["short"], anchors, threading.Lock()
    (face,) = model.run(np.zeros((101, 256, 3), np.uint8), 0.5, 0.3)
    down = 101 / 50
    assert np.allclose(face.box, [95.5, 50 - 16 * down, 159.5, 50 + 16 * down])
    assert face.score == pytest.approx(1 / (1 + np.exp(-3)))
    assert np.allclose(face.keypoints[0], [63.5, 50]) and np.allclose(face.keypoints[1], [7.5, -35 * down - 0.5])
    assert face.model == "short" and model.run(np.zeros((101, 256, 3), np.uint8), 0.96, 0.3) == []


def test_letterbox_keeps_aspect_and_centres():
    image = np.full((100, 200, 3), 255, np.uint8)
    square, sx, sy, px, py = letterbox(image, 128)
    assert square.shape == (128, 128, 3) and (sx, sy, px) == (0.64, 0.64, 0.0) and py == 32.0
    assert square[:32].max() == 0 and square[96:].max() == 0 and square[32:96].min() == 255


@pytest.mark.parametrize("model", ["short", "full", "auto"])
def test_astronaut_has_one_face(detectors, astronaut, model):
    faces = detectors[model].detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Detection) and face.score > 0.8
    x0, y0, x1, y1 = face.box
    assert x0 < 200 and y0 < 100 and x1 > 250 and y1 > 150  # eyes-to-mouth region inside the box
    assert x0 > 150 and y0 > 40 and x1 < 300 and y1 < 200  # and the box is not much larger than the face
    (rx, ry), (lx, ly), nose, mouth = face.keypoints[:4]
    assert rx < nose[0] < lx  # the subject's right eye is on the image's left
    assert max(ry, ly) < nose[1] < mouth[1]
    ((box, score),) = detectors[model](astronaut)
    assert np.allclose(box, face.landmark_box()) and score == face.score and box.dtype == np.float32


def test_grey_and_rgba_are_taken_and_other_pixel_types_refused(detectors, astronaut):
    """Grey and RGBA convert without loss; a float image in [0, 1] or a 16-bit one was clipped to 0-255 (black,
    or white) and came back with no face and no word."""
    from landmark_kd.errors import DataError

    detector = detectors["short"]
    assert len(detector(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))) == 1
    assert len(detector(cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA))) == 1
    # each with the hint that fits its range: a float image already in 0-255 was told to multiply by 255
    for image, hint in ((astronaut / 255.0, r"\(values in \[0, 1\]: \(image \* 255\)\.round\(\)"),
                        (astronaut.astype(np.float32), r"\(values in 0-255: image\.round\(\)\.astype"),
                        (astronaut.astype(np.uint16) * 257, r"\(16-bit values: \(image // 257\)"),
                        (astronaut.astype(np.int32), r"\(values in 0-255: image\.astype\(np\.uint8\)\)"),
                        (astronaut * 4.0 - 100, r"\(values from -100 to 920: scale them to 0-255 first\)")):
        with pytest.raises(DataError, match=f"expected an RGB uint8 image .*got {image.dtype} .*{hint}"):
            detector(image)
    with pytest.raises(DataError, match=r"got shape \(5, 5, 2\)"):
        detector(np.zeros((5, 5, 2), np.uint8))


def test_landmark_box_follows_the_fit():
    face = Detection(np.array([10, 20, 110, 220], np.float32), 0.9, np.zeros((6, 2), np.float32))
    assert np.allclose(face.landmark_box((0, 0, 1, 1)), face.box)
    assert np.allclose(face.landmark_box((0.1, -0.05, 1.2, 0.9)), [60 + 10 - 60, 120 - 10 - 90, 70 + 60, 110 + 90])


def test_eye_angle_follows_roll_and_flips_with_a_mirror(detectors, astronaut):
    detector = detectors["short"]
    clockwise = detector.detect(rotate(astronaut, -25))[0].eye_angle()
    counter = detector.detect(rotate(astronaut, 25))[0].eye_angle()
    assert clockwise > np.radians(10) and counter < -np.radians(10)
    assert clockwise - counter == pytest.approx(np.radians(50), abs=np.radians(12))
    mirrored = detector.detect(np.ascontiguousarray(rotate(astronaut, -25)[:, ::-1]))[0].eye_angle()
    assert mirrored < -np.radians(10) and abs(mirrored + clockwise) < np.radians(10)
    level = Detection(np.zeros(4, np.float32), 1.0, np.array([[10, 5], [20, 5]] + [[0, 0]] * 4, np.float32))
    assert level.eye_angle() == 0.0


def test_unturn_points_places_a_turned_images_pixels_back():
    image = np.zeros((5, 7), np.uint8)
    image[1, 4] = 255  # x 4, y 1
    for turns in range(-1, 6):
        turned = np.rot90(image, turns)
        y, x = np.argwhere(turned == 255)[0]
        assert unturn_points(np.array([x, y], np.float32), turns, image.shape).tolist() == [4.0, 1.0]


def test_any_angle_finds_a_face_in_every_quarter_turn_with_its_box_and_roll(detectors, astronaut):
    """Upside down, the upright-only detector still fires on the astronaut but puts its eye keypoints as if the
    face were level (-15 degrees where the truth is about -170); turning the image finds her with the upright
    detection's own box and roll, whichever way up she is."""
    upright = detectors["auto"].detect(astronaut)[0]
    any_angle = BlazeFaceDetector(any_angle=True)
    level = any_angle.detect(astronaut)
    assert len(level) == 1 and level[0].quarter_turns == 0
    np.testing.assert_allclose(level[0].landmark_box(), upright.landmark_box(), atol=1e-3)
    for turns in (1, 2, 3):
        turned = np.ascontiguousarray(np.rot90(astronaut, turns))
        (face,) = any_angle.detect(turned)
        box = unturn_points(face.landmark_box().reshape(2, 2), turns, astronaut.shape)
        np.testing.assert_allclose(np.concatenate([box.min(0), box.max(0)]), upright.landmark_box(), atol=1.0)
        roll = np.degrees(face.eye_angle() - upright.eye_angle() + turns * np.pi / 2)
        assert abs((roll + 180) % 360 - 180) < 2, (turns, roll)
    plain = detectors["auto"].detect(np.ascontiguousarray(np.rot90(astronaut, 2)))
    assert all(abs(np.degrees(f.eye_angle())) < 45 for f in plain)  # wrong by over 120 degrees


@pytest.mark.parametrize("model", ["short", "full", "auto"])
def test_no_face_in_a_uniform_image(detectors, model):
    assert detectors[model].detect(np.full((240, 320, 3), 128, np.uint8)) == []
    assert detectors[model](np.zeros((50, 80, 3), np.uint8)) == []


def test_model_by_path_and_bad_names(astronaut):
    detector = BlazeFaceDetector(os.path.join(ASSETS_DIR, "face_detection_full_range_sparse.tflite"), min_score=0.6)
    faces = detector.detect(astronaut)
    assert len(faces) == 1 and faces[0].model == "full"
    with pytest.raises(ValueError):
        BlazeFaceDetector("medium")


def test_module_needs_no_tensorflow():
    code = ("import sys, numpy as np; from landmark_kd.face_detector import BlazeFaceDetector; "
            "BlazeFaceDetector('auto').detect(np.zeros((64, 64, 3), np.uint8)); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'scipy', 'skimage')); "
            "assert not bad, bad")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def _found(boxes, truth):
    for box in boxes:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3] and box_iou(truth, box[None])[0] >= 0.3:
            return True
    return False


def test_ytf68_faces_are_found_and_landmark_boxes_fit(detectors):
    from landmark_kd.data.pts300w import read_pts

    pts_files = sorted(glob.glob(os.path.join(realfaces("ytf68/val"), "*.pts")))[::10]
    found, raw_iou, fitted_iou = 0, [], []
    for pts in pts_files:
        points = read_pts(pts)
        truth = np.concatenate([points.min(0), points.max(0)])
        image = cv2.cvtColor(cv2.imread(pts[:-4] + ".jpg"), cv2.COLOR_BGR2RGB)
        faces = detectors["auto"].detect(image)
        found += _found([f.landmark_box() for f in faces], truth)
        if faces:
            raw_iou.append(box_iou(truth, faces[0].box[None])[0])
            fitted_iou.append(box_iou(truth, faces[0].landmark_box()[None])[0])
    assert found >= 0.95 * len(pts_files)
    assert np.mean(fitted_iou) > np.mean(raw_iou) and np.mean(fitted_iou) > 0.8


def test_dlib_small_faces_with_full_range(detectors):
    folder = realfaces("dlib_faces")
    with open(os.path.join(folder, "faces.json"), encoding="utf-8") as handle:
        samples = json.load(handle)["samples"]
    found, cache = 0, {}
    for sample in samples:
        if sample["image"] not in cache:
            image = cv2.cvtColor(cv2.imread(os.path.join(folder, sample["image"])), cv2.COLOR_BGR2RGB)
            cache[sample["image"]] = detectors["full"](image)
        points = np.asarray(sample["landmarks"], np.float32)
        found += _found([box for box, _ in cache[sample["image"]]], np.concatenate([points.min(0), points.max(0)]))
    assert found >= 0.85 * len(samples)  # measured: 42 of 43


def test_each_face_of_a_group_photo_is_found_once(detectors):
    """dlib's 2008_007676.jpg: 7 labelled faces; short range also put one loose box around a small face that full
    range found, and auto mode used to keep both (8 faces)."""
    folder = realfaces("dlib_faces")
    with open(os.path.join(folder, "faces.json"), encoding="utf-8") as handle:
        samples = [s for s in json.load(handle)["samples"] if s["image"] == "2008_007676.jpg"]
    image = cv2.cvtColor(cv2.imread(os.path.join(folder, "2008_007676.jpg")), cv2.COLOR_BGR2RGB)
    boxes = [box for box, _ in detectors["auto"](image)]
    assert len(samples) == 7 and len(boxes) == 7
    for sample in samples:
        points = np.asarray(sample["landmarks"], np.float32)
        assert _found(boxes, np.concatenate([points.min(0), points.max(0)]))


def test_a_face_that_fills_the_picture_is_found_on_a_second_look(detectors):
    """Face crops (ytf68/val faces cut to a square of their 68-point box): BlazeFace's first look misses some of
    them; the second, with a border around the image, finds them, and places them in the crop's pixels."""
    from benchmarks.face_detection import close_ups

    first_look = BlazeFaceDetector("auto", close_ups=False)
    missed, found_again = 0, 0
    for load, (truth,) in close_ups(1.0, every=8, root=os.path.dirname(realfaces("ytf68"))):
        image = load()
        if first_look.detect(image):
            continue
        missed += 1
        faces = detectors["auto"].detect(image)
        found_again += _found([f.landmark_box() for f in faces], truth)
        for face in faces:  # the keypoints are moved back out of the border with the box
            assert np.all((face.keypoints >= face.box[:2] - 2) & (face.keypoints <= face.box[2:] + 2))
    assert missed >= 3 and found_again >= missed - 1, (missed, found_again)
