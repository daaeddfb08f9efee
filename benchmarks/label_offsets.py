"""Where each model's answers sit, on average, against each set's labels: the mean signed offset (x, y) of the
inner 51 points, in % of the outer-eye-corner distance, face box from the ground truth, cropped once. Label sets
differ in convention (0- or 1-based pixels, whole-pixel rounding, where a point sits on an edge); a shared offset
of every model, the independent MediaPipe labeller included, against one set is that set's convention.

This is how the ytf68 .pts files came to be read as 300-W's 1-based ones although ../shared/realfaces/README.md
calls its coordinates 0-based: read so, they agree with MediaPipe's mesh and with dlib's human-checked faces to
within a pixel's fraction; read 0-based, they would sit a whole pixel (2.4% of the eye distance) right of and
below both.

    python benchmarks/label_offsets.py --models landmark_kd/pretrained/real_student_fp16.tflite \
        --data ../shared/realfaces/ytf68/val ../shared/realfaces/dlib_faces/faces.json \
        --mesh ../shared/realfaces/labellers/face_landmark.tflite ../shared/realfaces/labellers/mesh468_to_ibug68.json
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, existing_path, model_path, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402


def mean_offset(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(x, y) mean signed offset of the inner 51 of 68 points, per face in units of its outer-eye-corner distance,
    averaged over the faces: `pred` and `truth` are (F, 68, 2)."""
    eye = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=1)
    return ((pred[:, 17:] - truth[:, 17:]).mean(1) / eye[:, None]).mean(0)


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, type=model_path, help="68-point .keras/.tflite models")
    parser.add_argument("--data", nargs="+", required=True, type=existing_path, help="68-point datasets")
    parser.add_argument("--mesh", nargs=2, metavar=("MODEL", "TABLE"), type=existing_path, default=None,
                        help="MediaPipe's face_landmark.tflite and its 68-point table: the independent labeller")
    parser.add_argument("--one-pixel", action="store_true",
                        help="also say what one pixel is in %% of the eye distance on each set (the median face)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from benchmarks.real_faces import landmark_box, load_faces
    from landmark_kd.inference import LandmarkDetector

    predictors = {os.path.basename(m): LandmarkDetector(m, "full", refine=0) for m in args.models}
    predictors = {name: (lambda d: lambda image, box: d(image, [box])[0].landmarks)(d) for name, d in predictors.items()}
    if args.mesh:
        from landmark_kd.mesh_labeller import MeshLabeller

        mesh = MeshLabeller(*args.mesh, passes=1)
        predictors["MediaPipe (mesh -> 68)"] = lambda image, box: mesh.label(image, box)[0]
    results = {}
    for data in args.data:
        samples, images = load_faces(data)
        truth = np.stack([s.landmarks for s in samples])
        pixel = 1 / float(np.median(np.linalg.norm(truth[:, 36] - truth[:, 45], axis=1)))
        results[data] = {"faces": len(samples), "one_pixel": pixel}
        for name, predict in predictors.items():
            pred = np.stack([predict(images[s.image_path], landmark_box(s)) for s in samples])
            results[data][name] = mean_offset(pred, truth).tolist()
    print("mean signed offset of the inner 51 points from the labels, x / y, % of the outer-eye-corner distance")
    def name_of(path: str) -> str:  # "ytf68/val", "dlib_faces/faces.json": a set's folder and name
        parts = os.path.normpath(path).split(os.sep)
        return "/".join(parts[-2:])

    print("| model | " + " | ".join(f"{name_of(d)} ({results[d]['faces']})" for d in args.data) + " |")
    print("|---|" + "---|" * len(args.data))
    for name in predictors:
        print(f"| {name} | " + " | ".join(f"{results[d][name][0] * 100:+.2f} / {results[d][name][1] * 100:+.2f}"
                                         for d in args.data) + " |")
    if args.one_pixel:
        print("| one pixel (median face) | " + " | ".join(f"{results[d]['one_pixel'] * 100:.2f}" for d in args.data)
              + " |")
    if args.json:
        atomic_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
