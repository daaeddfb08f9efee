"""Score a landmark model on a dataset: NME / FR / AUC in original-image pixels, CED plot, overlay grid.

    python -m landmark_kd.evaluate --model runs/teacher/best.keras --data data/synthetic/test
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from .decode import image_to_crop
from .errors import DataError, OutputError
from .metrics import YAW_POINTS, nme_inner51, pose_groups
from .outputs import atomic_json, read_json
from .predictor import DatasetPrediction
from .quiet import quiet_tensorflow

if TYPE_CHECKING:
    from .data.records import Sample
    from .schemes import LandmarkScheme


def evaluate_predictions(pred: np.ndarray, index: np.ndarray, samples: Sequence[Sample], scheme: LandmarkScheme,
                         normalization: str | None = None, threshold: float = 0.1) -> tuple[dict, np.ndarray]:
    """(metrics, per-face NME) of `pred` (M, N, 2) image pixels against `samples[index]`.

    `normalization` defaults to the scheme's (inter-ocular where it has eye corners); FR and AUC are at
    `threshold`. 68-point inter-ocular scores also get the challenge's inner-51 NME; 68- and 98-point scores
    are also split by pose (`by_pose`: frontal and large-pose faces, from the ground truth's yaw index)."""
    from .metrics import default_normalization, failure_rate, nme_per_image, summarize

    normalization = normalization or default_normalization(scheme)
    gt = np.stack([samples[i].landmarks for i in index])
    errors = nme_per_image(pred, gt, scheme, normalization)
    metrics = summarize(errors, normalization, scheme.num_points, threshold)
    ibug68 = scheme.num_points == 68 and tuple(scheme.outer_eye_corners or ()) == (36, 45)
    if ibug68 and normalization == "inter_ocular":
        # The ICME 2024 challenge's measure: the 51 inner points (no jaw line), same outer-eye-corner distance.
        # nme_inner51 reads the iBUG order (jaw 0-16, outer eye corners 36 and 45): not another 68-point layout.
        inner = nme_inner51(pred, gt)
        metrics.update({"nme_inner51": float(inner.mean()), "fr_inner51": failure_rate(inner, threshold),
                        "median_nme_inner51": float(np.median(inner))})
    if scheme.name in YAW_POINTS:
        metrics["by_pose"] = {
            group: {**_group_scores(errors, mask),
                    "fr": failure_rate(errors[mask], threshold) if mask.any() else None}
            for group, mask in pose_groups(gt, scheme).items()}
    from .head_pose import POSE_SCHEMES  # here, not at import: it brings OpenCV, which train.py's start needs not

    if scheme.name in POSE_SCHEMES:
        metrics["by_yaw_degrees"] = yaw_degree_groups(gt, errors)
    return metrics, errors


def _group_scores(errors: np.ndarray, mask: np.ndarray) -> dict:
    """faces, mean and median NME of the faces in `mask` (None for an empty group)."""
    return {"faces": int(mask.sum()), "nme": float(errors[mask].mean()) if mask.any() else None,
            "median_nme": float(np.median(errors[mask])) if mask.any() else None}


YAW_BINS = (0, 15, 30, 45)  # |yaw| bin edges in degrees; the last bin is open


def yaw_degree_groups(gt: np.ndarray, errors: np.ndarray) -> dict[str, dict]:
    """{"0-15": {faces, nme, median_nme}, ..., "45+": ...}: the per-face errors binned by the |yaw| of the ground
    truth's head pose (`head_pose.face_centred_pose`); faces it cannot fit are left out of every bin."""
    from .head_pose import face_centred_pose

    yaw = np.full(len(gt), np.nan)
    for i, points in enumerate(gt):
        try:
            yaw[i] = abs(face_centred_pose(points).yaw)
        except DataError:
            continue
    edges = list(YAW_BINS) + [np.inf]
    groups = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        groups[f"{lo}-{hi}" if np.isfinite(hi) else f"{lo}+"] = _group_scores(errors, (yaw >= lo) & (yaw < hi))
    return groups


def score_lines(metrics: dict) -> list[str]:
    """Printed under the main score: the challenge's inner-51 NME (what the model card's tables report) where it
    was computed, then one line per pose group of `metrics["by_pose"]` that has faces, then the NME by |yaw|
    in degrees (`by_yaw_degrees`)."""
    inner = ([f"  inner 51 points (no jaw line): NME {metrics['nme_inner51']:.4f} (median "
              f"{metrics['median_nme_inner51']:.4f}), FR {metrics['fr_inner51']:.4f}"]
             if "nme_inner51" in metrics else [])
    points = f"{metrics['num_points']}-point " if "num_points" in metrics else ""  # the main score's, not inner 51
    groups = [f"  {group.replace('_', '-')} faces: {points}NME {row['nme']:.4f} (median {row['median_nme']:.4f}), "
              f"FR {row['fr']:.4f} on {row['faces']}" for group, row in metrics.get("by_pose", {}).items() if row["faces"]]
    yaw = [f"{name}°: {row['nme']:.4f} ({row['faces']})" for name, row in metrics.get("by_yaw_degrees", {}).items()
           if row["faces"]]
    return inner + groups + ([f"  {points}NME by |yaw| of the ground truth's head pose: " + ", ".join(yaw)]
                             if yaw else [])


def write_report(out_dir: str, metrics: dict, errors: np.ndarray, prediction: DatasetPrediction,
                 samples: Sequence[Sample], stem: str = "", extra_curves: dict | None = None) -> dict:
    """metrics.json, ced.png and predictions.png (prediction red over ground truth green) in `out_dir`. Without
    matplotlib (a board has numpy, OpenCV and tflite_runtime) the CED plot is left out, said in one note."""
    from .plots import overlay_grid, plot_ced

    os.makedirs(out_dir, exist_ok=True)
    paths = {"metrics": os.path.join(out_dir, f"{stem}metrics.json")}
    atomic_json(paths["metrics"], metrics)
    try:
        plot_ced({"model": errors, **(extra_curves or {})}, os.path.join(out_dir, f"{stem}ced.png"),
                 metrics.get("threshold", 0.1), f"CED ({metrics['normalization']})")
        paths["ced"] = os.path.join(out_dir, f"{stem}ced.png")
    except ImportError as err:
        print(f"note: no CED plot ({err.name or 'matplotlib'} is not installed); the scores are in {paths['metrics']}")
    paths["predictions"] = os.path.join(out_dir, f"{stem}predictions.png")
    shown = len(prediction.overlay_crops)
    if shown:
        gt_img = np.stack([samples[i].landmarks for i in prediction.index[:shown]])
        gt = image_to_crop(gt_img, prediction.affine[:shown])
        overlay_grid(prediction.overlay_crops, prediction.overlay_landmarks, gt, paths["predictions"])
    return paths


def opencv_batches(samples: Sequence[Sample], image_size: int, batch_size: int
                   ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """The evaluation crops without TensorFlow, for a .tflite on a board: each face's box cropped by the same
    matrix as LandmarkPipeline's evaluation crop (crop.box_crop_matrix), resampled by OpenCV instead of TensorFlow
    (crop.warp_square: bilinear, block-averaged first under half scale, black outside the image), from the same
    pixels (cv2.imread turns a photo by its EXIF orientation, as the pipeline does). Yields (crops, {"affine", "index"}) batches as the pipeline's dataset
    does; an image that cannot be decoded is left out, as the pipeline drops it."""
    import cv2

    from .crop import box_crop_matrix, warp_square
    from .data.records import read_bgr

    crops, affines, indices = [], [], []
    for i, sample in enumerate(samples):
        image = read_bgr(sample.image_path)
        if image is not None:
            matrix = box_crop_matrix(sample.face_box(), image_size)
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            crops.append(warp_square(rgb, matrix, image_size))
            affines.append(matrix)
            indices.append(i)
        if crops and (len(crops) == batch_size or i == len(samples) - 1):
            yield np.stack(crops), {"affine": np.stack(affines), "index": np.asarray(indices, np.int32)}
            crops, affines, indices = [], [], []


def trained_on_real_faces(model: str) -> str | None:
    """Why `model` counts as a model of real photographs, or None when nothing says so: a shipped model
    (landmark_kd/pretrained, all trained on real photos), a .keras whose run's config.json (beside it) names
    training data or unlabelled photos other than the drawn faces, or a .tflite whose convert report.json (beside
    it) says so of its source. Needs neither TensorFlow nor the model loaded."""
    from .data.synthetic import is_synthetic_set
    from .predictor import PRETRAINED_DIR, resolve_model_path

    path = os.path.realpath(resolve_model_path(model))
    folder = os.path.dirname(path)
    if folder == os.path.realpath(PRETRAINED_DIR):
        return "a shipped model, trained on real photographs"
    if path.lower().endswith(".tflite"):
        from .export.report import listed_files

        report = read_json(os.path.join(folder, "report.json"))
        listed = isinstance(report, dict) and path in listed_files(folder, report)
        why = report.get("trained_on_real_faces") if listed else None
        return f"exported from {report.get('model')}: {why}" if isinstance(why, str) else None
    config = read_json(os.path.join(folder, "config.json"))
    if not isinstance(config, dict):
        return None
    data = config.get("train_data")
    paths = [data] if isinstance(data, str) else [p for p in data if isinstance(p, str)] if isinstance(data, list) else []
    if isinstance(config.get("unlabeled"), str):
        paths.append(config["unlabeled"])
    drawn = os.path.normpath(os.path.join(str(config.get("synthetic_root", "data/synthetic")), "train"))
    real = [p for p in paths if os.path.normpath(p) != drawn and not is_synthetic_set(p)]
    if not real or config.get("data_format") == "synthetic":
        return None
    return f"its run's config.json names {', '.join(real)}"


def drawn_faces_warning(model: str, data: str) -> str | None:
    """The warning for a model of real photos scored on the drawn (synthetic) faces because no --data was given:
    that figure says little about real photos. None for any other model."""
    from .data.synthetic import is_synthetic_set

    why = trained_on_real_faces(model)
    if why is None:
        return None
    from .predictor import resolve_model_path

    config = read_json(os.path.join(os.path.dirname(os.path.realpath(resolve_model_path(model))), "config.json"))
    val = config.get("val_data") if isinstance(config, dict) else None
    example = f", e.g. --data {val} (its run's validation set)" if isinstance(val, str) and os.path.exists(val) \
        and not is_synthetic_set(val) else ""
    return (f"warning: {model} was trained on real photographs ({why}), but this accuracy is on drawn synthetic "
            f"faces ({data}) because no --data was given; pass --data with labelled real faces (a 300-W folder of "
            f"images and .pts files, a WFLW .txt, a COFW .mat or a custom .json/.csv){example}")


@dataclass
class EvalConfig:
    """What `run_evaluation` scores; `python -m landmark_kd.evaluate` fills it from its flags."""

    model: str  # .keras or .tflite
    data: str | None = None  # None: the synthetic test faces
    data_format: str = "auto"
    images_root: str | None = None
    normalization: str | None = None  # None: inter-ocular where the scheme has eye corners, else bbox
    threshold: float = 0.1  # FR / AUC threshold
    batch_size: int = 32
    out: str | None = None  # None: runs/evaluate/<model's folder>_<model file name without extension>
    face_box: str = "data"  # "data": the dataset's own box where it has one; "landmarks": always the landmarks' box


def default_output(model: str) -> str:
    """runs/evaluate/<model's folder>_<model name>: one folder per model, so scoring the int8 and fp16 files of
    one folder keeps both reports, as does scoring runs/teacher/best.keras and runs/student/best.keras; a shipped
    model's folder (inside the installed package) is never written to."""
    stem = os.path.splitext(os.path.basename(model))[0] or "model"
    folder = os.path.basename(os.path.dirname(os.path.abspath(model)))
    return os.path.join("runs", "evaluate", f"{folder}_{stem}" if folder else stem)


def run_evaluation(config: EvalConfig) -> dict:
    """Score `config.model` on `config.data`: writes eval_metrics.json, eval_ced.png and eval_predictions.png
    and returns the metrics (with `paths`). Bad samples are skipped and counted; none left is a DataError."""
    from .data import DatasetError, check_images_root, load_dataset
    from .data.synthetic import ensure_default_dataset
    from .metrics import drop_unnormalisable
    from .outputs import prepare_output_dir
    from .predictor import Predictor, resolve_model_path

    # a run folder stands for its best.keras, a bare shipped name for the shipped file: in the report and in the
    # default output folder's name too (else named after the folder the command was typed in)
    config = replace(config, model=resolve_model_path(config.model))
    predictor = Predictor.from_path(config.model)
    scheme = predictor.scheme
    check_images_root(config.images_root, [config.data], config.data_format)
    data = config.data or ensure_default_dataset(reuse_any=True, splits=("test",))[1]
    warning = None if config.data else drawn_faces_warning(config.model, data)
    if warning:
        print(warning)
    # "landmarks": the crop a benchmark with ground-truth landmark boxes uses (a 68-point file's box for a 51-point
    # model, as it trained on)
    samples, report = load_dataset(data, config.data_format, scheme.num_points, config.images_root,
                                   data_boxes=config.face_box == "data")
    samples = drop_unnormalisable(samples, scheme, config.normalization, report)
    if not samples:
        raise DatasetError(f"{data}: no face can be scored ({report.skipped[0][0]}: {report.skipped[0][1]})")
    out = prepare_output_dir(config.out or default_output(config.model))
    earlier = os.path.join(out, "eval_metrics.json")
    if os.path.exists(earlier):
        record = read_json(earlier)
        if not (isinstance(record, dict) and {"nme", "model"} <= set(record)):
            raise OutputError(f"{earlier}: not an earlier evaluation's record; it is kept (pass another --out)")
        print(f"replacing the earlier evaluation in {out} (of {record['model']}; pass another --out to keep it)")
    print(f"{data}: {report.summary()}")
    try:  # TensorFlow's pipeline where it is installed (a .keras model needs it anyway), else OpenCV's crops
        from .data.pipeline import LandmarkPipeline, PipelineConfig
    except ImportError:
        print("note: TensorFlow is not installed: the faces are cropped with OpenCV (the same crop box; bilinear "
              "resampling by OpenCV instead of TensorFlow)")
        batches = opencv_batches(samples, predictor.image_size, config.batch_size)
    else:
        pipeline = LandmarkPipeline(scheme, PipelineConfig(image_size=predictor.image_size))
        batches = pipeline.dataset(samples, config.batch_size, training=False)
    result = predictor.predict_dataset(batches)
    metrics, errors = evaluate_predictions(result.landmarks, result.index, samples, scheme, config.normalization,
                                           config.threshold)
    undecodable = len(samples) - len(result.index)
    metrics.update({"model": config.model, "data": data, "face_box": config.face_box, "skipped": len(report.skipped),
                    "undecodable": undecodable, "warnings": [warning] if warning else []})
    if undecodable:
        print(f"{undecodable} image(s) passed the load-time checks but could not be decoded; they were left out")
    metrics["paths"] = write_report(out, metrics, errors, result, samples, stem="eval_")
    return metrics


def main(argv: list[str] | None = None) -> int:
    """`python -m landmark_kd.evaluate`: scores, CED plot and overlays; exit 2 with one line for a user error."""
    from .cli import run

    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    from .cli import ArgumentParser, nme_threshold, positive_int

    parser = ArgumentParser(description="Evaluate a landmark model (.keras or .tflite) on a dataset.")
    parser.add_argument("--model", required=True, help="a .keras model (or the run folder holding it as "
                        "best.keras), a .tflite exported by convert.py, or a shipped model by its file name "
                        "(e.g. real_student_fp16.tflite)")
    parser.add_argument("--data", default=None, help="dataset path (300W folder, WFLW .txt, COFW .mat, .json/.csv); "
                        "default: the synthetic test set")
    parser.add_argument("--data-format", default="auto",
                        help="300w, wflw, cofw, custom, synthetic (a folder the project generated) or auto (default)")
    parser.add_argument("--images-root", default=None, help="image folder for WFLW lists")
    parser.add_argument("--normalization", default=None, choices=["inter_ocular", "inter_pupil", "bbox"])
    parser.add_argument("--threshold", type=nme_threshold, default=0.1, help="FR/AUC threshold (default 0.1)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--out", default=None, help="output folder (default: runs/evaluate/FOLDER_NAME, the model's "
                        "folder and file name)")
    parser.add_argument("--face-box", default="data", choices=("data", "landmarks"),
                        help="the box each face is cropped from: the dataset's own where it has one (WFLW, custom "
                        "JSON with bbox), else the landmarks' box; or always the landmarks' box, as "
                        "benchmarks/real_faces.py and the model card's tables crop")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log output")
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_tensorflow()
    config = EvalConfig(**{k: v for k, v in vars(args).items() if k != "verbose"})
    metrics = run_evaluation(config)
    print(f"NME {metrics['nme']:.4f} ({metrics['normalization']}), FR@{config.threshold:g} {metrics['fr']:.4f}, "
          f"AUC@{config.threshold:g} {metrics['auc']:.4f} on {metrics['num_images']} faces")
    for line in score_lines(metrics):
        print(line)
    print("wrote " + ", ".join(metrics["paths"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
