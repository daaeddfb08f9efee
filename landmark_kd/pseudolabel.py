"""Pseudo-label unlabelled face photos so they can be trained on: one 300-W `.pts` per image.

    python -m landmark_kd.pseudolabel PHOTOS/ --out data/pseudo --mesh-model face_landmark.tflite \
        --mesh-table mesh468_to_ibug68.json          # MediaPipe's Face Mesh as the labeller
    python -m landmark_kd.pseudolabel PHOTOS/ --out data/pseudo --model runs/teacher/best.keras

Each image is found with the face detector (the face nearest the image centre is kept, as in one-face
photo collections such as LFW), labelled, and written to `--out` as a copy of the image (a hard link where
possible) with a sibling `.pts`, keeping the folder structure, so `--train-data OUT` reads it as a 300-W
folder. Unreadable images and images with no face are skipped and counted in `pseudolabel.json`.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

import numpy as np

from .data.records import IMAGE_EXTENSIONS, read_bgr
from .errors import ConfigError, DataError, MissingFileError, ModelFileError
from .quiet import quiet_unless_verbose


def list_images(root: str) -> list[str]:
    """Image files under `root` (recursively), sorted; `root` may also be a single image."""
    if os.path.isfile(root):
        return [root]
    found = []
    for folder, _, files in sorted(os.walk(root)):
        found += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def central_face(faces: list, shape: tuple[int, ...]) -> np.ndarray | None:
    """The detected box whose centre is nearest the image centre (None when there is none)."""
    if not faces:
        return None
    centre = np.array([shape[1], shape[0]], np.float32) / 2
    return min((np.asarray(b, np.float32) for b, _ in faces),
               key=lambda b: float(np.linalg.norm((b[:2] + b[2:]) / 2 - centre)))


def _place(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def pseudolabel(images: list[str], root: str, out_dir: str, label, detect, min_score: float = 0.5) -> dict:
    """Label every image; `label(image, box) -> (points, score)`, `detect(image) -> [(box, score)]`."""
    import cv2

    from .data.pts300w import write_pts

    written, skipped, start = 0, [], time.time()
    base = root if os.path.isdir(root) else os.path.dirname(root)
    for i, path in enumerate(images, 1):
        image = read_bgr(path)
        if image is None:
            skipped.append((path, "cannot read image"))
            continue
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        box = central_face(detect(image), image.shape)
        if box is None:
            skipped.append((path, "no face found"))
            continue
        points, score = label(image, box)
        if score < min_score or not np.all(np.isfinite(points)):
            skipped.append((path, f"labeller confidence {score:.2f} < {min_score}"))
            continue
        rel = os.path.relpath(path, base)
        dst = os.path.join(out_dir, rel)
        _place(path, dst)
        write_pts(os.path.splitext(dst)[0] + ".pts", points)
        written += 1
        if i % 500 == 0 or i == len(images):
            print(f"  {i}/{len(images)} images, {written} labelled ({i / (time.time() - start):.0f}/s)", flush=True)
    return {"labelled": written, "skipped": len(skipped), "skipped_files": [{"image": p, "reason": r} for p, r in skipped]}


def _model_labeller(model_path: str, threads: int):
    from .inference import LandmarkDetector

    detector = LandmarkDetector(model_path, detector="full", threads=threads)
    if detector.scheme.num_points != 68:
        raise ModelFileError(f"{model_path}: a {detector.scheme.num_points}-point model; .pts pseudo-labels need 68")
    # the detector's box, then one more pass cropped around the first answer (LandmarkDetector's refinement)
    return lambda image, box: (detector(image, [box])[0].landmarks, 1.0)


def main(argv: list[str] | None = None) -> int:
    """`python -m landmark_kd.pseudolabel`; exit 2 with one `error:` line for a problem the user can fix."""
    from .cli import run

    return run(_main, sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    quiet_unless_verbose(argv)
    from .cli import ArgumentParser, positive_int

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", help="an image or a folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (images + .pts, a 300-W folder)")
    parser.add_argument("--model", default=None, help="our .keras or .tflite 68-point model as the labeller")
    parser.add_argument("--mesh-model", default=None, help="MediaPipe face_landmark.tflite as the labeller")
    parser.add_argument("--mesh-table", default=None, help="mesh468_to_ibug68.json (needed with --mesh-model)")
    parser.add_argument("--min-score", type=float, default=0.5, help="skip faces the mesh labeller is less sure of")
    parser.add_argument("--detector", choices=("blazeface", "haar"), default="blazeface",
                        help="face detector: BlazeFace's 68-landmark box (LandmarkDetector's, the framing the "
                             "labellers' crops expect) or OpenCV's Haar cascade")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    from .outputs import prepare_output_dir, refuse_input_folder

    if not os.path.exists(args.images):
        raise MissingFileError(f"{args.images}: no such file or directory")
    if (args.model is None) == (args.mesh_model is None):
        raise ConfigError("pass exactly one labeller: --model PATH or --mesh-model PATH --mesh-table PATH")
    source_folder = args.images if os.path.isdir(args.images) else os.path.dirname(os.path.abspath(args.images))
    refuse_input_folder(args.out, [source_folder], recursive=os.path.isdir(args.images))
    if args.mesh_model:
        from .mesh_labeller import MeshLabeller

        if not args.mesh_table:
            raise ConfigError("--mesh-model needs --mesh-table (the 468-to-68 vertex table)")
        labeller = MeshLabeller(args.mesh_model, args.mesh_table, threads=args.threads)
        label = labeller.label
    else:
        label = _model_labeller(args.model, args.threads)
    images = list_images(args.images)
    if not images:
        raise DataError(f"{args.images}: no images found")
    prepare_output_dir(args.out)
    from .inference import make_face_detector

    print(f"labelling {len(images)} images from {args.images} (faces found by {args.detector})")
    result = pseudolabel(images, args.images, args.out, label, make_face_detector(args.detector), args.min_score)
    result["labeller"], result["detector"] = args.mesh_model or args.model, args.detector
    with open(os.path.join(args.out, "pseudolabel.json"), "w") as handle:
        json.dump(result, handle, indent=1)
    print(f"{result['labelled']} images labelled, {result['skipped']} skipped; 300-W folder {args.out} "
          f"(details in {os.path.join(args.out, 'pseudolabel.json')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
