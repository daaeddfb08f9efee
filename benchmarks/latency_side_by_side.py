"""Latency of several .tflite models side by side: each timed in its own tflite_runtime-only process (as on a
device), in interleaved rounds so that a drifting shared CPU affects them alike; ratios to the first model.

    python benchmarks/latency_side_by_side.py ../shared/realfaces/labellers/face_landmark.tflite \
        real_fast_fp16.tflite real_student_fp16.tflite

Without models it times the model card's set: MediaPipe's face_landmark.tflite (where ../shared/realfaces holds
it) and every shipped .tflite.
"""
from __future__ import annotations

import glob
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, model_path, run  # noqa: E402
MEDIAPIPE = os.path.normpath(os.path.join(ROOT, "..", "shared", "realfaces", "labellers", "face_landmark.tflite"))


def default_models() -> list[str]:
    """The model card's latency table: MediaPipe's model first (the ratios' reference) where it is found, then
    every shipped .tflite, so that the card's bare command runs."""
    from landmark_kd.predictor import PRETRAINED_DIR

    return [MEDIAPIPE] * os.path.isfile(MEDIAPIPE) + sorted(glob.glob(os.path.join(PRETRAINED_DIR, "*.tflite")))


def main(argv: list[str] | None = None) -> int:
    from landmark_kd.cli import positive_int
    from landmark_kd.export.benchmark import measure_latency

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=model_path, help=".tflite files; the first is the reference of "
                        "the ratios (default: MediaPipe's face_landmark.tflite from ../shared/realfaces/labellers "
                        "where found, then the shipped .tflite files)")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads")
    parser.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds over all the models")
    parser.add_argument("--runs", type=positive_int, default=300, help="timed invocations per model and round")
    parser.add_argument("--warmup", type=positive_int, default=20, help="untimed invocations before each timing")
    args = parser.parse_args(argv)
    if not args.models:
        args.models = default_models()
        print("no models named: timing " + ", ".join(os.path.basename(m) for m in args.models))
    medians = {path: [] for path in args.models}
    for _ in range(args.rounds):
        for path in args.models:
            medians[path].append(measure_latency(path, args.threads, args.warmup, args.runs)["median"])
    reference = float(np.median(medians[args.models[0]]))
    print(f"| model | median of {args.rounds} rounds (ms, {args.threads} thread(s)) | per round | x {os.path.basename(args.models[0])} |")
    print("|---|---|---|---|")
    for path, values in medians.items():
        median = float(np.median(values))
        print(f"| {os.path.basename(path)} | {median:.3f} | {' / '.join(f'{v:.2f}' for v in values)} | {median / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
