"""Does a local decode beat the models' own? Each .keras model's fused heatmaps on real faces, decoded two ways:
the full normalised weighted mean (`SoftArgmax`, what the graph and L_STAR use) and the weighted mean in a
window around each peak (`decode.local_soft_argmax`, for radii given by --radius). Crops, boxes and the error
are those of `benchmarks/real_faces.py` (inner-51 NME over the outer-eye-corner distance); printed per model and
set: mean and median NME, and the large-pose median (|yaw index| >= 0.5). The full decode is checked against the
model's own landmarks first, so the comparison is of decoders and not of pipelines.

    python benchmarks/heatmap_decoding.py --models landmark_kd/pretrained/real_student.keras \
        --data ../shared/realfaces/ytf68/val ../shared/realfaces/dlib_faces/faces.json
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, existing_path, model_path, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402

FULL = "full (the model's)"


def heatmaps_on_faces(detector, samples, images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, H, W, N) fused heatmaps, (M, N, 2) the model's own crop-pixel landmarks and (M, 2, 3) image -> crop
    matrices, one face per sample, cropped as LandmarkDetector crops them."""
    from benchmarks.real_faces import landmark_box

    heatmaps, landmarks, affines = [], [], []
    for s in samples:
        crops, affine = detector.crops_for_boxes(images[s.image_path], [landmark_box(s)])
        out = detector.predictor.model(crops, training=False)
        heatmaps.append(np.asarray(out["heatmaps"], np.float32))
        landmarks.append(np.asarray(out["landmarks"], np.float32))
        affines.append(affine)
    return np.concatenate(heatmaps), np.concatenate(landmarks), np.concatenate(affines)


def decodings(heatmaps: np.ndarray, image_size: int, radii) -> dict[str, np.ndarray]:
    """Crop-pixel landmarks from each decoder, by name."""
    from landmark_kd.decode import heatmap_to_pixels, local_soft_argmax, soft_argmax

    stride = image_size // heatmaps.shape[2]
    found = {FULL: heatmap_to_pixels(soft_argmax(heatmaps), stride)}
    for r in radii:
        found[f"local, radius {r}"] = heatmap_to_pixels(local_soft_argmax(heatmaps, r), stride)
    return found


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, type=model_path,
                        help=".keras 68-point landmark models")
    parser.add_argument("--data", nargs="+", required=True, type=existing_path,
                        help="68-point datasets (any format load_dataset reads)")
    parser.add_argument("--radius", nargs="+", type=int, default=[2, 3, 4, 6], help="window radii, heatmap cells")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if any(not m.endswith(".keras") for m in args.models):
        parser.error("--models: .keras files only (a .tflite gives landmarks, not heatmaps)")
    if any(r < 1 for r in args.radius):
        parser.error(f"--radius {args.radius}: radii must be at least 1")
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from benchmarks.real_faces import load_faces
    from landmark_kd.decode import crop_to_image
    from landmark_kd.inference import LandmarkDetector
    from landmark_kd.metrics import nme_inner51, pose_groups

    detectors = {path: LandmarkDetector(path, detector="full") for path in args.models}
    sets = {data: load_faces(data) for data in args.data}  # each set's "N faces" line before the table
    results = {}
    print("| model | set | decode | mean NME | median NME | large-pose median |\n|---|---|---|---|---|---|")
    for data, (samples, images) in sets.items():
        gt = np.stack([s.landmarks for s in samples])
        large = pose_groups(gt)["large_pose"]
        for path, detector in detectors.items():
            heatmaps, own, affines = heatmaps_on_faces(detector, samples, images)
            found = decodings(heatmaps, detector.image_size, args.radius)
            gap = float(np.abs(found[FULL] - own).max())
            if gap > 1e-2:
                raise SystemExit(f"{path}: the full decode is {gap:.3f} px from the model's own landmarks; is its "
                                 "landmarks output the soft-argmax of its heatmaps?")
            for name, points in found.items():
                errors = nme_inner51(crop_to_image(points, affines), gt)
                row = {"mean": float(errors.mean()), "median": float(np.median(errors)),
                       "large_pose_median": float(np.median(errors[large])) if large.any() else None,
                       "faces": len(errors), "large_pose_faces": int(large.sum())}
                results.setdefault(path, {}).setdefault(data, {})[name] = row
                lp = "-" if row["large_pose_median"] is None else f"{row['large_pose_median'] * 100:.2f}%"
                print(f"| {os.path.basename(path)} | {os.path.basename(os.path.normpath(data))} | {name} | "
                      f"{row['mean'] * 100:.2f}% | {row['median'] * 100:.2f}% | {lp} |", flush=True)
    if args.json:
        atomic_json(args.json, results)
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
