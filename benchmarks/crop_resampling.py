"""How a face far larger than the model's crop should be resampled: bilinear sampling alone against
averaging pixel blocks first (`landmark_kd.crop.warp_square`, what `LandmarkDetector.resample` crops with).

A phone photo's face is often 10-20 times the 128 px crop, and bilinear sampling at under half scale reads a
few pixels per crop pixel: fine detail aliases and the sensor's noise stays at full strength. The real-face sets
here hold small faces, so each face is scaled up (`--scales`, bicubic) and given Gaussian noise (`--noise`, sigma
in 0-255 levels, drawn per face with a fixed seed) to stand for a high-resolution photo; both crops of the same
picture go to the same model, ground-truth box, inner-51 NME as `benchmarks/real_faces.py` scores it.

    python benchmarks/crop_resampling.py --models real_student_fp16.tflite --scales 1 6 10 --noise 0 4 8

Needs ../shared/realfaces (ytf68/val by default).
"""
from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from landmark_kd.cli import (ArgumentParser, existing_path, model_path, non_negative_float, positive_int,  # noqa: E402
                             refine_passes, run)
from landmark_kd.outputs import atomic_json  # noqa: E402

REALFACES = os.path.join(os.path.dirname(ROOT), "shared", "realfaces")


def scaled_face(image: np.ndarray, landmarks: np.ndarray, scale: int, noise: float, seed: int):
    """`image` scaled up `scale` times (bicubic) with Gaussian noise of sigma `noise`, and its landmarks there
    (pixel centres: x -> scale * x + (scale - 1) / 2)."""
    import cv2

    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else image
    if noise:
        grain = np.random.default_rng(seed).normal(0.0, noise, big.shape)
        big = np.clip(big + grain, 0, 255).astype(np.uint8)
    return big, landmarks * scale + (scale - 1) / 2.0


def bilinear_detector(detector):
    """The same detector, its crops sampled bilinearly from the full image (the resampling before warp_square)."""
    import cv2

    size = (detector.image_size, detector.image_size)
    detector.resample = lambda image, matrix: cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR,
                                                              borderMode=cv2.BORDER_CONSTANT)  # this instance only
    return detector


def crop_times(sides=(300, 800, 1500), repeats: int = 20, size: int = 128) -> list[dict]:
    """ms per crop of a face `side` px wide in a 4000 x 3000 photo (random pixels), bilinear alone and
    block-averaged first (warp_square); the median of `repeats` after one warm-up."""
    import time

    import cv2

    from landmark_kd.crop import box_crop_matrix, warp_square

    photo = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), np.uint8)
    rows = []
    for side in sides:
        matrix = box_crop_matrix([1000, 500, 1000 + side, 500 + side], size)
        row = {"side": side}
        for name, crop in (("bilinear", lambda: cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_LINEAR)),
                           ("area", lambda: warp_square(photo, matrix, size))):
            crop()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                crop()
                times.append(time.perf_counter() - start)
            row[f"{name}_ms"] = 1e3 * float(np.median(times))
        rows.append(row)
        print(f"crop of a {side} px face in a 4000x3000 photo: bilinear {row['bilinear_ms']:.2f} ms, "
              f"block-averaged first {row['area_ms']:.2f} ms", flush=True)
    return rows


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=model_path, default=["real_student_fp16.tflite"],
                        help="landmark models (a shipped model by file name)")
    parser.add_argument("--data", type=existing_path, default=os.path.join(REALFACES, "ytf68", "val"),
                        help="a 68-point set (default: ../shared/realfaces/ytf68/val)")
    parser.add_argument("--scales", nargs="+", type=positive_int, default=[1, 6, 10], help="upscaling factors")
    parser.add_argument("--noise", nargs="+", type=non_negative_float, default=[0.0, 4.0, 8.0],
                        help="noise sigmas (0-255 levels) added after upscaling")
    parser.add_argument("--every", type=positive_int, default=1, help="score every k-th face (a quicker run)")
    parser.add_argument("--refine", type=refine_passes, default=None,
                        help="refinement passes, 0 to 5 (default: the detector's own, 1 for 68 points)")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    from landmark_kd.inference import LandmarkDetector
    from landmark_kd.metrics import nme_inner51
    from real_faces import load_faces

    samples, images = load_faces(args.data)
    samples = samples[::args.every]
    rows = []
    for path in args.models:
        arms = {"area": LandmarkDetector(path, detector="full", threads=1, refine=args.refine)}
        arms["bilinear"] = bilinear_detector(LandmarkDetector(arms["area"].predictor, detector="full",
                                                              refine=args.refine))
        for scale in args.scales:
            for noise in args.noise:
                if scale == 1 and noise:
                    continue  # noise on the small faces themselves says nothing about resampling
                pred, truth = {name: [] for name in arms}, []
                for k, sample in enumerate(samples):
                    big, landmarks = scaled_face(images[sample.image_path], sample.landmarks, scale, noise, k)
                    box = [float(v) for v in (*landmarks.min(0), *landmarks.max(0))]  # real_faces' box, scaled
                    for name, detector in arms.items():
                        found = detector(big, [box])
                        pred[name].append((found[0].landmarks - (scale - 1) / 2.0) / scale)
                    truth.append(sample.landmarks)
                nme = {name: float(nme_inner51(np.stack(p), np.stack(truth)).mean()) for name, p in pred.items()}
                rows.append({"model": path, "scale": scale, "noise": noise, "faces": len(truth), **nme,
                             "ratio": nme["area"] / nme["bilinear"]})
                print(f"{os.path.basename(path)}  x{scale:<3d} noise {noise:<4g}  bilinear {100 * nme['bilinear']:.3f}%  "
                      f"block-averaged {100 * nme['area']:.3f}%  ({rows[-1]['ratio']:.3f}x)", flush=True)
    times = crop_times()
    if args.json:
        atomic_json(args.json, {"data": args.data, "rows": rows, "crop_ms": times})
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
