import json
import os
import re

import cv2
import numpy as np
import pytest

from landmark_kd.data import DatasetError, detect_format, load_dataset
from landmark_kd.data.pts300w import read_pts, write_pts


def _image(path, size=64):
    cv2.imwrite(path, np.full((size, size, 3), 128, np.uint8))


def _face_points(n=68, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(10, 50, (n, 2)).astype(np.float32)


def test_pts_round_trip_and_one_based(tmp_path):
    pts = _face_points()
    path = str(tmp_path / "a.pts")
    write_pts(path, pts)
    text = open(path).read()
    assert text.startswith("version: 1\nn_points: 68\n{")
    assert float(text.splitlines()[3].split()[0]) == pytest.approx(pts[0, 0] + 1, abs=1e-3)
    assert np.allclose(read_pts(path), pts, atol=1e-3)


@pytest.mark.parametrize("content,message", [
    ("version: 1\nn_points: 68\n{\n1 2\n3 4\n", "truncated"),
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "header says 3 points, file has 2"),
    ("version: 1\nn_points: 1\n{\n1 2\n3 4\n}\n", "header says 1 points, file has 2"),
    ("version: 1\nn_points: 2\n{\n1 2\nx 4\n}\n", ":5: not a number"),
    ("hello\n", "missing 'n_points'"),
])
def test_bad_pts_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.pts"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_pts(str(path))


def test_a_pts_file_with_a_byte_order_mark_and_no_version_line(tmp_path):
    """Notepad's "UTF-8 with BOM" put the mark before 'n_points', which then read as a missing header."""
    path = tmp_path / "a.pts"
    path.write_bytes(b"\xef\xbb\xbfn_points: 2\r\n{\r\n1 2\r\n3 4\r\n}\r\n")
    assert read_pts(str(path)).tolist() == [[0, 1], [2, 3]]


def test_upper_case_pts_and_image_extensions_are_paired(tmp_path):
    """Files copied from Windows or a camera: FACE.PTS beside FACE.JPG is one labelled face."""
    from landmark_kd.data.pts300w import find_pairs

    cv2.imwrite(str(tmp_path / "face.jpg"), np.full((64, 64, 3), 128, np.uint8))
    os.rename(tmp_path / "face.jpg", tmp_path / "FACE.JPG")
    write_pts(str(tmp_path / "FACE.PTS"), _face_points())
    assert find_pairs(str(tmp_path)) == [(str(tmp_path / "FACE.JPG"), str(tmp_path / "FACE.PTS"))]
    samples, report = load_dataset(str(tmp_path), num_points=68)
    assert len(samples) == 1 and not report.skipped and not report.notes
    assert np.allclose(samples[0].landmarks, _face_points(), atol=1e-3)


def test_a_folder_without_pts_files_points_at_the_list_file_it_holds(tmp_path):
    """dlib_faces/ holds its faces in faces.json: naming the folder used to say only that no .pts was found."""
    from landmark_kd.data.pts300w import load_300w

    (tmp_path / "faces.json").write_text("[]")
    _image(str(tmp_path / "photo.png"))
    with pytest.raises(DatasetError, match=r"no \.pts files found \(it holds faces\.json: pass that file as the dataset\)"):
        load_300w(str(tmp_path))
    os.remove(tmp_path / "faces.json")
    with pytest.raises(DatasetError, match=r"no \.pts files found$"):
        load_300w(str(tmp_path))


def test_300w_folder_skips_and_counts_bad_samples(tmp_path):
    for i in range(3):
        _image(str(tmp_path / f"ok{i}.png"))
        write_pts(str(tmp_path / f"ok{i}.pts"), _face_points(seed=i))
    write_pts(str(tmp_path / "missing.pts"), _face_points())  # no image
    (tmp_path / "garbage.png").write_bytes(b"not an image at all")
    write_pts(str(tmp_path / "garbage.pts"), _face_points())
    _image(str(tmp_path / "short.png"))
    write_pts(str(tmp_path / "short.pts"), _face_points(60))  # wrong point count
    _image(str(tmp_path / "nan.png"))
    pts = _face_points()
    pts[5, 1] = np.nan
    write_pts(str(tmp_path / "nan.pts"), pts)
    _image(str(tmp_path / "trunc.png"))
    (tmp_path / "trunc.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")
    samples, report = load_dataset(str(tmp_path), num_points=68)
    assert len(samples) == 3 and report.loaded == 3
    reasons = dict(report.skipped)
    assert len(reasons) == 5
    assert reasons[str(tmp_path / "missing.pts")] == "no image named missing.jpg/.png/... beside it"
    assert "not a PNG/JPEG" in reasons[str(tmp_path / "garbage.pts")]
    assert "expected 68 points, got 60" in reasons[str(tmp_path / "short.pts")]
    assert "non-finite coordinate at point 5" in reasons[str(tmp_path / "nan.pts")]
    assert "truncated" in reasons[str(tmp_path / "trunc.pts")]
    with pytest.raises(DatasetError, match=r"\.pts: "):  # strict mode: the first bad file, named
        load_dataset(str(tmp_path), num_points=68, strict=True)
    assert report.notes == []  # every picture here has its .pts


