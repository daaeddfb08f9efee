"""How much a landmark model's answer depends on the face box it is given. Face detectors and datasets each box a
face their own way; the models were trained on crops around the 68 points' own box. Each face of a 68-point set
gets boxes in several conventions made from its ground truth (and the dataset's own box where it has one), and
the model answers from each, cropped once (`--refine 0`) and refined (LandmarkDetector's default for a given
box). Error: inner-51 NME over the outer-eye-corner distance, as benchmarks/real_faces.py.

    python benchmarks/box_conventions.py --model landmark_kd/pretrained/real_student_fp16.tflite \
        --data ../shared/realfaces/ytf68/val ../shared/realfaces/dlib_faces/faces.json
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, existing_path, model_path, non_negative_int, positive_int, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402

CONVENTIONS = {
    "landmarks": "the 68 points' box (the training framing)",
    "smaller": "0.8x that box",
    "larger": "1.25x that box",
    "higher": "moved up by 15% of its height",
    "forehead": "forehead included (top raised by a quarter of the height)",
    "dataset": "the dataset's own box",
}


def box_conventions(landmark_box, dataset_box=None) -> dict:
    """Boxes (x0, y0, x1, y1) for one face by convention name (CONVENTIONS), from its 68 points' box and, where
    the dataset has one, its own box."""
    x0, y0, x1, y1 = (float(v) for v in landmark_box)
    w, h, cx, cy = x1 - x0, y1 - y0, (x0 + x1) / 2, (y0 + y1) / 2

    def scaled(factor: float) -> list[float]:
        return [cx - factor * w / 2, cy - factor * h / 2, cx + factor * w / 2, cy + factor * h / 2]

    boxes = {"landmarks": [x0, y0, x1, y1], "smaller": scaled(0.8), "larger": scaled(1.25),
             "higher": [x0, y0 - 0.15 * h, x1, y1 - 0.15 * h], "forehead": [x0, y0 - 0.25 * h, x1, y1]}
    if dataset_box is not None:
        boxes["dataset"] = [float(v) for v in dataset_box]
    return boxes


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=model_path, help="a 68-point .keras or .tflite model")
    parser.add_argument("--data", nargs="+", required=True, type=existing_path,
                        help="68-point datasets (any format load_dataset reads)")
    parser.add_argument("--refine", nargs="+", type=non_negative_int, default=[0, 1], metavar="N",
                        help="refinement passes to compare (default: 0 1)")
    parser.add_argument("--threads", type=positive_int, default=1, help="TFLite / TensorFlow threads")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from benchmarks.real_faces import landmark_box, load_faces
    from landmark_kd.errors import ConfigError
    from landmark_kd.inference import LandmarkDetector
    from landmark_kd.metrics import nme_inner51

    detectors = {n: LandmarkDetector(args.model, "full", threads=args.threads, refine=n) for n in args.refine}
    if detectors[args.refine[0]].scheme.num_points != 68:
        raise ConfigError(f"{args.model}: a {detectors[args.refine[0]].scheme.num_points}-point model; the "
                          "inner-51 error needs 68 points")
    results = {}
    for data in args.data:
        samples, images = load_faces(data)
        truth = np.stack([s.landmarks for s in samples])
        boxes = [box_conventions(landmark_box(s), s.bbox) for s in samples]
        names = [n for n in CONVENTIONS if all(n in b for b in boxes)]
        for n, detector in detectors.items():
            for name in names:
                pred = np.stack([detector(images[s.image_path], [b[name]])[0].landmarks
                                 for s, b in zip(samples, boxes)])
                errors = nme_inner51(pred, truth)
                results.setdefault(data, {}).setdefault(name, {})[n] = {
                    "mean": float(errors.mean()), "median": float(np.median(errors)), "faces": len(errors)}
    columns = [(d, n) for d in args.data for n in args.refine]
    print(f"{args.model}: inner-51 mean NME by the box it is given")
    print("| box given | " + " | ".join(f"{os.path.basename(os.path.normpath(d))}, refine {n}" for d, n in columns)
          + " |")
    print("|---|" + "---|" * len(columns))
    for name, text in CONVENTIONS.items():
        cells = [f"{results[d][name][n]['mean'] * 100:.2f}%" if name in results[d] else "-" for d, n in columns]
        if any(cell != "-" for cell in cells):
            print(f"| {text} | " + " | ".join(cells) + " |")
    if args.json:
        atomic_json(args.json, {"model": args.model, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
