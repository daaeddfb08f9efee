"""Landmark accuracy on real photographs, the way a user runs the models: the face box is the ground truth's
68-point box, given to LandmarkDetector as a user's box (its crop, refinement and decoding; `--refine 0` crops
the box once, as research protocols do). Scores our models (.keras or .tflite) and,
side by side, MediaPipe's Face Mesh mapped to 68 points. Error: mean over the 51 inner points (no jaw line)
divided by the outer-eye-corner distance (the ICME 2024 challenge's measure); FR = share of faces above 10%.
A second table splits each set by pose, from the ground truth's yaw index (`metrics.yaw_index`): frontal
faces (|index| < 0.3) and large-pose faces (|index| >= 0.5, one side of the face 3x the other). `--plots DIR`
draws, per dataset, the CED curves of every model side by side and each model's worst faces (prediction red
over ground truth green), to see where the errors come from.

    python benchmarks/real_faces.py --models landmark_kd/pretrained/real_student.keras \
        --data ../shared/realfaces/ytf68/val ../shared/realfaces/dlib_faces/faces.json \
        --mesh ../shared/realfaces/labellers/face_landmark.tflite ../shared/realfaces/labellers/mesh468_to_ibug68.json
"""
from __future__ import annotations

import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, existing_path, model_path, non_negative_int, positive_int, run  # noqa: E402
from landmark_kd.metrics import failure_rate  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402


DATA_EXAMPLE = "../shared/realfaces/ytf68/val ../shared/realfaces/dlib_faces/faces.json"  # the model card's sets


def load_images(samples) -> dict:
    """RGB images by path, each read once; an image that does not decode is left out (load_faces counts it)."""
    import cv2

    images, unreadable = {}, set()
    for s in samples:
        if s.image_path not in images and s.image_path not in unreadable:
            image = cv2.imread(s.image_path, cv2.IMREAD_COLOR)
            if image is None:
                unreadable.add(s.image_path)
            else:
                images[s.image_path] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return images


def load_faces(data: str) -> tuple[list, dict]:
    """The faces of a 68-point set whose images decode, and those images (RGB) by path. What the reader skipped
    (bad records) and the faces whose image cannot be read are counted in one printed line, never dropped
    silently: a score over fewer faces than the set holds must say so."""
    from landmark_kd.data import load_dataset
    from landmark_kd.errors import DataError

    samples, report = load_dataset(data, num_points=68)
    images = load_images(samples)
    kept = [s for s in samples if s.image_path in images]
    unreadable = {s.image_path for s in samples} - set(images)
    line = f"{data}: {len(kept)} faces"
    if report.skipped or unreadable:
        first = report.skipped[0] if report.skipped else (sorted(unreadable)[0], "cannot read the image")
        line += (f"; skipped {len(report.skipped)} bad record(s) and {len(samples) - len(kept)} face(s) in "
                 f"{len(unreadable)} unreadable image(s) (first: {first[0]}: {first[1]})")
    print(line, flush=True)
    if not kept:
        raise DataError(f"{data}: none of its {len(samples)} faces has an image that can be read")
    return kept, images


def summary(errors: np.ndarray) -> dict:
    if not len(errors):
        return {"mean": None, "median": None, "fr": None, "faces": 0}
    return {"mean": float(errors.mean()), "median": float(np.median(errors)), "fr": failure_rate(errors),
            "faces": len(errors)}


def landmark_box(sample) -> list[float]:
    """The face box this benchmark gives every model: the ground truth's 68-point box."""
    (x0, y0), (x1, y1) = sample.landmarks.min(0), sample.landmarks.max(0)
    return [float(x0), float(y0), float(x1), float(y1)]


def score(predict_one, samples, images) -> dict:
    """predict_one(image, box) -> (68, 2); returns summary figures over the samples, and over its frontal and
    large-pose faces."""
    from landmark_kd.metrics import nme_inner51, pose_groups

    pred, gt, start = [], [], time.perf_counter()
    for s in samples:
        pred.append(predict_one(images[s.image_path], landmark_box(s)))
        gt.append(s.landmarks)
    seconds = time.perf_counter() - start
    errors = nme_inner51(np.stack(pred), np.stack(gt))
    groups = pose_groups(np.stack(gt))
    return {**summary(errors), "ms_per_face": 1e3 * seconds / len(errors),
            **{group: summary(errors[mask]) for group, mask in groups.items()},
            "errors": [round(float(e), 6) for e in errors]}  # per face, in the dataset's order