def test_300w_folder_names_the_pictures_it_holds_without_a_pts(tmp_path):
    """An image with no label is not a face to train on, but a folder loading fewer faces than it has pictures
    should say so; the sheets this project writes beside faces are not counted."""
    for name in ("a", "b"):
        _image(str(tmp_path / f"{name}.png"))
    write_pts(str(tmp_path / "a.pts"), _face_points())
    (tmp_path / "sub").mkdir()
    _image(str(tmp_path / "sub" / "c.jpg"))
    _image(str(tmp_path / "contact_sheet.png"))
    samples, report = load_dataset(str(tmp_path), num_points=68)
    assert len(samples) == 1 and not report.skipped
    assert report.notes == [f"2 image(s) with no .pts of their name are not used (first: {tmp_path / 'b.png'})"]
    assert "note: 2 image(s) with no .pts" in report.summary()


def _wflw_line(pts, bbox, image):
    coords = " ".join(f"{v:.2f}" for v in pts.reshape(-1))
    return f"{coords} {' '.join(str(v) for v in bbox)} 0 1 0 0 1 0 {image}\n"


def test_wflw_reader(tmp_path):
    images = tmp_path / "WFLW_images" / "0--Parade"
    images.mkdir(parents=True)
    _image(str(images / "a.jpg"))
    pts = _face_points(98)
    lines = _wflw_line(pts, [5, 5, 60, 60], "0--Parade/a.jpg")
    lines += "1 2 3 0--Parade/a.jpg\n"  # malformed
    lines += _wflw_line(pts, [5, 5, 5, 60], "0--Parade/a.jpg")  # zero-area bbox
    ann = tmp_path / "list_98pt_rect_attr_train.txt"
    ann.write_text(lines)
    assert detect_format(str(ann)) == "wflw"
    samples, report = load_dataset(str(ann), num_points=98)
    assert len(samples) == 1
    assert np.allclose(samples[0].landmarks, pts, atol=0.01) and samples[0].bbox.tolist() == [5, 5, 60, 60]
    reasons = dict(report.skipped)
    assert "expected 207 fields, got 4" in reasons[f"{ann}:2"]
    assert "zero-area face box" in reasons[f"{ann}:3"]


def test_wflw_image_paths_with_spaces(tmp_path):
    """A list of your own in WFLW's layout naming "my photos/a b.png" was skipped as "expected 207 fields, got
    209"; a line with a field too many whose tail is no file is still skipped for its field count."""
    root = tmp_path / "WFLW_images"
    (root / "my photos").mkdir(parents=True)
    _image(str(root / "my photos" / "a b.png"))
    pts = _face_points(98)
    lines = [_wflw_line(pts, [5, 5, 60, 60], "my photos/a b.png"), _wflw_line(pts, [5, 5, 60, 60], "x y.png")]
    (tmp_path / "list.txt").write_text("".join(lines))
    samples, report = load_dataset(str(tmp_path / "list.txt"), num_points=98)
    assert [s.image_path for s in samples] == [str(root / "my photos" / "a b.png")]
    assert report.skipped == [(f"{tmp_path / 'list.txt'}:2", "expected 207 fields, got 208")]


