"""Landmarks on an image, a folder of images, or a video, from a .keras or .tflite model.

    python -m landmark_kd.predict photo.jpg                      # the shipped real-face student, no training
    python -m landmark_kd.predict photo.jpg --model runs/student/best.keras --out runs/predict
    python -m landmark_kd.predict clip.mp4 --model runs/export/student_best_int8.tflite --out runs/predict
"""
from __future__ import annotations

import json
import os
import sys
import time

from .quiet import quiet_unless_verbose

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def _progress(done: int, total: int | None, start: float, what: str) -> None:
    rate = done / max(time.time() - start, 1e-9)
    text = f"{what} {done}/{total}" if total else f"{what} {done}"
    end = "\r" if sys.stderr.isatty() else "\n"
    if sys.stderr.isatty() or total is None or done == total or done % max(1, (total or 1) // 10) == 0:
        print(f"  {text} ({rate:.1f}/s)", end=end if done != total else "\n", file=sys.stderr)


def _read_image(path: str):
    import cv2

    from .data.records import MAX_PIXELS, image_dimensions

    if not os.path.isfile(path):  # also refuses a named pipe, which would block the reader
        raise ValueError(f"{path}: not a regular file")
    with open(path, "rb") as handle:
        size = image_dimensions(handle.read(32), handle)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ValueError(f"{path}: image too large to decode ({size[0]}x{size[1]} pixels; the limit is "
                         f"{MAX_PIXELS / 1e6:.0f} million)")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image (missing, unreadable or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def predict_images(detector, paths: list[str], out_dir: str, boxes=None) -> dict:
    import cv2

    from .inference import draw_faces

    results, start = {}, time.time()
    for i, path in enumerate(paths, 1):
        try:
            image = _read_image(path)
            faces = detector(image, boxes)
            entry = {"faces": [f.to_dict() for f in faces]}
            if not faces:
                entry["message"] = "no face found"
            name = os.path.splitext(os.path.basename(path))[0] + "_landmarks.png"
            cv2.imwrite(os.path.join(out_dir, name), cv2.cvtColor(draw_faces(image, faces), cv2.COLOR_RGB2BGR))
            entry["annotated"] = os.path.join(out_dir, name)
        except ValueError as err:
            entry = {"faces": [], "error": str(err)}
            print(f"warning: {err}", file=sys.stderr)
        results[path] = entry
        if len(paths) > 1:
            _progress(i, len(paths), start, "images")
    return results


def predict_video(detector, path: str, out_dir: str, smooth: bool, boxes=None) -> dict:
    import cv2

    from .inference import OneEuroFilter, draw_faces

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot open video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    out_path = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + "_landmarks.mp4")
    writer = None
    filters: dict[int, OneEuroFilter] = {}
    frames, start, index = [], time.time(), 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        faces = detector(image, boxes)
        if smooth:  # one filter per face slot, in detection order (largest-score first)
            for k, face in enumerate(faces):
                face.landmarks = filters.setdefault(k, OneEuroFilter())(face.landmarks, 1.0 / fps)
        if writer is None:
            writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (image.shape[1], image.shape[0]))
        writer.write(cv2.cvtColor(draw_faces(image, faces), cv2.COLOR_RGB2BGR))
        frames.append({"frame": index, "faces": [f.to_dict() for f in faces]})
        index += 1
        _progress(index, total, start, "frames")
    capture.release()
    if writer is not None:
        writer.release()
    if index == 0:
        raise ValueError(f"{path}: video has no readable frames")
    return {path: {"frames": frames, "fps": fps, "smoothed": smooth, "annotated": out_path}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_unless_verbose(argv)
    from .cli import ArgumentParser, positive_int

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="an image, a folder of images, or a video")
    parser.add_argument("--model", default=None, help=".keras or .tflite landmark model (default: the shipped "
                        "real-face student, landmark_kd/pretrained/real_student_int8.tflite)")
    parser.add_argument("--out", default=os.path.join("runs", "predict"), help="output folder")
    parser.add_argument("--detector", default="haar", choices=("haar", "full"),
                        help="haar: OpenCV's face detector; full: the whole image is one face (pre-cropped input)")
    parser.add_argument("--box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="use this face box")
    parser.add_argument("--no-smooth", action="store_true", help="turn off One-Euro smoothing for video")
    parser.add_argument("--threads", type=positive_int, default=2, help="TFLite threads")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.box and not (args.box[2] > args.box[0] and args.box[3] > args.box[1]):
        parser.error(f"argument --box: X1 > X0 and Y1 > Y0 needed, got {' '.join(f'{v:g}' for v in args.box)}")
    from .cli import prepare_output_dir
    from .inference import LandmarkDetector

    if not os.path.exists(args.input):
        print(f"error: {args.input}: no such file or directory", file=sys.stderr)
        return 2
    try:
        detector = LandmarkDetector(args.model, args.detector, args.threads)
        prepare_output_dir(args.out)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    boxes = [args.box] if args.box else None
    try:
        if os.path.isdir(args.input):
            paths = sorted(os.path.join(args.input, f) for f in os.listdir(args.input) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not paths:
                raise ValueError(f"{args.input}: no images found")
            results = predict_images(detector, paths, args.out, boxes)
        elif args.input.lower().endswith(VIDEO_EXTENSIONS):
            results = predict_video(detector, args.input, args.out, not args.no_smooth, boxes)
        else:
            results = predict_images(detector, [args.input], args.out, boxes)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    json_path = os.path.join(args.out, "landmarks.json")
    with open(json_path, "w") as handle:
        json.dump({"model": detector.model_path, "scheme": detector.scheme.name, "results": results}, handle)
    faces = sum(len(r.get("faces", [])) for r in results.values() if "faces" in r)
    faces += sum(len(f["faces"]) for r in results.values() for f in r.get("frames", []))
    no_face = [p for p, r in results.items() if r.get("message") == "no face found"]
    print(f"{faces} face(s) found; landmarks in {json_path}; annotated output in {args.out}")
    for p in no_face:
        print(f"  no face found in {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
