"""Do the models follow landmark dots drawn into a photo? Every photo of `../shared/realfaces/lfw_unlabeled`
carries an earlier annotation drawn into its pixels (a dark-green face box and small green landmark dots), and
the shipped models were trained partly on those photos (`lfw_mesh`, pseudo-labelled by MediaPipe): a model can
learn to put its points on the dots instead of reading the face.

Two measurements. `--marked FOLDER`: how many of its photos hold such marks (pixels whose green exceeds both
red and blue by more than 50; a clean photo has next to none), against each `--data` set's images. Then on each
labelled `--data` set: dots drawn at the ground truth shifted right by `--shift` of the outer-eye-corner distance,
in the LFW marks' green, in magenta and in a grey as dark as the green (controls), and none; per model the
inner-51 NME against the unshifted labels and the mean x shift of its inner-51 points from its own undotted
answer, in eye distances. A model that moves further toward green dots than toward the controls, and further than
MediaPipe's mesh (`--mesh`, which never saw the marks) does, learnt the marks.

    python benchmarks/drawn_marks.py --models real_student_fp16.tflite real_student_nokd.keras \
        --data ../shared/realfaces/ytf68/val --marked ../shared/realfaces/lfw_unlabeled \
        --mesh ../shared/realfaces/labellers/face_landmark.tflite ../shared/realfaces/labellers/mesh468_to_ibug68.json
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, existing_path, model_path, positive_float, positive_int, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402

DOTS = {"none": None, "green (the LFW marks')": (18, 116, 13), "magenta": (180, 30, 180),
        "grey, as dark as the green": (75, 75, 75)}  # RGB
GREEN_MARGIN = 50  # a marked pixel's green over max(red, blue)
MARKED_PIXELS = 200  # a photo with more such pixels counts as marked (LFW's: ~1,600 each)


def green_mark_pixels(rgb: np.ndarray) -> int:
    """Pixels whose green exceeds both red and blue by more than GREEN_MARGIN."""
    image = rgb.astype(np.int16)
    return int((image[..., 1] - np.maximum(image[..., 0], image[..., 2]) > GREEN_MARGIN).sum())


def draw_dots(rgb: np.ndarray, points: np.ndarray, colour) -> np.ndarray:
    """A copy of `rgb` with a filled radius-1 dot at each point."""
    import cv2

    out = rgb.copy()
    for x, y in np.round(points).astype(int):
        cv2.circle(out, (int(x), int(y)), 1, colour, -1)
    return out


def marked_share(paths: list[str], limit: int) -> tuple[int, int]:
    """(marked photos, photos read) among the first `limit` of `paths`."""
    from landmark_kd.data.records import read_bgr

    marked = read = 0
    for path in paths[:limit]:
        image = read_bgr(path)
        if image is None:
            continue
        read += 1
        marked += green_mark_pixels(image[..., ::-1]) > MARKED_PIXELS
    return marked, read


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=[], type=model_path, help="68-point .keras/.tflite models")
    parser.add_argument("--data", nargs="+", default=[], type=existing_path, help="68-point datasets")
    parser.add_argument("--marked", default=None, type=existing_path,
                        help="a folder of photos (searched recursively) to count marked photos in")
    parser.add_argument("--count-limit", type=positive_int, default=1000,
                        help="photos of each set to count (default 1000)")
    parser.add_argument("--shift", type=positive_float, default=0.08,
                        help="the dots' shift right of the labels, in outer-eye-corner distances (default 0.08)")
    parser.add_argument("--mesh", nargs=2, metavar=("MODEL", "TABLE"), type=existing_path, default=None,
                        help="MediaPipe's face_landmark.tflite and its 68-point table: a model that never saw the marks, "
                        "the control for how far any landmark model follows a dot")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.data and not args.marked:
        parser.error("nothing to measure: pass --data (a 68-point set) and/or --marked FOLDER")
    if (args.models or args.mesh) and not args.data:
        parser.error("--models are scored on --data: name a 68-point set, e.g. --data ../shared/realfaces/ytf68/val")
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from benchmarks.real_faces import landmark_box, load_faces
    from landmark_kd.data.records import IMAGE_EXTENSIONS
    from landmark_kd.inference import LandmarkDetector

    results: dict = {"shift": args.shift, "counts": {}, "sets": {}}
    faces = {data: load_faces(data) for data in args.data}
    if args.marked:
        photos = sorted(os.path.join(root, f) for root, _, files in os.walk(args.marked) for f in files
                        if f.lower().endswith(IMAGE_EXTENSIONS))
        results["counts"][args.marked] = marked_share(photos, args.count_limit)
    for data, (samples, _) in faces.items():
        results["counts"][data] = marked_share(sorted({s.image_path for s in samples}), args.count_limit)
    print(f"photos with over {MARKED_PIXELS} marked-green pixels:")
    for name, (marked, read) in results["counts"].items():
        print(f"  {name}: {marked} of {read} ({marked / max(read, 1):.1%})")

    detectors = {os.path.basename(m): (lambda d: lambda image, box: d(image, [box])[0].landmarks)(
        LandmarkDetector(m, "full", refine=0)) for m in args.models}
    if args.mesh:
        from landmark_kd.mesh_labeller import MeshLabeller

        mesh = MeshLabeller(*args.mesh, passes=1)
        detectors["MediaPipe (mesh -> 68; never saw the marks)"] = lambda image, box: mesh.label(image, box)[0]
    for data, (samples, images) in faces.items():
        table = results["sets"][data] = {}
        for name, predict in detectors.items():
            answers: dict = {colour: [] for colour in DOTS}
            eyes, truths = [], []
            for s in samples:
                truth = np.asarray(s.landmarks, np.float64)
                eye = float(np.linalg.norm(truth[36] - truth[45]))
                dots = truth + [args.shift * eye, 0.0]
                for colour, rgb in DOTS.items():
                    image = images[s.image_path] if rgb is None else draw_dots(images[s.image_path], dots, rgb)
                    answers[colour].append(predict(image, landmark_box(s)))
                eyes.append(eye)
                truths.append(truth)
            eyes, truths = np.asarray(eyes), np.stack(truths)
            plain = np.stack(answers["none"])
            table[name] = {}
            for colour in DOTS:
                pred = np.stack(answers[colour])
                nme = np.linalg.norm(pred[:, 17:] - truths[:, 17:], axis=2).mean(1) / eyes
                shift = (pred[:, 17:, 0] - plain[:, 17:, 0]).mean(1) / eyes
                table[name][colour] = {"nme": float(nme.mean()), "shift": float(shift.mean()),
                                       "shift_sem": float(shift.std(ddof=1) / np.sqrt(len(shift)))}
        print(f"\n{data} ({len(samples)} faces; dots {args.shift:g} eye distances right of the labels): inner-51 NME "
              "/ mean x shift toward the dots, in eye distances (± its standard error)")
        print("| model | " + " | ".join(DOTS) + " |")
        print("|---|" + "---|" * len(DOTS))
        for name, row in table.items():
            cells = [f"{row[c]['nme']:.2%}" + ("" if c == "none" else f" / {row[c]['shift']:+.4f} ± "
                                                                         f"{row[c]['shift_sem']:.4f}") for c in DOTS]
            print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        atomic_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