def test_custom_json_and_csv(tmp_path):
    _image(str(tmp_path / "a.png"))
    pts = _face_points(5)
    data = {"samples": [{"image": "a.png", "landmarks": pts.tolist(), "bbox": [0, 0, 60, 60]},
                        {"image": "a.png"}]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    samples, report = load_dataset(str(tmp_path / "ann.json"), num_points=5)
    assert len(samples) == 1 and "missing field 'landmarks'" in report.skipped[0][1]
    header = "image,bbox_x0,bbox_y0,bbox_x1,bbox_y1," + ",".join(f"x{i},y{i}" for i in range(5))
    row = "a.png,,,,," + ",".join(f"{v:.1f}" for v in pts.reshape(-1))
    bad = "a.png,,,,," + ",".join(["1"] * 9) + ",oops"
    (tmp_path / "ann.csv").write_text("\n".join([header, row, bad]) + "\n")
    samples, report = load_dataset(str(tmp_path / "ann.csv"), num_points=5)
    assert len(samples) == 1 and samples[0].bbox is None
    assert np.allclose(samples[0].landmarks, pts, atol=0.05)
    assert report.skipped[0][0].endswith("ann.csv:3")
    (tmp_path / "bom.csv").write_text("\ufeff" + "\n".join([header, row]) + "\n", encoding="utf-8")  # Excel's CSV
    samples, report = load_dataset(str(tmp_path / "bom.csv"), num_points=5)
    assert len(samples) == 1 and not report.skipped
    (tmp_path / "bom.json").write_text("\ufeff" + json.dumps(data), encoding="utf-8")
    assert len(load_dataset(str(tmp_path / "bom.json"), num_points=5)[0]) == 1
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DatasetError, match="broken.json:1: invalid JSON"):
        load_dataset(str(tmp_path / "broken.json"))
    (tmp_path / "img").mkdir()
    _image(str(tmp_path / "img" / "b.png"))
    windows = {"samples": [{"image": "img\\b.png", "landmarks": pts.tolist()}]}  # written on Windows
    (tmp_path / "win.json").write_text(json.dumps(windows))
    samples, report = load_dataset(str(tmp_path / "win.json"), num_points=5)
    assert len(samples) == 1 and samples[0].image_path == str(tmp_path / "img" / "b.png"), report.skipped


def test_custom_boxes_are_read_from_json_and_from_csv_columns_by_name(tmp_path):
    """Each face's box reaches its sample, in x0, y0, x1, y1 order however the CSV orders its bbox columns; a row
    with empty bbox cells has none."""
    _image(str(tmp_path / "a.png"))
    pts = _face_points(3)
    (tmp_path / "ann.json").write_text(json.dumps([{"image": "a.png", "landmarks": pts.tolist(),
                                                    "bbox": [2, 3, 55, 58]}]))
    samples, _ = load_dataset(str(tmp_path / "ann.json"), num_points=3)
    assert samples[0].bbox.tolist() == [2, 3, 55, 58]
    header = "image,x0,y0,bbox_y1,bbox_x0,x1,y1,bbox_x1,bbox_y0,x2,y2"
    cells = lambda box: [f"{v:.2f}" for v in pts[0]] + box[:2] + [f"{v:.2f}" for v in pts[1]] + box[2:]  # noqa: E731
    rows = ["a.png," + ",".join(cells(["58", "2", "55", "3"]) + [f"{v:.2f}" for v in pts[2]]),
            "a.png," + ",".join(cells(["", "", "", ""]) + [f"{v:.2f}" for v in pts[2]])]
    (tmp_path / "ann.csv").write_text("\n".join([header] + rows) + "\n")
    samples, report = load_dataset(str(tmp_path / "ann.csv"), num_points=3)
    assert not report.skipped and len(samples) == 2
    assert samples[0].bbox.tolist() == [2, 3, 55, 58] and samples[1].bbox is None
    assert np.allclose(samples[0].landmarks, pts, atol=0.01)


def test_cofw_colour_images_are_stored_with_their_colours(tmp_path):
    """COFW_*_color.mat holds RGB images; the extracted PNG, read back by OpenCV as BGR, is the same picture."""
    scipy_io = pytest.importorskip("scipy.io")
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 10, 60
    images = np.empty((1, 1), dtype=object)
    images[0, 0] = rgb
    pts = np.random.default_rng(0).uniform(10, 30, (1, 29, 2))
    phis = np.concatenate([pts[..., 0], pts[..., 1], np.zeros((1, 29))], axis=1)
    path = str(tmp_path / "COFW_test_color.mat")
    scipy_io.savemat(path, {"IsT": images, "phisT": phis, "bboxesT": np.array([[5.0, 5, 30, 30]])})
    samples, _ = load_dataset(path, num_points=29)
    np.testing.assert_array_equal(cv2.imread(samples[0].image_path)[..., ::-1], rgb)


