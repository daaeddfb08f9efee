r"""Pseudo-label unlabelled face photos so they can be trained on: one 300-W `.pts` per image.

    python -m landmark_kd.pseudolabel PHOTOS/ --out data/pseudo --mesh-model face_landmark.tflite \
        --mesh-table mesh468_to_ibug68.json          # MediaPipe's Face Mesh as the labeller
    python -m landmark_kd.pseudolabel PHOTOS/ --out data/pseudo --model runs/teacher/best.keras

Each image is found with the face detector (the face nearest the image centre is kept, as in one-face
photo collections such as LFW), labelled, and written to `--out` as a copy of the image (a hard link where
possible; a symbolic link is followed) with a sibling `.pts`, keeping the folder structure, so `--train-data OUT`
reads it as a 300-W folder. Two images of one folder with the same name but another extension (a.jpg, a.png) get
their own names (a_1.png). Images training would skip (damaged, truncated, over 50 million pixels), unreadable
ones and those with no face are skipped, each with its reason, in `pseudolabel.json`; `pseudolabel_sheet.jpg`
shows up to 16 labelled faces with their points, to check the labels by eye (it has no `.pts`, so training does
not read it).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Callable

import numpy as np

from .data.records import IMAGE_EXTENSIONS, LoadReport, check_image_file, read_bgr
from .errors import ConfigError, DataError, MissingFileError, ModelFileError, OutputError
from .quiet import quiet_unless_verbose

Labeller = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]]  # (image, box) -> (points, score)
Detector = Callable[[np.ndarray], list[tuple[np.ndarray, float]]]  # image -> [(box, score)]

SUMMARY = "pseudolabel.json"  # the run's record; its presence marks a folder this tool wrote
SHEET = "pseudolabel_sheet.jpg"  # labelled faces with their points drawn, for checking by eye
SHEET_FACES, SHEET_CELL = 16, 256
DEFAULT_MIN_SCORE = 0.5


def list_images(root: str) -> list[str]:
    """Image files under `root` (recursively), sorted; `root` may also be a single image. The contact sheet of a
    folder this tool wrote is not a face, and is left out."""
    if os.path.isfile(root):
        return [root]
    found = []
    for folder, _, files in sorted(os.walk(root)):
        ours = SUMMARY in files
        found += [os.path.join(folder, f) for f in sorted(files)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not (ours and f == SHEET)]
    return found


def central_face(faces: list, shape: tuple[int, ...]) -> np.ndarray | None:
    """The detected box whose centre is nearest the image centre (None when there is none)."""
    if not faces:
        return None
    centre = np.array([shape[1], shape[0]], np.float32) / 2
    return min((np.asarray(b, np.float32) for b, _ in faces),
               key=lambda b: float(np.linalg.norm((b[:2] + b[2:]) / 2 - centre)))


def output_names(images: list[str], base: str) -> dict[str, str]:
    """Each image's path under the output folder (relative, its folder kept). The 300-W reader pairs `a.pts`
    with one image `a.*`, so the second of a.jpg and a.png in one folder is numbered (a_1.png) rather than
    having its label overwrite the first's; a number no other image of the folder uses (names compared
    ignoring case, for case-insensitive disks)."""
    stems: dict[str, set[str]] = {}
    for path in images:
        rel = os.path.relpath(path, base)
        stems.setdefault(os.path.dirname(rel), set()).add(os.path.splitext(os.path.basename(rel))[0].lower())
    names, given = {}, {}
    for path in images:
        rel = os.path.relpath(path, base)
        folder, (stem, ext) = os.path.dirname(rel), os.path.splitext(os.path.basename(rel))
        taken, name, k = given.setdefault(folder, set()), stem, 1
        while name.lower() in taken or (name != stem and name.lower() in stems[folder]):
            name, k = f"{stem}_{k}", k + 1
        taken.add(name.lower())
        names[path] = os.path.join(folder, name + ext)
    return names


def _place(src: str, dst: str) -> None:
    """`dst` as a hard link to (else a copy of) `src`'s file: a symbolic link is resolved first, as a relative
    one linked as such would point nowhere from the output folder."""
    src = os.path.realpath(src)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def pseudolabel(images: list[str], root: str, out_dir: str, label: Labeller, detect: Detector,
                min_score: float = DEFAULT_MIN_SCORE, result: dict | None = None) -> dict:
    """Label every image; `label(image, box) -> (points, score)`, `detect(image) -> [(box, score)]`. Returns the
    run's record: counts, each skipped image with its reason, the renamed ones, and (`labelled_points`) each
    written image with its points. The record is `result`, filled as the run goes, so that a caller whose run is
    stopped (Ctrl-C) can still say what was done."""
    from .cli import print_progress

    base = root if os.path.isdir(root) else os.path.dirname(root)
    names = output_names(images, base)
    renamed = [{"image": p, "written_as": n} for p, n in names.items() if n != os.path.relpath(p, base)]
    if renamed:
        print(f"note: {len(renamed)} image(s) share a name with another image of their folder (first: "
              f"{renamed[0]['image']}, written as {renamed[0]['written_as']}); listed in {SUMMARY}")
    report, labelled, start = LoadReport(), [], time.time()
    result = {} if result is None else result
    try:
        for i, path in enumerate(images, 1):
            reason = _label_one(path, os.path.join(out_dir, names[path]), label, detect, min_score, labelled)
            if reason:
                report.skip(path, reason)
            print_progress(i, len(images), start, "images", f"{len(labelled)} labelled")
    finally:  # also when stopped: the record then says how far the run got
        result.update(labelled=len(labelled), skipped=len(report.skipped), skipped_by_reason=report.reason_counts(),
                      skipped_files=[{"image": p, "reason": r} for p, r in report.skipped], renamed=renamed,
                      labelled_points=labelled)
    return result


def find_central_face(path: str, detect: Detector) -> tuple[np.ndarray, np.ndarray] | str:
    """(the RGB image, its central face's box), or why the photo is left out. Training's own image check comes
    first, so a file it would skip (truncated, damaged, too large) is neither labelled nor distilled on."""
    import cv2

    reason = check_image_file(path)
    if reason:
        return reason.removesuffix(f": {path}")
    image = read_bgr(path)
    if image is None:
        return "cannot read image (OpenCV cannot decode it)"
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    box = central_face(detect(image), image.shape)
    return "no face found" if box is None else (image, box)


def _label_one(path: str, dst: str, label, detect, min_score: float, labelled: list) -> str | None:
    """Label `path` into `dst` (+ `.pts`), appending (dst, points) to `labelled`; or the reason it is skipped."""
    from .data.pts300w import write_pts

    found = find_central_face(path, detect)
    if isinstance(found, str):
        return found
    image, box = found
    points, score = label(image, box)
    if not np.all(np.isfinite(points)):
        return "labeller gave non-finite points"
    if score < min_score:
        # the kind names the threshold; the score rounded down, so 0.9996 never reads as reaching --min-score 1
        return f"labeller confidence below --min-score {min_score:g}: {np.floor(score * 1000) / 1000:.3f}"
    _place(path, dst)
    write_pts(os.path.splitext(dst)[0] + ".pts", points)
    labelled.append((dst, np.asarray(points, np.float32)))
    return None


def write_sheet(out_dir: str, labelled: list, faces: int = SHEET_FACES) -> dict | None:
    """`out_dir/pseudolabel_sheet.jpg`: up to `faces` labelled faces, evenly spread over the run, each cut around
    its points with the points drawn (plots.overlay_grid), so a labeller's convention or a bad detector shows at a
    glance. Returns what the sheet shows (its file, the images in reading order), None with nothing labelled."""
    import cv2

    from .plots import overlay_grid

    if not labelled:
        return None
    picks = sorted({int(round(v)) for v in np.linspace(0, len(labelled) - 1, min(faces, len(labelled)))})
    crops, points, shown = [], [], []
    for index in picks:
        path, pts = labelled[index]
        image = read_bgr(path)
        if image is None:
            continue
        lo, hi = pts.min(0), pts.max(0)
        side = max(float(max(hi - lo)) * 1.4, 8.0)
        scale = SHEET_CELL / side
        shift = SHEET_CELL / 2 - scale * (lo + hi) / 2
        matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float32)
        crop = cv2.warpAffine(image, matrix, (SHEET_CELL, SHEET_CELL), flags=cv2.INTER_LINEAR)
        crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
        points.append(pts * scale + shift)
        shown.append(path)
    if not crops:
        return None
    path = os.path.join(out_dir, SHEET)
    overlay_grid(np.stack(crops), np.stack(points), None, path, columns=min(4, len(crops)))
    return {"file": path, "images": shown}


def _model_labeller(model_path: str, threads: int):
    from .inference import LandmarkDetector

    detector = LandmarkDetector(model_path, detector="full", threads=threads)
    if detector.scheme.num_points != 68:
        raise ModelFileError(f"{model_path}: a {detector.scheme.num_points}-point model; .pts pseudo-labels need 68")
    # the detector's box, then one more pass cropped around the first answer (LandmarkDetector's refinement)
    return lambda image, box: (detector(image, [box])[0].landmarks, 1.0)


def check_out_folder(out: str, overwrite: bool) -> None:
    """Refuse a non-empty --out: new labels would mix with an earlier run's (another labeller's .pts beside
    images this run skips). --overwrite empties it, and only a folder an earlier run wrote (its pseudolabel.json),
    so a mistyped --out never deletes someone's files."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"--out {out} is a file, not an output folder")
    if not os.path.isdir(out):
        return
    entries = sorted(os.listdir(out))
    if not entries:
        return
    if not overwrite:
        raise OutputError(f"--out {out} is not empty ({len(entries)} entries, e.g. {entries[0]}): new labels would "
                          "mix with what is there; choose a new folder, or pass --overwrite to replace an earlier "
                          "pseudolabel run's folder")
    if SUMMARY not in entries:
        raise OutputError(f"--out {out} holds files but no {SUMMARY}, so it is not an earlier pseudolabel run's "
                          "folder: --overwrite empties only those; choose a new folder")


