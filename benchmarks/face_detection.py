"""Face detection rate and speed on real photos: OpenCV's Haar cascade vs BlazeFace short / full / auto.

    python benchmarks/face_detection.py                      # ytf68/val, dlib_faces, 500 LFW photos
    python benchmarks/face_detection.py --close-ups          # also face crops and background patches
    python benchmarks/face_detection.py --fit                # measure the detector-box -> 68-point-box fit

A labelled face counts as found when some detected box (for BlazeFace its 68-landmark box estimate, what the
landmark crop uses; for Haar its own box) has its centre inside the ground-truth box (the bounding box of the
68 labelled points) and IoU >= 0.3 with it. LFW photos carry no labels but one centred face each (250x250):
a photo counts as found when some detected box contains the image centre. Times are mean ms per image for
the detector call alone (image already decoded, 1 thread). `--close-ups` adds close-ups, every 4th ytf68/val face
cut to a square of 1.0x, 1.1x and 1.25x its 68-point box (the face fills the picture, as in a face crop), and
background patches with no face (PASCAL photos of dlib_faces away from their labelled faces, LFW photos'
corners), where every detection is a false one.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, positive_int, run  # noqa: E402
from landmark_kd.errors import MissingFileError  # noqa: E402
REALFACES = os.path.join(os.path.dirname(ROOT), "shared", "realfaces")

from landmark_kd.face_detector import LANDMARK_BOX_FITS, BlazeFaceDetector, box_iou  # noqa: E402

MIN_IOU = 0.3
COUNT_RULE = ("found = some detected box has its centre inside the ground-truth 68-point box and IoU >= "
              f"{MIN_IOU} with it (BlazeFace: its landmark_box(); Haar: its box); LFW (no labels, one centred "
              "face): some detected box contains the image centre")


def read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"{path}: cannot read image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def points_box(points) -> np.ndarray:
    points = np.asarray(points, np.float32)
    return np.concatenate([points.min(0), points.max(0)])


def ytf68(split: str, limit: int | None = None, root: str = REALFACES) -> list[tuple[str, list[np.ndarray]]]:
    """[(image path, [68-point ground-truth box])] of ytf68/{split}."""
    from landmark_kd.data.pts300w import read_pts

    items = []
    for pts in sorted(glob.glob(os.path.join(root, "ytf68", split, "*.pts"))):
        items.append((pts[:-4] + ".jpg", [points_box(read_pts(pts))]))
    return items[:limit] if limit else items


def dlib_faces(root: str = REALFACES) -> list[tuple[str, list[np.ndarray]]]:
    """[(image path, [68-point ground-truth box per labelled face])], one row per image."""
    folder = os.path.join(root, "dlib_faces")
    with open(os.path.join(folder, "faces.json"), encoding="utf-8") as handle:
        samples = json.load(handle)["samples"]
    by_image: dict[str, list[np.ndarray]] = {}
    for sample in samples:
        by_image.setdefault(sample["image"], []).append(points_box(sample["landmarks"]))
    return [(os.path.join(folder, name), boxes) for name, boxes in sorted(by_image.items())]


def lfw(count: int, root: str = REALFACES) -> list[tuple[str, None]]:
    """`count` LFW photos spread evenly over the sorted list (so over many people)."""
    paths = sorted(glob.glob(os.path.join(root, "lfw_unlabeled", "*", "*.jpg")))
    step = max(1, len(paths) // count)
    return [(path, None) for path in paths[::step][:count]]


def close_ups(scale: float, every: int = 4, root: str = REALFACES) -> list[tuple[object, list[np.ndarray]]]:
    """[(image loader, [68-point box in the crop])]: every `every`-th ytf68/val face cut to a square `scale` times
    its 68-point box's longer side around that box's centre (edge pixels repeated where it leaves the photo)."""
    def cut(path: str, truth: np.ndarray):
        side = float(max(truth[2] - truth[0], truth[3] - truth[1]) * scale)
        shift = np.array([side / 2 - (truth[0] + truth[2]) / 2, side / 2 - (truth[1] + truth[3]) / 2], np.float32)
        matrix = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
        load = lambda: cv2.warpAffine(read_rgb(path), matrix, (int(side), int(side)),  # noqa: E731
                                      borderMode=cv2.BORDER_REPLICATE)
        return load, [truth + np.tile(shift, 2)]

    return [cut(path, truth) for path, (truth,) in ytf68("val", root=root)[::every]]


def background_patches(root: str = REALFACES, seed: int = 0) -> list[tuple[object, list]]:
    """[(image loader, [])]: square patches with no face: up to 6 per dlib_faces photo, 20 px or more away from
    every labelled face's box (PASCAL photos; some of their people are unlabelled), and the four 80x80 corners of
    30 LFW photos (250x250, one centred face)."""
    rng = np.random.default_rng(seed)
    items = []
    for path, truths in dlib_faces(root):
        height, width = read_rgb(path).shape[:2]
        patches = []
        for _ in range(400):
            side = int(rng.integers(40, min(height, width) // 2))
            x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
            if all(x + side < t[0] - 20 or x > t[2] + 20 or y + side < t[1] - 20 or y > t[3] + 20 for t in truths):
                patches.append((x, y, side))
            if len(patches) == 6:
                break
        items += [(lambda p=path, x=x, y=y, s=side: read_rgb(p)[y:y + s, x:x + s].copy(), [])
                  for x, y, side in patches]
    for path, _ in lfw(30, root):
        items += [(lambda p=path, x=x, y=y: read_rgb(p)[y:y + 80, x:x + 80].copy(), [])
                  for y in (0, 170) for x in (0, 170)]
    return items


def matches(box: np.ndarray, truth: np.ndarray) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    inside = truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3]
    return bool(inside and box_iou(truth, box[None])[0] >= MIN_IOU)


def evaluate(detector, items) -> dict:
    """found / total faces, detections per image and mean ms per image of `detector` on `items`."""
    found = total = detections = 0
    seconds = 0.0
    for source, truths in items:  # a path, or a function that makes the image
        image = source() if callable(source) else read_rgb(source)
        start = time.perf_counter()
        boxes = [np.asarray(box, np.float32) for box, _ in detector(image)]
        seconds += time.perf_counter() - start
        detections += len(boxes)
        if truths is None:  # LFW: one face at the centre
            cx, cy = image.shape[1] / 2, image.shape[0] / 2
            total += 1
            found += any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes)
        else:
            total += len(truths)
            found += sum(any(matches(b, truth) for b in boxes) for truth in truths)
    return {"found": found, "total": total, "per_image": detections / max(1, len(items)),
            "ms": 1000 * seconds / max(1, len(items))}


def make_detectors(names, threads: int) -> dict:
    detectors = {}
    for name in names:
        if name == "haar":
            from landmark_kd.inference import HaarFaceDetector

            detectors[name] = HaarFaceDetector()
        elif name == "any_angle":  # auto, also on the image turned by quarter turns
            detectors[name] = BlazeFaceDetector("auto", threads=threads, any_angle=True)
        elif name == "auto_first_look":  # auto without the second look at close-ups
            detectors[name] = BlazeFaceDetector("auto", threads=threads, close_ups=False)
        else:
            detectors[name] = BlazeFaceDetector(name, threads=threads)
    return detectors


def run_benchmark(args) -> None:
    sets = {"ytf68/val": ytf68("val", root=args.realfaces), "dlib_faces": dlib_faces(args.realfaces),
            f"LFW ({args.lfw} photos)": lfw(args.lfw, args.realfaces)}
    if args.close_ups:
        sets.update({f"close-ups {scale}x": close_ups(scale, root=args.realfaces) for scale in (1.0, 1.1, 1.25)})
        sets["background (no face)"] = background_patches(args.realfaces)
    detectors = make_detectors(args.detectors, args.threads)
    print(f"count rule: {COUNT_RULE}\n")
    print("| detector | " + " | ".join(f"{name} found" for name in sets) + " | " +
          " | ".join(f"{name} ms/img" for name in sets) + " |")
    print("|---" * (1 + 2 * len(sets)) + "|")
    for det_name, detector in detectors.items():
        results = [evaluate(detector, items) for items in sets.values()]
        rates = [f"{r['found']}/{r['total']} ({100 * r['found'] / r['total']:.1f}%, {r['per_image']:.2f} det/img)"
                 if r["total"] else f"{r['per_image']:.3f} det/img" for r in results]
        times = [f"{r['ms']:.1f}" for r in results]
        print(f"| {det_name} | " + " | ".join(rates) + " | " + " | ".join(times) + " |", flush=True)


def best_match(truth: np.ndarray, faces) -> tuple[object, float]:
    """The detection whose raw box overlaps `truth` most, and that IoU (None, 0 where nothing was detected)."""
    if not faces:
        return None, 0.0
    ious = [box_iou(truth, face.box[None])[0] for face in faces]
    return faces[int(np.argmax(ious))], float(max(ious))


def fit_landmark_box(args) -> None:
    """Per model, measure the detector-box -> 68-point-box conversion on ytf68/train (each face's best-IoU
    detection, IoU >= 0.3; medians of the per-face ratios) and check it on the held-out sets."""
    held_out = {"ytf68/val": ytf68("val", root=args.realfaces), "dlib_faces": dlib_faces(args.realfaces)}
    for model in ("short", "full"):
        detector = BlazeFaceDetector(model, threads=args.threads)
        ratios = []
        for path, (truth,) in ytf68("train", args.limit, args.realfaces):
            face, iou = best_match(truth, detector.detect(read_rgb(path)))
            if iou < MIN_IOU:
                continue
            x0, y0, x1, y1 = face.box
            w, h = x1 - x0, y1 - y0
            ratios.append([((truth[0] + truth[2]) - (x0 + x1)) / 2 / w, ((truth[1] + truth[3]) - (y0 + y1)) / 2 / h,
                           (truth[2] - truth[0]) / w, (truth[3] - truth[1]) / h])
        ratios = np.asarray(ratios)
        fit = tuple(round(float(v), 3) for v in np.median(ratios, axis=0))
        q1, q3 = np.percentile(ratios, [25, 75], axis=0)
        print(f"{model}: ytf68/train, {len(ratios)} matched faces")
        for i, name in enumerate(("dx", "dy", "sw", "sh")):
            print(f"  {name}: median {fit[i]:+.3f}  IQR {q1[i]:+.3f} .. {q3[i]:+.3f}  mean {ratios[:, i].mean():+.3f}")
        print(f"  fit {fit}, shipped {LANDMARK_BOX_FITS[model]}")
        for set_name, items in held_out.items():
            raw, fitted, shipped = [], [], []
            for path, truths in items:
                faces = detector.detect(read_rgb(path))
                for truth in truths:
                    face, iou = best_match(truth, faces)
                    if iou < MIN_IOU:
                        continue
                    raw.append(iou)
                    fitted.append(box_iou(truth, face.landmark_box(fit)[None])[0])
                    shipped.append(box_iou(truth, face.landmark_box()[None])[0])
            print(f"  {set_name}: {len(raw)} matched faces, mean IoU with the 68-point box: raw detector box "
                  f"{np.mean(raw):.3f}, this fit {np.mean(fitted):.3f}, shipped fit {np.mean(shipped):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                            epilog=COUNT_RULE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+", default=["haar", "short", "full", "auto"],
                        help="any of haar, short, full, auto, any_angle (auto, also on the image turned by 90, "
                        "180 and 270 degrees), auto_first_look (auto without its second look at an image where "
                        "it finds nothing), or BlazeFace .tflite paths")
    parser.add_argument("--realfaces", default=REALFACES, help="the real-face folder (ytf68/, dlib_faces/, "
                        "lfw_unlabeled/; see ../shared/realfaces/README.md)")
    parser.add_argument("--lfw", type=positive_int, default=500, help="LFW photos to use, spread over the sorted list")
    parser.add_argument("--threads", type=positive_int, default=1, help="tflite_runtime threads")
    parser.add_argument("--close-ups", action="store_true", help="also face crops (faces filling the picture) "
                        "and background patches with no face")
    parser.add_argument("--fit", action="store_true",
                        help="instead: measure each model's detector box -> 68-point box fit on ytf68/train")
    parser.add_argument("--limit", type=positive_int, default=None, help="--fit: use only the first N train faces")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.realfaces):
        raise MissingFileError(f"{args.realfaces}: real-face data not found (pass --realfaces DIR)")
    if args.fit:
        fit_landmark_box(args)
    else:
        run_benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
