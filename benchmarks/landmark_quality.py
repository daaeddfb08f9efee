"""How well `Face.quality` (the mean heatmap peak share of a face's landmarks, `decode.peak_share`) tells a face
from a crop with none, and a good answer from a poor one, on real photographs.

Three kinds of crop per model: each labelled face's ground-truth box (cropped once, as benchmarks/real_faces.py
does); that box moved by half its size along a diagonal (a track that slid half off its face); and 144 crops of
16 pictures of scikit-image with no human face (a cat, coffee, a rocket, coins, text, cells, textures...: what
a detector's false face or a track left on the background holds). Printed: the spread of each kind's quality,
the AUROC of faces against each other kind (1.0: every face above every such crop), the rank correlation of
quality with the face's inner-51 NME (negative: the less sure, the worse), the mean over faces of the rank
correlation between each inner point's peak share and its own error (how much the share says of one point),
and the mean NME of the faces by quality quarter. `--detections` also runs each model behind the default face detector (BlazeFace) on
benchmarks/face_detection.py's sets (ytf68/val and dlib_faces photos, close-ups, 174 background patches with
no face) and counts, for each `--floors` value, the true faces and the false faces that `min_quality` keeps.

    python benchmarks/landmark_quality.py --models real_student_fp16.tflite real_fast_fp16.tflite \\
        --data ../shared/realfaces/ytf68/val ../shared/realfaces/dlib_faces/faces.json
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import (ArgumentParser, existing_path, model_path, non_negative_int, positive_int,  # noqa: E402
                             quality_floor, run)
from landmark_kd.outputs import atomic_json  # noqa: E402

PICTURES = ("chelsea", "coffee", "rocket", "coins", "moon", "brick", "grass", "gravel", "hubble_deep_field",
            "immunohistochemistry", "colorwheel", "clock", "cell", "page", "text", "retina")
# (side as a share of the picture's shorter side, centre x, centre y as shares of its width and height)
PICTURE_CROPS = tuple((side, cx, cy) for side in (0.3, 0.5, 0.8) for cx, cy in ((0.5, 0.5), (0.3, 0.3), (0.7, 0.6)))


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half: the area under the ROC curve."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    n = len(positive)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * len(negative)))


def picture_crops() -> list[tuple[np.ndarray, list[float]]]:
    """(picture, box) for every PICTURES x PICTURE_CROPS crop."""
    import skimage.data

    out = []
    for name in PICTURES:
        picture = getattr(skimage.data, name)()
        h, w = picture.shape[:2]
        for side, cx, cy in PICTURE_CROPS:
            s = side * min(h, w)
            x0, y0 = cx * w - s / 2, cy * h - s / 2
            out.append((picture, [x0, y0, x0 + s, y0 + s]))
    return out


def moved_box(box: list[float], index: int) -> list[float]:
    """`box` moved by half its size, towards one of the four diagonals by `index`."""
    x0, y0, x1, y1 = box
    dx = 0.5 * (x1 - x0) * (1 if index % 2 else -1)
    dy = 0.5 * (y1 - y0) * (1 if index % 4 < 2 else -1)
    return [x0 + dx, y0 + dy, x1 + dx, y1 + dy]


def spread(values: np.ndarray) -> dict:
    return {f"p{p}": float(np.percentile(values, p)) for p in (5, 50, 95)}


def measure(detector, data: list[str], pictures) -> dict:
    """Every figure the module docstring lists, for one LandmarkDetector."""
    from scipy.stats import spearmanr

    from benchmarks.real_faces import landmark_box, load_faces
    from landmark_kd.metrics import nme_inner51

    def checked(face):
        if face.quality is None:
            raise SystemExit(f"error: {detector.model_path} gives no landmark quality (a .tflite exported before "
                             "it was added: export it again with convert.py)")
        return face

    def quality(image, box) -> float:
        return checked(detector(image, [box])[0]).quality

    faces, moved, errors, within = [], [], [], []
    for path in data:
        samples, images = load_faces(path)
        for i, s in enumerate(samples):
            image, box = images[s.image_path], landmark_box(s)
            face = checked(detector(image, [box])[0])
            faces.append(face.quality)
            moved.append(quality(image, moved_box(box, i)))
            errors.append(float(nme_inner51(face.landmarks[None], s.landmarks[None])[0]))
            point_errors = np.linalg.norm(face.landmarks - s.landmarks, axis=1)[17:]  # the inner 51
            within.append(spearmanr(face.landmark_scores[17:], point_errors)[0])
    faces, moved, errors = np.array(faces), np.array(moved), np.array(errors)
    others = np.array([quality(picture, box) for picture, box in pictures])
    quarters = np.array_split(np.argsort(faces), 4)  # least sure first
    return {"faces": len(faces), "face": spread(faces), "moved": spread(moved), "no_face": spread(others),
            "auroc_no_face": auroc(faces, others), "auroc_moved": auroc(faces, moved),
            "spearman_nme": float(spearmanr(faces, errors)[0]), "spearman_points": float(np.nanmean(within)),
            "nme_by_quarter": [float(errors[q].mean()) for q in quarters],
            "fr_by_quarter": [float((errors[q] > 0.1).mean()) for q in quarters]}


def detections(model: str, floors: list[float], root: str, threads: int) -> dict:
    """Quality of the faces the default detector finds: those matching a labelled face (a face counts as in
    benchmarks/face_detection.py) and those on the background patches (every one false); per floor, how many of
    each `min_quality` keeps."""
    from benchmarks.face_detection import background_patches, close_ups, dlib_faces, matches, read_rgb, ytf68
    from landmark_kd.inference import LandmarkDetector

    detector = LandmarkDetector(model, threads=threads)
    true, false = [], []
    for items in (ytf68("val", root=root), dlib_faces(root), close_ups(1.0, root=root)):
        for source, truths in items:
            image = source() if callable(source) else read_rgb(source)
            true += [f.quality for f in detector(image) if any(matches(np.asarray(f.box, np.float32), t) for t in truths)]
    for source, _ in background_patches(root):
        false += [f.quality for f in detector(source())]
    true, false = np.array(true), np.array(false)
    return {"true": len(true), "false": len(false), "true_min": float(true.min()),
            "false_max": float(false.max()) if len(false) else None,
            "kept": {f"{floor:g}": [int((true >= floor).sum()), int((false >= floor).sum())] for floor in floors}}


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=model_path, default=["real_student_fp16.tflite"],
                        help=".keras or .tflite 68-point landmark models (default: the shipped fp16 student)")
    parser.add_argument("--data", nargs="+", type=existing_path, required=True,
                        help="68-point datasets with real faces (any format load_dataset reads)")
    parser.add_argument("--refine", type=non_negative_int, default=0, metavar="N",
                        help="refinement passes after the crop of each box (default 0: cropped once)")
    parser.add_argument("--threads", type=positive_int, default=1, help="TFLite threads")
    parser.add_argument("--detections", metavar="REALFACES", type=existing_path,
                        help="also count true and false faces behind the face detector on face_detection.py's sets, "
                        "read from this realfaces folder (e.g. ../shared/realfaces)")
    parser.add_argument("--floors", nargs="+", type=quality_floor, default=[0.04, 0.05, 0.06, 0.065, 0.07],
                        help="min_quality values to count --detections at")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from landmark_kd.inference import LandmarkDetector

    pictures = picture_crops()
    results = {}
    for path in args.models:
        detector = LandmarkDetector(path, detector="full", threads=args.threads, refine=args.refine)
        results[path] = r = measure(detector, args.data, pictures)
        print(f"{path}: {r['faces']} faces, {len(pictures)} crops of {len(PICTURES)} pictures with no face")
        for kind in ("face", "moved", "no_face"):
            q = r[kind]
            print(f"  quality, {kind.replace('_', ' ')}: median {q['p50']:.4f} (5th-95th percentile "
                  f"{q['p5']:.4f}-{q['p95']:.4f})")
        print(f"  AUROC faces vs no face {r['auroc_no_face']:.3f}, vs moved half off {r['auroc_moved']:.3f}; "
              f"Spearman quality-NME {r['spearman_nme']:.3f}, point share-error within a face "
              f"{r['spearman_points']:.3f}")
        print("  mean NME by quality quarter, least sure first: "
              + ", ".join(f"{e * 100:.2f}% (FR {f * 100:.1f}%)" for e, f in zip(r["nme_by_quarter"], r["fr_by_quarter"])))
        if args.detections:
            r["detections"] = d = detections(path, args.floors, args.detections, args.threads)
            print(f"  behind BlazeFace: {d['true']} true faces (quality from {d['true_min']:.4f}), {d['false']} false "
                  f"faces on background patches (up to {d['false_max'] or 0:.4f}); kept by min_quality: "
                  + ", ".join(f"{floor}: {t} true, {f} false" for floor, (t, f) in d["kept"].items()))
    if args.json:
        atomic_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
