"""Score a landmark model on a dataset: NME / FR / AUC in original-image pixels, CED plot, overlay grid.

    python -m landmark_kd.evaluate --model runs/teacher/best.keras --data data/synthetic/test
"""
from __future__ import annotations

import json
import os
import sys
from typing import Callable

import numpy as np

from .metrics import nme_inner51
from .quiet import quiet_tensorflow


def predict_dataset(predict: Callable[[np.ndarray], np.ndarray], dataset) -> dict:
    """Run `predict` (crops -> (B, N, 2) crop pixels) over an evaluation dataset; map back to image pixels."""
    from .decode import crop_to_image

    preds, indices, affines, crops = [], [], [], []
    for images, targets in dataset:
        images, affine = images.numpy(), targets["affine"].numpy()
        crop_pred = predict(images)
        preds.append(crop_to_image(crop_pred, affine))
        indices.append(targets["index"].numpy())
        affines.append(affine)
        if sum(len(c) for c in crops) < 16:
            crops.append((images, crop_pred, affine))
    return {"pred": np.concatenate(preds), "index": np.concatenate(indices), "affine": np.concatenate(affines),
            "crops": crops}


def evaluate_predictions(pred: np.ndarray, index: np.ndarray, samples, scheme, normalization: str | None = None,
                         threshold: float = 0.1) -> tuple[dict, np.ndarray]:
    from .metrics import default_normalization, nme_per_image, summarize

    normalization = normalization or default_normalization(scheme)
    gt = np.stack([samples[i].landmarks for i in index])
    errors = nme_per_image(pred, gt, scheme, normalization)
    metrics = summarize(errors, normalization, scheme.num_points, threshold)
    if scheme.num_points == 68 and normalization == "inter_ocular":
        # The ICME 2024 challenge's measure: the 51 inner points (no jaw line), same outer-eye-corner distance.
        inner = nme_inner51(pred, gt)
        metrics.update({"nme_inner51": float(inner.mean()), "fr_inner51": float(np.mean(inner > threshold)),
                        "median_nme_inner51": float(np.median(inner))})
    return metrics, errors


def write_report(out_dir: str, metrics: dict, errors: np.ndarray, crops, samples, index, stem: str = "",
                 extra_curves: dict | None = None) -> dict:
    """metrics.json, ced.png and predictions.png (prediction red over ground truth green) in `out_dir`."""
    from .plots import overlay_grid, plot_ced

    os.makedirs(out_dir, exist_ok=True)
    paths = {"metrics": os.path.join(out_dir, f"{stem}metrics.json"), "ced": os.path.join(out_dir, f"{stem}ced.png"),
             "predictions": os.path.join(out_dir, f"{stem}predictions.png")}
    tmp = paths["metrics"] + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(metrics, handle, indent=2)
    os.replace(tmp, paths["metrics"])
    curves = {"model": errors, **(extra_curves or {})}
    plot_ced(curves, paths["ced"], metrics.get("threshold", 0.1), f"CED ({metrics['normalization']})")
    if crops:
        images = np.concatenate([c[0] for c in crops])[:16]
        pred = np.concatenate([c[1] for c in crops])[:16]
        affine = np.concatenate([c[2] for c in crops])[:16]
        gt_img = np.stack([samples[i].landmarks for i in index[:16]])
        gt = np.einsum("bij,bnj->bni", affine[:, :, :2], gt_img) + affine[:, None, :, 2]
        overlay_grid(images, pred, gt, paths["predictions"])
    return paths


def keras_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(x):
        return model(x, training=False)["landmarks"]

    return lambda images: np.asarray(run(images), np.float32)


def main(argv: list[str] | None = None) -> int:
    from .cli import ArgumentParser, positive_float, positive_int

    parser = ArgumentParser(description="Evaluate a landmark model (.keras or .tflite) on a dataset.")
    parser.add_argument("--model", required=True, help="a .keras model (or .tflite exported by convert.py)")
    parser.add_argument("--data", default=None, help="dataset path (300W folder, WFLW .txt, COFW .mat, .json/.csv); "
                        "default: the synthetic test set")
    parser.add_argument("--data-format", default="auto", help="300w, wflw, cofw, custom or auto (default)")
    parser.add_argument("--images-root", default=None, help="image folder for WFLW lists")
    parser.add_argument("--normalization", default=None, choices=["inter_ocular", "inter_pupil", "bbox"])
    parser.add_argument("--threshold", type=positive_float, default=0.1, help="FR/AUC threshold (default 0.1)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--out", default=None, help="output folder (default: beside the model)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log output")
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_tensorflow()
    from .cli import prepare_output_dir
    from .data import DatasetError, load_dataset
    from .data.pipeline import LandmarkPipeline, PipelineConfig
    from .data.synthetic import ensure_default_dataset

    try:
        if args.model.endswith(".tflite"):
            from .export.tflite_runner import TFLiteLandmarkModel

            runner = TFLiteLandmarkModel(args.model)
            scheme, size, predict = runner.scheme, runner.image_size, runner.predict_landmarks
        else:
            from .models import load_model, model_image_size, model_scheme

            model = load_model(args.model)
            scheme, size, predict = model_scheme(model), model_image_size(model), keras_predictor(model)
        data = args.data or ensure_default_dataset(reuse_any=True)[1]
        samples, report = load_dataset(data, args.data_format, scheme.num_points, args.images_root)
        from .metrics import drop_unnormalisable

        samples = drop_unnormalisable(samples, scheme, args.normalization, report)
        if not samples:
            raise DatasetError(f"{data}: no face can be scored ({report.skipped[0][0]}: {report.skipped[0][1]})")
        out = prepare_output_dir(args.out or os.path.dirname(os.path.abspath(args.model)))
    except (DatasetError, ValueError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{data}: {report.summary()}")
    pipeline = LandmarkPipeline(scheme, PipelineConfig(image_size=size))
    result = predict_dataset(predict, pipeline.dataset(samples, args.batch_size, training=False))
    metrics, errors = evaluate_predictions(result["pred"], result["index"], samples, scheme, args.normalization, args.threshold)
    undecodable = len(samples) - len(result["index"])
    metrics.update({"model": args.model, "data": data, "skipped": len(report.skipped), "undecodable": undecodable})
    if undecodable:
        print(f"{undecodable} image(s) passed the load-time checks but could not be decoded; they were left out")
    paths = write_report(out, metrics, errors, result["crops"], samples, result["index"], stem="eval_")
    print(f"NME {metrics['nme']:.4f} ({metrics['normalization']}), FR@{args.threshold:g} {metrics['fr']:.4f}, "
          f"AUC@{args.threshold:g} {metrics['auc']:.4f} on {metrics['num_images']} images")
    print("wrote " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
