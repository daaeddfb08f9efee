"""Does turning the crop upright help on tilted faces? ytf68/val faces rolled by +-D degrees (alternating signs,
about the face centre), found by the detector, scored three ways: no alignment, the crop turned by BlazeFace's
eye keypoints (`LandmarkDetector(align=True, refine=0)`), and then one more pass cropped around the first
answer and turned by its eye line (`refine=1`, the default), and that with the detector also run on the image
turned by quarter turns (`any_angle=True`). Inner-51 NME over the outer-eye-corner distance, FR = share above
10%.

    python benchmarks/rotation_alignment.py --data ../shared/realfaces/ytf68/val --every 3
"""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, existing_path, finite_float, model_path, positive_int, run  # noqa: E402
from landmark_kd.metrics import failure_rate  # noqa: E402


def rolled(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image padded by half its size and turned by `degrees` about the face centre, with its points; at 0
    degrees the image as it is (padding would shrink small faces in the detector's input)."""
    if degrees == 0:
        return image, points
    pad = max(image.shape[:2]) // 2
    image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
    centre = points.mean(0) + pad
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    out = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]))
    return out, (points + pad) @ matrix[:, :2].T + matrix[:, 2]


def score_cells(errors: list[float]) -> str:
    """`mean | median | FR` of the faces found; `n/a` when none was (numpy would warn and print nan%)."""
    if not errors:
        return "n/a | n/a | n/a"
    e = np.asarray(errors)
    return f"{e.mean() * 100:.2f}% | {np.median(e) * 100:.2f}% | {failure_rate(e) * 100:.1f}%"


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, type=model_path,
                        help="landmark model (default: the shipped student)")
    parser.add_argument("--data", required=True, type=existing_path, help="a 68-point dataset")
    parser.add_argument("--every", type=positive_int, default=1, help="use every N-th face")
    parser.add_argument("--degrees", type=finite_float, nargs="+", default=[0, 20, 40, 60, 90, 135, 180],
                        help="rolls to test, each applied as +D and -D to alternate faces")
    args = parser.parse_args(argv)
    from landmark_kd.data import load_dataset
    from landmark_kd.metrics import nme_inner51
    from landmark_kd.inference import LandmarkDetector

    samples = load_dataset(args.data, num_points=68)[0][:: args.every]
    first = LandmarkDetector(args.model, threads=1, align=False, refine=0)
    detectors = {"off": first, "keypoints": LandmarkDetector(first.predictor, threads=1, align=True, refine=0),
                 "keypoints + refine": LandmarkDetector(first.predictor, threads=1, align=True, refine=1),
                 "any angle + refine": LandmarkDetector(first.predictor, threads=1, refine=1, any_angle=True)}
    print("| roll | align | mean NME | median NME | FR | faces not found |\n|---|---|---|---|---|---|")
    for degrees in args.degrees:
        errors, missed = {name: [] for name in detectors}, {name: 0 for name in detectors}
        for k, sample in enumerate(samples):
            image = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
            image, gt = rolled(image, sample.landmarks, degrees if k % 2 else -degrees)
            reach = 0.5 * float(np.max(gt.max(0) - gt.min(0)))
            for align, detector in detectors.items():
                # the face found is the one whose landmarks centre nearest the truth's, within half the face's size
                faces = [f for f in detector(image) if np.linalg.norm(f.landmarks.mean(0) - gt.mean(0)) < reach]
                if not faces:
                    missed[align] += 1
                    continue
                face = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - gt.mean(0)))
                errors[align].append(nme_inner51(face.landmarks[None], gt[None])[0])
        for align in detectors:
            print(f"| ±{degrees:g}° | {align} | {score_cells(errors[align])} | {missed[align]} of {len(samples)} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