def worst_faces(errors, count: int) -> np.ndarray:
    """Indices of the `count` largest errors, worst first; a NaN error (a prediction that is no number, a failure
    in every FR) counts as the largest."""
    errors = np.nan_to_num(np.asarray(errors, np.float64), nan=np.inf)
    return np.argsort(-errors, kind="stable")[:count]


def slug(text: str) -> str:
    """A file-name-safe form of a model or dataset name."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"


def plot_dataset(data: str, samples, images, predictors: dict, results: dict, out_dir: str, worst: int = 8,
                 crop_size: int = 192) -> list[str]:
    """`ced_<data>.png` (every model's CED) and `worst_<data>_<model>.png` (each model's `worst` faces, cut as
    the models see them, prediction red over ground truth green) in `out_dir`; returns the paths written."""
    import cv2

    from landmark_kd.crop import box_crop_matrix
    from landmark_kd.decode import image_to_crop
    from landmark_kd.plots import overlay_grid, plot_ced

    os.makedirs(out_dir, exist_ok=True)
    label = os.path.basename(os.path.normpath(data))
    paths = [os.path.join(out_dir, f"ced_{slug(label)}.png")]
    plot_ced({os.path.basename(model): np.asarray(row[data]["errors"]) for model, row in results.items()}, paths[0],
             title=f"CED on {label} (inner-51 NME)")
    for model, predict in predictors.items():
        crops, affines, pred, gt = [], [], [], []
        errors = results[model][data]["errors"]
        for i in worst_faces(errors, worst):
            s, box = samples[i], landmark_box(samples[i])
            affines.append(box_crop_matrix(box, crop_size))
            crop = cv2.warpAffine(images[s.image_path], affines[-1], (crop_size, crop_size))
            for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # the face's NME, outlined to read anywhere
                cv2.putText(crop, f"{errors[i] * 100:.1f}%", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, width,
                            cv2.LINE_AA)
            crops.append(crop.astype(np.float32) / 255)
            pred.append(predict(images[s.image_path], box))
            gt.append(s.landmarks)
        path = os.path.join(out_dir, f"worst_{slug(label)}_{slug(model)}.png")
        overlay_grid(np.stack(crops), image_to_crop(np.stack(pred), np.stack(affines)),
                     image_to_crop(np.stack(gt), np.stack(affines)), path)
        paths.append(path)
    return paths


def pose_cell(r: dict) -> str:
    if not r["faces"]:
        return "no faces"
    return f"{r['mean'] * 100:.2f}% / {r['median'] * 100:.2f}%, {r['fr'] * 100:.1f}% ({r['faces']} faces)"


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=[], type=model_path,
                        help=".keras or .tflite 68-point landmark models")
    parser.add_argument("--data", nargs="+", type=existing_path, help="68-point datasets (any format "
                        "load_dataset reads), e.g. " + DATA_EXAMPLE)
    parser.add_argument("--mesh", nargs=2, metavar=("MODEL", "TABLE"), type=existing_path,
                        help="also score MediaPipe's Face Mesh")
    parser.add_argument("--threads", type=positive_int, default=1, help="TFLite / TensorFlow threads per model")
    parser.add_argument("--flip-test", action="store_true", help="also score each model with the flip test")
    parser.add_argument("--refine", type=non_negative_int, default=None, metavar="N",
                        help="refinement passes after the crop of the given box (default: LandmarkDetector's, 1 "
                        "for 68-point models; 0: the box is cropped once); MediaPipe is always cropped once")
    parser.add_argument("--teacher", nargs="+", metavar="MODEL", type=model_path,
                        help="also score the teacher `distill.py --teacher "
                        "MODEL ... --teacher-flip` distils: these .keras models' heatmaps averaged, flip-averaged")
    parser.add_argument("--teacher-crop", type=positive_int, metavar="PX", help="also score that teacher on PX px crops "
                        "scaled up to its input, as it reads a smaller student's crops without crops of its own")
    parser.add_argument("--json", default=None, help="also write the results here (with every face's NME)")
    parser.add_argument("--ratio", nargs=2, metavar=("A", "B"), help="also print A's mean NME over B's (two of "
                        "--models) on each set, with a 95%% paired bootstrap interval over the faces")
    parser.add_argument("--plots", metavar="DIR", help="also draw, per dataset, every model's CED curve and its "
                        "worst faces here")
    args = parser.parse_args(argv)
    if args.ratio:
        from landmark_kd.predictor import resolve_model_path

        # as --models resolved them, matched by the file they name (a bare shipped name, or its full path)
        by_file = {os.path.realpath(m): m for m in args.models}
        named = args.ratio
        args.ratio = [by_file.get(os.path.realpath(resolve_model_path(name)), name) for name in named]
        if not set(args.ratio) <= set(args.models):
            parser.error(f"--ratio {' '.join(named)}: both must be among --models")
    if args.teacher_crop is not None and not args.teacher:  # it scores the --teacher: alone it would be ignored
        parser.error(f"--teacher-crop {args.teacher_crop} scores the --teacher on smaller crops: pass --teacher too")
    if not args.data:
        parser.error(f"--data: name the 68-point sets to score, e.g. --data {DATA_EXAMPLE}")
    if not (args.models or args.mesh or args.teacher):
        parser.error("nothing to score: pass --models (e.g. real_student.keras) and/or --mesh MODEL TABLE")
    from landmark_kd.metrics import FRONTAL_YAW, LARGE_POSE_YAW
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from landmark_kd.inference import LandmarkDetector

    def given_box(detector):
        """What `detector` answers for one face in a box the user gives."""
        return lambda image, box: detector(image, [box])[0].landmarks

    predictors, refine = {}, args.refine
    for path in args.models:
        detector = LandmarkDetector(path, detector="full", threads=args.threads, refine=refine)
        predictors[path] = given_box(detector)
        if args.flip_test:  # the same loaded model
            flipped = LandmarkDetector(detector.predictor, detector="full", flip_test=True, refine=refine)
            predictors[f"{path} (flip test)"] = given_box(flipped)
    if args.teacher:
        from landmark_kd.schemes import get_scheme
        from landmark_kd.teacher import TeacherPredictor, load_teacher

        teacher = TeacherPredictor(load_teacher(args.teacher, get_scheme("68"), flip=True))
        predictors[f"teacher: {' + '.join(args.teacher)}, flip-averaged"] = \
            given_box(LandmarkDetector(teacher, "full", refine=refine))
        if args.teacher_crop:
            small = TeacherPredictor(teacher.teacher, crop_size=args.teacher_crop)
            predictors[f"the same teacher on {args.teacher_crop} px crops scaled up"] = \
                given_box(LandmarkDetector(small, "full", refine=refine))
    if args.mesh:
        from landmark_kd.mesh_labeller import MeshLabeller

        # cropped once whatever --refine says: a second pass around its own mesh scored it worse on both sets
        mesh = MeshLabeller(*args.mesh, threads=args.threads, passes=1)
        predictors["MediaPipe face_landmark (mesh -> 68)"] = lambda image, box: mesh.label(image, box)[0]
    results = {}
    for data in args.data:
        samples, images = load_faces(data)
        for name, predict in predictors.items():
            results.setdefault(name, {})[data] = score(predict, samples, images)
        if args.plots and predictors:
            written = plot_dataset(data, samples, images, predictors, results, args.plots)
            print(f"{data}: CED and worst-face plots in {args.plots} ({len(written)} files)")
    print("| model | " + " | ".join(f"{os.path.basename(os.path.normpath(d))}: mean / median NME, FR" for d in args.data) + " |")
    print("|---|" + "---|" * len(args.data))
    for name, row in results.items():
        cells = [f"{r['mean'] * 100:.2f}% / {r['median'] * 100:.2f}%, {r['fr'] * 100:.1f}% ({r['faces']} faces)"
                 for r in (row[d] for d in args.data)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nBy pose: frontal (|yaw index| < {FRONTAL_YAW}) and large-pose (>= {LARGE_POSE_YAW}) faces, mean / median "
          "NME, FR")
    print("| model | " + " | ".join(f"{os.path.basename(os.path.normpath(d))}: {group}" for d in args.data
                                    for group in ("frontal", "large pose")) + " |")
    print("|---|" + "---|" * 2 * len(args.data))
    for name, row in results.items():
        cells = [pose_cell(row[d][group]) for d in args.data for group in ("frontal", "large_pose")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.ratio:
        from landmark_kd.metrics import paired_ratio

        a, b = args.ratio
        print(f"\n{a} over {b}, mean NME (95% paired bootstrap interval over the faces):")
        for data in args.data:
            r = paired_ratio(results[a][data]["errors"], results[b][data]["errors"])
            print(f"  {data}: {r['ratio']:.3f}x ({r['low']:.3f}-{r['high']:.3f}; A ahead in "
                  f"{r['a_better_share'] * 100:.1f}% of resamples, {r['faces']} faces)")
    if args.json:
        atomic_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