def _empty(folder: str) -> None:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def skip_counts(by_reason: dict[str, int]) -> str:
    """`labeller confidence below --min-score 0.5` for one kind of skip (the count is said before it), else
    `2 no face found, 1 truncated JPEG`: each count before its reason, never after a number in the reason."""
    if len(by_reason) == 1:
        return next(iter(by_reason))
    return ", ".join(f"{n} {kind}" for kind, n in by_reason.items())


def main(argv: list[str] | None = None) -> int:
    """`python -m landmark_kd.pseudolabel`; exit 2 with one `error:` line for a problem the user can fix."""
    from .cli import run

    return run(_main, sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    quiet_unless_verbose(argv)
    from .cli import ArgumentParser, positive_int, unit_fraction, usable_cores, warn_if_oversubscribed

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", help="an image or a folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (images + .pts, a 300-W folder); must be new or "
                        "empty, and not the input folder, inside it, or above it")
    parser.add_argument("--overwrite", action="store_true", help="empty --out first when it holds an earlier "
                        f"pseudolabel run (its {SUMMARY}); any other non-empty folder is refused")
    parser.add_argument("--model", default=None, help="our .keras or .tflite 68-point model as the labeller (a shipped one "
                        "by its file name, e.g. real_student_fp16.tflite)")
    parser.add_argument("--mesh-model", default=None, help="MediaPipe face_landmark.tflite as the labeller")
    parser.add_argument("--mesh-table", default=None, help="mesh468_to_ibug68.json (needed with --mesh-model)")
    parser.add_argument("--min-score", type=unit_fraction, default=None, help="skip faces the mesh labeller is less "
                        f"sure of, 0 to 1 (default: {DEFAULT_MIN_SCORE}; --mesh-model only: --model gives no score)")
    parser.add_argument("--detector", choices=("blazeface", "haar"), default="blazeface",
                        help="face detector: BlazeFace's 68-landmark box (LandmarkDetector's, the framing the "
                             "labellers' crops expect) or OpenCV's Haar cascade")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for a .tflite labeller "
                        "(the mesh model, or --model as .tflite; default: 2, or 1 on a one-core machine)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and the TFLite "
                        "runtime's log output")
    args = parser.parse_args(argv)
    if args.threads is None:  # a second thread on a one-core machine makes the labeller many times slower
        args.threads = min(2, usable_cores())
    elif args.mesh_model:  # a --model .tflite says it itself, when it loads
        warn_if_oversubscribed(args.threads)
    from .outputs import atomic_json, prepare_output_dir, refuse_input_folder

    if not os.path.exists(args.images):
        raise MissingFileError(f"{args.images}: no such file or directory")
    if (args.model is None) == (args.mesh_model is None):
        raise ConfigError("pass exactly one labeller: --model PATH or --mesh-model PATH --mesh-table PATH")
    if args.mesh_model and not args.mesh_table:
        raise ConfigError("--mesh-model needs --mesh-table (the 468-to-68 vertex table)")
    if args.mesh_table and not args.mesh_model:  # --model gives 68 points itself: the table would be ignored
        raise ConfigError(f"--mesh-table {args.mesh_table} maps the mesh labeller's points (--mesh-model); --model "
                          "gives 68 points itself, so drop --mesh-table")
    if args.model and args.min_score is not None:
        raise ConfigError(f"--min-score {args.min_score}: only the mesh labeller (--mesh-model) gives a score; "
                          "--model labels every face found, so drop --min-score")
    source_folder = args.images if os.path.isdir(args.images) else os.path.dirname(os.path.abspath(args.images))
    refuse_input_folder(args.out, [source_folder], recursive=os.path.isdir(args.images), containing=True)
    images = list_images(args.images)
    if not images:
        raise DataError(f"{args.images}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    check_out_folder(args.out, args.overwrite)
    if args.mesh_model:
        from .mesh_labeller import MeshLabeller

        label = MeshLabeller(args.mesh_model, args.mesh_table, threads=args.threads).label
    else:
        label = _model_labeller(args.model, args.threads)
    from .inference import make_face_detector

    detect = make_face_detector(args.detector)
    if args.overwrite and os.path.isdir(args.out):
        _empty(args.out)  # only now: a bad flag or model above leaves the earlier run as it was
    prepare_output_dir(args.out)
    summary_path = os.path.join(args.out, SUMMARY)
    min_score = (DEFAULT_MIN_SCORE if args.min_score is None else args.min_score) if args.mesh_model else None
    # the labeller's file as predict and evaluate record theirs: a shipped model named bare is recorded where it is
    from .predictor import resolve_model_path

    labeller = os.path.abspath(args.mesh_model or resolve_model_path(args.model))
    record = {"labeller": labeller, "detector": args.detector, "images": args.images,
              "min_score": min_score}
    atomic_json(summary_path, {**record, "status": "running"})  # marks the folder as ours should the run stop
    print(f"labelling {len(images)} images from {args.images} (faces found by {args.detector})")
    result: dict = {}
    try:
        pseudolabel(images, args.images, args.out, label, detect, min_score or 0.0, result)
    except BaseException:  # Ctrl-C or a failure: what was labelled stays, and the record says how far it got
        result.pop("labelled_points", None)
        atomic_json(summary_path, {**record, "status": "interrupted", **result})
        raise
    labelled = result.pop("labelled_points")
    atomic_json(summary_path, {**record, "status": "done", **result})  # the labels are done, whatever the sheet does
    result["sheet"] = write_sheet(args.out, labelled)
    atomic_json(summary_path, {**record, "status": "done", **result})
    reasons = skip_counts(result["skipped_by_reason"])
    if not result["labelled"]:
        raise DataError(f"{args.images}: no image labelled, {result['skipped']} skipped ({reasons}); "
                        f"every skipped image and its reason: {summary_path}")
    print(f"{result['labelled']} images labelled, {result['skipped']} skipped{f' ({reasons})' if reasons else ''}; "
          f"300-W folder {args.out} (details in {summary_path}; labels drawn on {len(result['sheet']['images'])} "
          f"faces in {result['sheet']['file']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