def test_cofw_mat_reader(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(0)
    images = np.empty((2, 1), dtype=object)
    for i in range(2):
        images[i, 0] = rng.integers(0, 255, (80, 80), dtype=np.uint8)
    pts = rng.uniform(10, 70, (2, 29, 2))
    phis = np.concatenate([pts[..., 0], pts[..., 1], np.zeros((2, 29))], axis=1)
    boxes = np.array([[5, 5, 60, 60], [5, 5, 60, 60]], np.float64)
    path = str(tmp_path / "COFW_train.mat")
    scipy_io.savemat(path, {"IsTr": images, "phisTr": phis, "bboxesTr": boxes})
    samples, report = load_dataset(path, num_points=29)
    assert len(samples) == 2 and report.skipped == []
    assert np.allclose(samples[1].landmarks, pts[1] - 1, atol=1e-4)
    assert samples[0].bbox.tolist() == [4, 4, 64, 64]
    assert cv2.imread(samples[0].image_path) is not None
    # the .mat replaced by the same faces in the other order: the extracted images follow (they were kept stale,
    # pairing each face's landmarks with the other face's picture)
    scipy_io.savemat(path, {"IsTr": images[::-1], "phisTr": phis[::-1], "bboxesTr": boxes})
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))  # a clock's coarse tick
    again, _ = load_dataset(path, num_points=29)
    np.testing.assert_array_equal(cv2.imread(again[0].image_path, cv2.IMREAD_GRAYSCALE), images[1, 0])
    np.testing.assert_allclose(again[0].landmarks, pts[1] - 1, atol=1e-4)


def test_missing_paths_and_point_count_mismatch(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(tmp_path / "nope"))
    _image(str(tmp_path / "a.png"))
    write_pts(str(tmp_path / "a.pts"), _face_points(68))
    with pytest.raises(DatasetError, match=r"has 68 points per face, the scheme \(or model\) expects 98"):
        load_dataset(str(tmp_path), num_points=98)  # as a 98-point model on 68-point data: the layout is named


# --- fuzzing: corrupted annotation files and image bytes -------------------------------------------------

