"""Aligned face chips on real faces: how far a chip made from a model's landmarks places the face from the chip
its ground-truth landmarks make (`landmark_kd.face_chips`, ArcFace's 112 x 112 reference points).

What a face recogniser sees is the chip, so the error that matters is in chip pixels: each face's five reference
points (eye centres, nose tip, mouth corners) of the ground truth, mapped by the chip matrix of the predicted
landmarks, against where the ground truth's own chip matrix puts them; also the chip's turn (degrees) and scale
(percent) against the ground truth's. Face boxes from the ground truth; each model as `LandmarkDetector` runs it
with that box (refined once, its default). MediaPipe's mesh, mapped to 68 points, is one more row with --mesh.

    python benchmarks/face_chips.py --models real_student_fp16.tflite real_fast_fp16.tflite \\
        --mesh ../shared/realfaces/labellers/face_landmark.tflite ../shared/realfaces/labellers/mesh468_to_ibug68.json

Needs ../shared/realfaces (ytf68/val and dlib_faces by default).
"""
from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, chip_size, existing_path, model_path, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402

REALFACES = os.path.join(os.path.dirname(ROOT), "shared", "realfaces")


def chip_errors(predicted: np.ndarray, truth: np.ndarray, size: int = 112) -> dict:
    """Per face: mean displacement (chip pixels) of the truth's five points between the predicted and the true
    chip, and the predicted chip's turn (degrees) and scale error (percent) against the true one."""
    from landmark_kd.face_chips import chip_matrix, chip_points, five_points

    shift, turn, scale = [], [], []
    for pred, gt in zip(predicted, truth):
        m_pred, m_gt = chip_matrix(pred, "68", size), chip_matrix(gt, "68", size)
        five = five_points(gt, "68")
        shift.append(np.linalg.norm(chip_points(five, m_pred) - chip_points(five, m_gt), axis=1).mean())
        relative = m_pred[:, :2] @ np.linalg.inv(m_gt[:, :2])  # a scaled rotation: the chips' difference
        turn.append(np.degrees(np.arctan2(relative[1, 0], relative[0, 0])))
        scale.append(100 * (np.sqrt(np.linalg.det(relative)) - 1))
    return {"shift_px": np.array(shift), "turn_deg": np.abs(turn), "scale_pct": np.abs(scale)}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["real_student_fp16.tflite"], type=model_path,
                        help="68-point .keras/.tflite models (shipped names work)")
    parser.add_argument("--data", nargs="*", type=existing_path, default=[
        os.path.join(REALFACES, "ytf68", "val"), os.path.join(REALFACES, "dlib_faces", "faces.json")],
        help="68-point real-face sets")
    parser.add_argument("--mesh", nargs=2, default=None, metavar=("TFLITE", "TABLE"),
                        help="also MediaPipe's face_landmark.tflite and its 68-point table")
    parser.add_argument("--size", type=chip_size, default=112, help="chip side (default 112, ArcFace's)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from benchmarks.real_faces import landmark_box, load_faces
    from landmark_kd.inference import LandmarkDetector

    predictors = {os.path.basename(p): LandmarkDetector(p, "full") for p in args.models}
    if args.mesh:
        from landmark_kd.mesh_labeller import MeshLabeller

        predictors["MediaPipe mesh"] = MeshLabeller(*args.mesh)
    results = {}
    for data in args.data:
        samples, images = load_faces(data)
        truth = np.stack([s.landmarks for s in samples]).astype(np.float64)
        name = os.path.relpath(data, REALFACES) if data.startswith(REALFACES) else data
        print(f"\n{name}: {len(samples)} faces, {args.size} px chips; mean over faces (95th percentile)")
        print("| landmarks from | five points' shift, chip px | turn, degrees | scale error, % |")
        print("|---|---|---|---|")
        results[name] = {}
        for label, predictor in predictors.items():
            if isinstance(predictor, LandmarkDetector):
                pred = [predictor(images[s.image_path], [landmark_box(s)])[0].landmarks for s in samples]
            else:
                pred = [predictor.label(images[s.image_path], landmark_box(s))[0] for s in samples]
            errors = chip_errors(np.stack(pred).astype(np.float64), truth, args.size)
            print(f"| {label} | " + " | ".join(f"{v.mean():.2f} ({np.percentile(v, 95):.2f})" for v in errors.values())
                  + " |")
            results[name][label] = {k: {"mean": float(v.mean()), "p95": float(np.percentile(v, 95))}
                                    for k, v in errors.items()}
    if args.json:
        atomic_json(args.json, {"size": args.size, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