def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    """One random corruption of the kinds files suffer: flipped bytes, truncation, junk inserted, a chunk
    dropped or repeated, a number replaced by text, an empty file."""
    data = bytearray(data)
    kind = rng.integers(7)
    n = len(data)
    at = int(rng.integers(0, max(n, 1)))
    if kind == 0:
        for i in rng.integers(0, n, max(1, n // 200)):
            data[i] = int(rng.integers(256))
    elif kind == 1:
        data = data[:at]
    elif kind == 2:
        data[at:at] = rng.integers(0, 256, int(rng.integers(1, 64))).astype(np.uint8).tobytes()
    elif kind == 3:
        del data[at:at + int(rng.integers(1, 256))]
    elif kind == 4:
        data[at:at] = data[max(0, at - 300):at]
    elif kind == 5:
        digits = [i for i, b in enumerate(data) if chr(b).isdigit()]
        for i in rng.choice(digits, min(len(digits), 3), replace=False) if digits else []:
            data[i:i + 1] = rng.choice([b"nan", b"inf", b"x", b"-", b"1e999", b"\xff"])
    else:
        data = bytearray()
    return bytes(data)


def _fuzz_datasets(root):
    """A small valid dataset in every annotation format; returns (annotation file, format, points)."""
    import scipy.io

    pts68, pts98, pts5 = _face_points(68), _face_points(98), _face_points(5)
    folder = root / "300w"
    folder.mkdir()
    for i in range(3):
        _image(str(folder / f"f{i}.png"))
        write_pts(str(folder / f"f{i}.pts"), pts68)
    images = root / "WFLW_images"
    images.mkdir()
    _image(str(images / "a.jpg"))
    (root / "list.txt").write_text(_wflw_line(pts98, [5, 5, 60, 60], "a.jpg") * 3)
    _image(str(root / "a.png"))
    entry = {"image": "a.png", "landmarks": pts5.tolist(), "bbox": [0, 0, 60, 60]}
    (root / "ann.json").write_text(json.dumps({"samples": [entry] * 3}))
    header = "image,bbox_x0,bbox_y0,bbox_x1,bbox_y1," + ",".join(f"x{i},y{i}" for i in range(5))
    row = "a.png,0,0,60,60," + ",".join(f"{v:.1f}" for v in pts5.reshape(-1))
    (root / "ann.csv").write_text("\n".join([header, row, row]) + "\n")
    faces = np.empty((2, 1), dtype=object)
    for i in range(2):
        faces[i, 0] = np.full((64, 64), 100 + i, np.uint8)
    pts29 = _face_points(29)
    phis = np.concatenate([np.tile(pts29[:, 0], (2, 1)), np.tile(pts29[:, 1], (2, 1)), np.zeros((2, 29))], axis=1)
    scipy.io.savemat(str(root / "cofw.mat"), {"IsTr": faces, "phisTr": phis, "bboxesTr": np.tile([5.0, 5, 50, 50], (2, 1))})
    return [(folder / "f1.pts", str(folder), "300w", 68), (root / "list.txt", str(root / "list.txt"), "wflw", 98),
            (root / "ann.json", str(root / "ann.json"), "custom", 5), (root / "ann.csv", str(root / "ann.csv"), "custom", 5),
            (root / "cofw.mat", str(root / "cofw.mat"), "cofw", 29)]


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def test_fuzzed_annotation_files_give_a_clear_error_or_skipped_samples(tmp_path):
    """Every reader, 40 random corruptions each: a DatasetError naming the file, or samples that all pass the
    checks with the rest skipped and counted. Never a hang, never another exception."""
    import signal
    import shutil

    from landmark_kd.data.records import check_sample

    rng = np.random.default_rng(1234)
    signal.signal(signal.SIGALRM, _alarm)
    for corrupted_file, dataset, fmt, n in _fuzz_datasets(tmp_path):
        pristine = corrupted_file.read_bytes()
        outcomes = {"error": 0, "skipped": 0, "clean": 0}
        for trial in range(40):
            corrupted_file.write_bytes(_corrupt(pristine, rng))
            shutil.rmtree(tmp_path / "cofw_images", ignore_errors=True)  # the COFW image cache is rebuilt each time
            signal.alarm(10)
            try:
                samples, report = load_dataset(dataset, fmt, num_points=n)
            except DatasetError as err:
                assert str(corrupted_file.name) in str(err) or dataset in str(err), (fmt, trial, str(err))
                outcomes["error"] += 1
                continue
            except _Hang:
                pytest.fail(f"{fmt} reader hung on corruption {trial}")
            except Exception as err:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{fmt} reader raised {type(err).__name__} on corruption {trial}: {err}")
            finally:
                signal.alarm(0)
            assert samples and report.loaded == len(samples)
            assert all(check_sample(s, n) is None for s in samples)
            assert all(source and reason for source, reason in report.skipped)
            outcomes["skipped" if report.skipped else "clean"] += 1
        corrupted_file.write_bytes(pristine)
        assert outcomes["error"] + outcomes["skipped"] >= 10, (fmt, outcomes)  # the corruptions were noticed


def test_fuzzed_image_bytes_are_skipped_or_dropped_never_fatal(tmp_path):
    """Corrupted PNG/JPEG bytes: load-time checks skip what they can see (bad signature, truncation, empty) and
    name the image; what still fails to decode is dropped by the input pipeline, and the rest come through."""
    from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
    from landmark_kd.schemes import get_scheme

    rng = np.random.default_rng(99)
    good = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    skipped_reasons = set()
    for i in range(24):
        ext = ".png" if i % 2 else ".jpg"
        path = tmp_path / f"img{i}{ext}"
        cv2.imwrite(str(path), good)
        path.write_bytes(_corrupt(path.read_bytes(), rng))
        write_pts(str(tmp_path / f"img{i}.pts"), _face_points(68, i))
    samples, report = load_dataset(str(tmp_path), num_points=68)
    assert report.loaded == len(samples) and len(samples) + len(report.skipped) == 24
    for source, reason in report.skipped:
        assert "img" in reason  # the message names the image
        skipped_reasons.add(reason.split(":")[0])
    assert skipped_reasons & {"truncated PNG (no IEND chunk)", "truncated JPEG (no end-of-image marker)",
                              "image is empty", "not a PNG/JPEG/BMP/GIF/TIFF/WebP image"}
    pipeline = LandmarkPipeline(get_scheme("68"), PipelineConfig(image_size=64))
    seen = []
    for images, targets in pipeline.dataset(samples, 4, training=False):
        assert np.all(np.isfinite(images.numpy())) and images.shape[1:] == (64, 64, 3)
        seen.extend(targets["index"].numpy().tolist())
    assert len(seen) <= len(samples) and len(set(seen)) == len(seen)
    assert len(seen) > 0


def test_a_huge_image_is_skipped_before_decoding_and_a_pipe_never_blocks(tmp_path):
    """A 20000 x 20000 PNG of a few hundred bytes would take gigabytes to decode; a .pts that is a named pipe
    would block the reader forever. Both are skipped and counted, named."""
    import os
    import struct
    import zlib

    from landmark_kd.data.records import image_dimensions

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    write_pts(str(tmp_path / "huge.pts"), _face_points())
    _image(str(tmp_path / "good.png"))
    write_pts(str(tmp_path / "good.pts"), _face_points())
    _image(str(tmp_path / "piped.png"))
    os.mkfifo(tmp_path / "piped.pts")
    samples, report = load_dataset(str(tmp_path), num_points=68)
    assert [os.path.basename(s.image_path) for s in samples] == ["good.png"]
    reasons = dict(report.skipped)
    assert "20000x20000 pixels" in reasons[str(tmp_path / "huge.pts")]
    assert "not a regular file" in reasons[str(tmp_path / "piped.pts")]
    for ext, size in ((".jpg", (40, 30)), (".png", (40, 30)), (".bmp", (40, 30))):
        cv2.imwrite(str(tmp_path / f"small{ext}"), np.zeros((30, 40, 3), np.uint8))
        with open(tmp_path / f"small{ext}", "rb") as handle:
            assert image_dimensions(handle.read(32), handle) == size


def test_tiff_and_webp_headers_give_their_size_and_pass_the_checks(tmp_path):
    from landmark_kd.data.records import check_image_file, image_dimensions

    for ext in (".tif", ".webp"):
        path = str(tmp_path / f"small{ext}")
        cv2.imwrite(path, np.zeros((30, 40, 3), np.uint8))
        with open(path, "rb") as handle:
            assert image_dimensions(handle.read(32), handle) == (40, 30)
        assert check_image_file(path) is None


def test_skipped_pts_lines_keep_their_line_numbers(tmp_path):
    _image(str(tmp_path / "good.png"))
    write_pts(str(tmp_path / "good.pts"), _face_points())
    _image(str(tmp_path / "bad.png"))
    (tmp_path / "bad.pts").write_text("version: 1\nn_points: 2\n{\n1 2\nx 4\n}\n")
    _, report = load_dataset(str(tmp_path), num_points=68)
    assert report.skipped == [(str(tmp_path / "bad.pts") + ":5", "not a number in 'x 4'")]


def test_68_point_data_serves_the_51_point_scheme(tmp_path):
    """`--scheme 51` on 300-W data drops the jaw (convert_68_to_51); the crop box stays the 68 points' box."""
    pts = _face_points(68)
    _image(str(tmp_path / "a.png"))
    write_pts(str(tmp_path / "a.pts"), pts)
    _image(str(tmp_path / "b.png"))
    write_pts(str(tmp_path / "b.pts"), _face_points(60))
    samples, report = load_dataset(str(tmp_path), num_points=51)
    assert len(samples) == 1 and np.allclose(samples[0].landmarks, pts[17:], atol=1e-3)
    lo, hi = pts.min(0), pts.max(0)
    assert np.allclose(samples[0].bbox, [lo[0], lo[1], hi[0], hi[1]], atol=1e-3)
    assert "expected 51 or 68 points" in dict(report.skipped)[str(tmp_path / "b.pts")]
    assert report.notes == []
    write_pts(str(tmp_path / "c.pts"), pts[17:])  # a native 51-point file: .pts holds no face box
    _image(str(tmp_path / "c.png"))
    samples, report = load_dataset(str(tmp_path), num_points=51)
    assert len(samples) == 2 and "1 face(s) have 51 points and no face box" in report.summary()


def test_read_bgr_reads_gifs_that_imread_cannot(tmp_path):
    """Training decodes GIFs (tf.io.decode_image); predict, pseudolabel and unlabelled distillation read through
    read_bgr, whose imread has no GIF decoder in opencv-python: the first frame comes from the video reader."""
    import cv2
    from PIL import Image

    from landmark_kd.data.records import read_bgr

    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[5:20, 10:30] = (255, 0, 0)  # two colours: a GIF palette holds them exactly
    Image.fromarray(rgb).save(tmp_path / "two.gif")
    image = read_bgr(str(tmp_path / "two.gif"))
    assert image is not None and image.shape == (30, 40, 3)
    assert np.abs(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(int) - rgb).max() <= 2
    (tmp_path / "bad.gif").write_bytes(b"GIF89a not really")
    assert read_bgr(str(tmp_path / "bad.gif")) is None


def test_decoder_warnings_name_the_file(tmp_path, capfd):
    """libjpeg writes "Premature end of JPEG file" to descriptor 2 without saying which file; read_bgr passes
    the line on with the path in front, and still returns what could be decoded."""
    import cv2

    from landmark_kd.data.records import read_bgr

    image = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "whole.jpg").write_bytes(data)
    assert read_bgr(str(tmp_path / "whole.jpg")).shape == (128, 128, 3)
    assert capfd.readouterr().err == ""
    assert read_bgr(str(tmp_path / "cut.jpg")).shape == (128, 128, 3)
    lines = capfd.readouterr().err.splitlines()
    assert lines and all(line.startswith(f"warning: {tmp_path / 'cut.jpg'}: ") for line in lines), lines
    assert any("JPEG" in line for line in lines)


def test_csv_columns_are_read_by_name(tmp_path):
    """A CSV with every x before every y used to be read pairwise in column order, scrambling each face with no
    warning; columns are now matched by name, and a column that is no coordinate is named in the error."""
    _image(str(tmp_path / "a.png"))
    pts = _face_points(4)
    x_then_y = "image," + ",".join(f"x{i}" for i in range(4)) + "," + ",".join(f"y_{i}" for i in range(4))
    row = "a.png," + ",".join(f"{v:.2f}" for v in pts[:, 0]) + "," + ",".join(f"{v:.2f}" for v in pts[:, 1])
    (tmp_path / "xy.csv").write_text(f"{x_then_y}\n{row}\n")
    samples, _ = load_dataset(str(tmp_path / "xy.csv"), num_points=4)
    assert np.allclose(samples[0].landmarks, pts, atol=0.01)
    cases = {"image,subject,x0,y0\n": "column 2 ('subject') is not a coordinate",
             "image,x0,y0,x1\n": "point 1 has no y1 column",
             "image,x0,y0,x2,y2\n": "no columns for point(s) [1]",
             "image,bbox_x0,bbox_y0,x0,y0\n": "bbox columns ['bbox_x0', 'bbox_y0'] given without the rest",
             "image;x0;y0\n": "separated by ';'"}
    for i, (header, message) in enumerate(cases.items()):
        (tmp_path / f"bad{i}.csv").write_text(header + "a.png,1,2,3,4\n")
        with pytest.raises(DatasetError, match=r"bad%d\.csv:1: .*%s" % (i, re.escape(message))):
            load_dataset(str(tmp_path / f"bad{i}.csv"))


def test_points_outside_the_image_and_xywh_boxes_are_skipped_with_a_reason(tmp_path):
    """Coordinates of another image or scale used to train on crops of nothing; a face cut by the border keeps
    most points inside and stays."""
    _image(str(tmp_path / "a.png"), size=64)
    pts = _face_points(5)
    border = pts.copy()
    border[0] = (-5, -7)
    entries = [{"image": "a.png", "landmarks": pts.tolist()},
               {"image": "a.png", "landmarks": border.tolist()},
               {"image": "a.png", "landmarks": (pts - 1000).tolist()},
               {"image": "a.png", "landmarks": (pts * 50).tolist()},
               {"image": "a.png", "landmarks": pts.tolist(), "bbox": [30, 20, 15, 15]}]
    (tmp_path / "ann.json").write_text(json.dumps(entries))
    samples, report = load_dataset(str(tmp_path / "ann.json"), num_points=5)
    assert len(samples) == 2
    reasons = dict(report.skipped)
    assert "only 0 of 5 points lie inside the 64x64 image" in reasons[f"{tmp_path / 'ann.json'}[2]"]
    assert "inside the 64x64 image" in reasons[f"{tmp_path / 'ann.json'}[3]"]
    assert "not [x, y, width, height]" in reasons[f"{tmp_path / 'ann.json'}[4]"]


def test_one_point_or_box_corner_far_outside_the_image_is_skipped(tmp_path):
    """A typo in one coordinate (15000 for 150.00) kept the face, since most points were inside: its crop box
    stretched to the typo, and evaluate reported an NME of 1.5e9. A face cut by the border stays."""
    _image(str(tmp_path / "a.png"), size=64)
    pts = _face_points(5)
    typo, cut = pts.copy(), pts.copy()
    typo[3] = (15000, 30)
    cut[0] = (-40, 90)  # past the border by less than the image's size
    entries = [{"image": "a.png", "landmarks": typo.tolist()},
               {"image": "a.png", "landmarks": cut.tolist()},
               {"image": "a.png", "landmarks": pts.tolist(), "bbox": [5, 5, 50, 9000]},
               {"image": "a.png", "landmarks": pts.tolist(), "bbox": [-20, -10, 100, 120]}]
    (tmp_path / "ann.json").write_text(json.dumps(entries))
    samples, report = load_dataset(str(tmp_path / "ann.json"), num_points=5)
    assert [s.source for s in samples] == [f"{tmp_path / 'ann.json'}[{i}]" for i in (1, 3)]
    reasons = dict(report.skipped)
    assert reasons[f"{tmp_path / 'ann.json'}[0]"].startswith("point 3 at (15000, 30) lies far outside the 64x64 image")
    assert reasons[f"{tmp_path / 'ann.json'}[2]"].startswith("bbox corner 1 at (50, 9000) lies far outside")


def test_a_jpeg_whose_header_breaks_off_is_skipped_at_load(tmp_path):
    """Zeroed header bytes keep the start and end markers, so the file looked whole, then libjpeg printed
    "missing SOS marker" on every read during training and the face was dropped without a record."""
    from landmark_kd.data.records import check_image_file

    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = bytearray(cv2.imencode(".jpg", image)[1].tobytes())
    (tmp_path / "good.jpg").write_bytes(bytes(data))
    data[300:400] = bytes(100)  # inside the Huffman tables, before the scan
    (tmp_path / "bad.jpg").write_bytes(bytes(data))
    assert check_image_file(str(tmp_path / "good.jpg")) is None
    assert check_image_file(str(tmp_path / "bad.jpg")).startswith("damaged JPEG (its header does not lead to")


def test_a_missing_point_placeholder_skips_the_face(tmp_path):
    """Labelling tools write (-1, -1) or (0, 0) for a point they did not place; such a face was trained on, with
    a heatmap pulled to the image corner and, without a bbox, a crop box stretched over it. A point merely near
    the corner, or one coordinate 0, is a real label and stays."""
    _image(str(tmp_path / "a.png"), size=64)
    pts = _face_points(5)
    minus, zero, two, near = pts.copy(), pts.copy(), pts.copy(), pts.copy()
    minus[2] = (-1, -1)
    zero[4] = (0, 0)
    two[[1, 3]] = (-1, -1)
    near[0] = (0.0, 0.5)
    entries = [{"image": "a.png", "landmarks": p.tolist()} for p in (minus, zero, two, near)]
    (tmp_path / "ann.json").write_text(json.dumps(entries))
    samples, report = load_dataset(str(tmp_path / "ann.json"), num_points=5)
    assert [s.source for s in samples] == [f"{tmp_path / 'ann.json'}[3]"]
    reasons = dict(report.skipped)
    assert reasons[f"{tmp_path / 'ann.json'}[0]"].startswith("point 2 at (-1, -1): a placeholder for a point")
    assert reasons[f"{tmp_path / 'ann.json'}[1]"].startswith("point 4 at (0, 0): a placeholder")
    assert reasons[f"{tmp_path / 'ann.json'}[2]"].startswith("points 1, 3 at (-1, -1)")


def test_a_pts_file_with_a_missing_point_placeholder_is_skipped(tmp_path):
    """In a 1-based .pts file the placeholders are written `-1 -1` or `0 0`: the reader checks the values as
    written, so the reason shows the file's own numbers."""
    for i, raw in enumerate(("-1 -1", "0 0", "1 1.5")):
        _image(str(tmp_path / f"f{i}.png"), size=64)
        lines = [f"{x + 1:.3f} {y + 1:.3f}" for x, y in _face_points(68) * 0.5 + 8]
        lines[30] = raw
        (tmp_path / f"f{i}.pts").write_text("version: 1\nn_points: 68\n{\n" + "\n".join(lines) + "\n}\n")
    samples, report = load_dataset(str(tmp_path), num_points=68)
    assert [os.path.basename(s.image_path) for s in samples] == ["f2.png"]
    reasons = dict(report.skipped)
    assert reasons[str(tmp_path / "f0.pts")].startswith("point 30 at (-1, -1): a placeholder")
    assert reasons[str(tmp_path / "f1.pts")].startswith("point 30 at (0, 0): a placeholder")


def test_a_pathlib_path_loads_as_its_string(tmp_path):
    """From Python a dataset is often a pathlib.Path; the custom reader and the format guess tested its suffix
    with str methods and died in an AttributeError."""
    from landmark_kd.data.custom import load_custom

    _image(str(tmp_path / "a.png"))
    annotations = tmp_path / "faces.json"
    annotations.write_text(json.dumps([{"image": "a.png", "landmarks": _face_points().tolist()}]))
    assert detect_format(annotations) == "custom"
    for samples, _ in (load_dataset(annotations), load_custom(annotations)):
        assert samples[0].image_path == str(tmp_path / "a.png")
        np.testing.assert_allclose(samples[0].landmarks, _face_points(), atol=1e-4)
