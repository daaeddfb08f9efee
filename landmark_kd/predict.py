"""Landmarks on an image, a folder of images, or a video, from a .keras or .tflite model.

    python -m landmark_kd.predict photo.jpg                      # the shipped real-face student, no training
    python -m landmark_kd.predict photo.jpg --model runs/student/best.keras --out runs/predict
    python -m landmark_kd.predict clip.mp4 --model runs/export/student_best_int8.tflite --out runs/predict
    python -m landmark_kd.predict --camera 0                     # live: a window, or an .mp4 without a display
    python -m landmark_kd.predict photos/ --chips 112            # also each face aligned for a face recogniser
    python -m landmark_kd.predict shots/*.jpg more_photos/       # several images and folders

Video and camera frames are tracked (landmark_kd/tracking.py): each face is followed through its landmarks and the
face detector runs every --redetect-every frames or when a face looks lost; --no-track runs it on every frame.
"""
from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Callable, Sequence

from .cli import print_progress as _progress
from .data.records import IMAGE_EXTENSIONS
from .errors import ConfigError, DataError, MissingFileError, OutputError
from .frame_log import FrameLog, write_results_json
from .outputs import atomic_bytes
from .quiet import quiet_unless_verbose

if TYPE_CHECKING:  # cv2, numpy and the detector load when a command runs, not for --help
    import cv2
    import numpy as np

    from .inference import LandmarkDetector

Boxes = Sequence[Sequence[float]]  # face boxes (x0, y0, x1, y1) in the image's pixels, the same for every image

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


# OpenCV's JPEG decoding at 1/2, 1/4 or 1/8 size (libjpeg scales the DCT): a photo over MAX_PIXELS is read so
REDUCED_JPEG = {2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


def _reduced_jpeg(path: str, size: tuple[int, int] | None):
    """(RGB image, k) of a JPEG too large to decode whole (a 108 or 200 MP phone photo), read at 1/k size with
    k the least of 2, 4, 8 that brings it under MAX_PIXELS; None for other files or sizes. A face filling such a
    photo is still hundreds of pixels across, far more than the model's crop."""
    import cv2

    from .data.records import MAX_PIXELS, read_bgr

    with open(path, "rb") as handle:
        if handle.read(3) != b"\xff\xd8\xff" or size is None:
            return None
    k = next((k for k in REDUCED_JPEG if size[0] * size[1] / (k * k) <= MAX_PIXELS), None)
    image = read_bgr(path, getattr(cv2, REDUCED_JPEG[k])) if k else None
    if image is None:
        return None
    print(f"note: {path}: {size[0]}x{size[1]} pixels, over the {MAX_PIXELS / 1e6:.0f} million decoded whole: read at "
          f"1/{k} size; landmarks and boxes are given in the full photo's pixels (its annotated image is 1/{k} size: "
          f"\"annotated_scale\" in landmarks.json)", file=sys.stderr)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), k


def _read_image(path: str):
    """(RGB image, k): k is 1, or the factor a JPEG too large to decode whole was shrunk by (`_reduced_jpeg`)."""
    import cv2

    from .data.records import inspect_image_file, read_bgr

    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if not os.path.isfile(path):  # also refuses a named pipe, which would block the reader
        raise DataError(f"{path}: not a regular file")
    reason, size = inspect_image_file(path)
    reason = reason or ""
    if reason.startswith("image too large"):
        reduced = _reduced_jpeg(path, size)
        if reduced is not None:
            return reduced
    if reason.startswith(("image too large", "truncated", "damaged", "image is empty")):
        # too large: refused before decoding. Truncated or damaged: OpenCV would decode what is there and fill the
        # rest with grey, and the landmarks of a half-grey face would be given as if it were whole; training skips
        # such files for the same reason (other formats OpenCV reads, which check_image_file does not know, are
        # left to it)
        raise DataError(f"{path}: {reason.removesuffix(f': {path}')}")
    image = read_bgr(path)
    if image is None:
        raise DataError(f"{path}: cannot read image (missing, unreadable or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 1


def _scaled_boxes(boxes, k: int):
    """--box (full-photo pixels) in a photo read at 1/k size: pixel centres x -> (x - (k - 1) / 2) / k."""
    return boxes if boxes is None or k == 1 else [[(v - (k - 1) / 2) / k for v in box] for box in boxes]


def _full_size(faces: list, k: int) -> list:
    """`faces` found in a photo read at 1/k size, with box and landmarks in the full photo's pixels (pixel
    centres: x -> k x + (k - 1) / 2); the head pose is the same at any size."""
    import dataclasses

    if k == 1:
        return faces
    return [dataclasses.replace(f, box=f.box * k + (k - 1) / 2, landmarks=f.landmarks * k + (k - 1) / 2) for f in faces]


def output_stem(path: str, taken: set[str]) -> str:
    """The file-name stem of `path`'s outputs, numbered (`face_1`) where an earlier input of this run already
    took it (a/face.jpg and b/face.jpg), so that no output silently replaces another; added to `taken`."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = stem, 1
    while name in taken:
        name, k = f"{stem}_{k}", k + 1
    taken.add(name)
    return name


def earlier_prediction(out_dir: str) -> list[str] | None:
    """The files (annotated images and videos, chips) that an earlier prediction's OUT/landmarks.json names inside
    `out_dir`, to go when this run's record replaces it; None when there is none. A landmarks.json that is no
    prediction's record is someone's own file: refused, and kept. Read line by line (a long video's record is
    written so, one frame a line), not loaded whole."""
    import json
    import re

    path = os.path.join(out_dir, "landmarks.json")
    if not os.path.lexists(path):
        return None
    named, head = [], ""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if len(head) < 4096:
                    head += line
                named += [json.loads(m) for m in re.findall(r'"(?:annotated|chip)": ("(?:[^"\\]|\\.)*")', line)]
    except (OSError, UnicodeDecodeError, ValueError):
        head = ""
    if not re.match(r'\{\s*"model": .*"scheme": .*"results": \{', head, re.S):
        raise OutputError(f"{path}: not an earlier prediction's record; it is kept (move it or pass another --out)")
    root = os.path.realpath(out_dir).rstrip(os.sep) + os.sep
    return sorted({f for f in named if os.path.realpath(f).startswith(root)})


def refuse_replacing_pts(out_dir: str, paths: list[str]) -> None:
    """--format pts writes OUT/<stem>.pts: a .pts already there (an earlier run's, or a label of yours) is only
    replaced with --overwrite; the .pts format keeps no record of which run wrote it."""
    taken: set[str] = set()
    for path in paths:
        target = os.path.join(out_dir, output_stem(path, taken) + ".pts")
        if os.path.lexists(target):
            raise OutputError(f"{target}: already exists (an earlier run's or a label); pass --overwrite to replace "
                              "the .pts files in --out, or another --out")


class ChipWriter:
    """`--chips SIZE`: each face's aligned chip (`face_chips`: eyes, nose tip and mouth corners on ArcFace's
    reference points) as a PNG under OUT/chips, its path added to the face's entry as "chip". An earlier run's
    chips folder is replaced, so that no chip of another run is taken for one of this run's faces."""

    def __init__(self, detector, out_dir: str, size: int, padding: float = 0.0):
        import shutil

        from .face_chips import chip_template

        chip_template(size, padding)  # a bad size or padding is one error line before any work
        self.detector, self.size, self.padding = detector, int(size), float(padding)
        self.folder, self.written, self.failed = os.path.join(out_dir, "chips"), 0, 0
        if os.path.lexists(self.folder):
            others = [os.path.join(root, f) for root, _, files in os.walk(self.folder) for f in files
                      if not f.lower().endswith(".png")] if os.path.isdir(self.folder) else [self.folder]
            if others:
                raise OutputError(f"{self.folder}: holds files other than chips ({others[0]}); move them or pass "
                                  "another --out")
        try:  # another user's chips (a run under sudo) cannot be removed: one error line, not a traceback
            if os.path.lexists(self.folder):
                shutil.rmtree(self.folder)
            os.makedirs(self.folder)
        except OSError as err:
            raise OutputError(f"{self.folder}: cannot replace an earlier run's chips ({err.strerror or err}); remove "
                              "the folder or pass another --out") from None

    def __call__(self, image, faces: list, entries: list[dict], name_of) -> None:
        """Write the chips of `faces` (found in RGB `image`), named `name_of(k, face)` within the chips folder,
        and record each path in the face's entry; a face whose landmarks cannot place a chip gets none."""
        import cv2

        for k, (face, entry) in enumerate(zip(faces, entries)):
            try:
                chip = self.detector.chip(image, face, self.size, self.padding)
            except ValueError:  # non-finite landmarks of a collapsed crop
                continue
            path = os.path.join(self.folder, name_of(k, face))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if cv2.imwrite(path, cv2.cvtColor(chip, cv2.COLOR_RGB2BGR)):
                entry["chip"] = path
                self.written += 1
            else:  # a full disk: said at the first, counted at the end (a video would say it every frame)
                self.failed += 1
                if self.failed == 1:
                    print(f"warning: {path}: cannot write the chip (a full disk?); the landmarks are still written",
                          file=sys.stderr)


def predict_images(detector: LandmarkDetector, paths: list[str], out_dir: str, boxes: Boxes | None = None,
                   pose_axes: bool = False, chips: ChipWriter | None = None) -> dict:
    """Landmarks for each image path: annotated copies in `out_dir` (with `pose_axes`, each head's axes too; with
    `chips`, each face's aligned chip) and a result dict per path; an unreadable image is reported, never fatal."""
    import cv2

    from .inference import draw_faces

    results, start, taken = {}, time.time(), set()
    for i, path in enumerate(paths, 1):
        try:
            image, shrink = _read_image(path)
            faces = detector(image, _scaled_boxes(boxes, shrink))
            entry = {"faces": [f.to_dict() for f in _full_size(faces, shrink)]}
            if not faces:
                entry["message"] = "no face found"
            stem = output_stem(path, taken)
            if chips is not None:
                chips(image, faces, entry["faces"], lambda k, face: f"{stem}_face{k}.png")
            annotated = os.path.join(out_dir, stem + "_landmarks.png")
            # cv2.imwrite answers False (a full disk, a read-only file of an earlier run) rather than raising: the
            # image's landmarks are kept, and landmarks.json names no annotated file that was not written
            if cv2.imwrite(annotated, cv2.cvtColor(draw_faces(image, faces, pose_axes), cv2.COLOR_RGB2BGR)):
                entry["annotated"] = annotated
                if shrink > 1:  # drawn on the photo as read, at 1/k: a point x of the record is at (x - (k-1)/2) / k
                    entry["annotated_scale"] = 1 / shrink
            else:
                entry["annotated"] = None
                print(f"warning: {annotated}: cannot write the annotated image (the landmarks are still written)",
                      file=sys.stderr)
        except ValueError as err:
            message = str(err) if str(err).startswith(path) else f"{path}: {err}"
            entry = {"faces": [], "error": message}
            if len(paths) > 1:  # a single input's failure is the run's one error line
                print(f"warning: {message}", file=sys.stderr)
        results[path] = entry
        if len(paths) > 1:
            _progress(i, len(paths), start, "images")
    return results


def _frame_step(detector, smooth: bool, track: bool, boxes, fps: float, redetect_every: int):
    """frame -> faces, and the tracker (None without tracking). Tracking: `tracking.FaceTracker` follows each face
    through its landmarks and runs the detector only every `redetect_every` frames (or when a face looks lost),
    smoothing per track; a --box is what its detector returns. Without tracking: the detector (or the box) on
    every frame, each face smoothed with the filter of the previous frame's face its box overlaps
    (`tracking.DetectionSmoother`)."""
    from .inference import checked_boxes
    from .tracking import DetectionSmoother, FaceTracker

    if track:
        detect = (lambda image: [(box, 1.0) for box in checked_boxes(boxes, image.shape)]) if boxes else None
        tracker = FaceTracker(detector, redetect_every=redetect_every, smooth=smooth, fps=fps, detect=detect)
        return tracker.update, tracker
    smoother = DetectionSmoother() if smooth else None

    def step(image, dt: float):
        faces = detector(image, boxes)
        return smoother(faces, dt, image) if smoother else faces

    return step, None


def _can_show_window() -> bool:
    """Whether a window may be tried: on Linux only with an X or Wayland display (a GUI build of OpenCV aborts
    the process, rather than raising, when it cannot reach one)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _frame_chip_name(stem: str, index: int):
    """A video frame's chip names: one folder per video, and in it one per track (the same face's chips together,
    ready to sort into people), else numbered by the face's place in the frame."""
    def name_of(k: int, face) -> str:
        if face.track_id is not None:
            return os.path.join(stem, f"track{face.track_id}", f"frame{index:06d}.png")
        return os.path.join(stem, f"frame{index:06d}_face{k}.png")

    return name_of


def _run_frames(step, frames, fps: float, out_path: str, window: str | None, total: int | None,
                pose_axes: bool = False, chips: ChipWriter | None = None, drop_jaw: bool = False) -> dict:
    """Run `step` on (BGR frame, dt) pairs; show each annotated frame in `window` (when a display can show it)
    or write it to `out_path` (and with `chips`, each face's chip). Each frame's faces go to a `FrameLog` beside
    it as they come (`--points 51` applied with `drop_jaw`). Stops at the end, on 'q' / Esc in the window, a
    closed window, or Ctrl-C."""
    import cv2

    from .frame_log import FrameLog
    from .inference import draw_faces

    stem = os.path.splitext(out_path)[0].removesuffix("_landmarks")
    records = FrameLog(stem + "_frames.jsonl", inner51_record if drop_jaw else None)
    writer, start, stopped = None, time.time(), "end of input"
    unwritable = False  # the .mp4 writer could not be opened: frames are still predicted
    chip_folder = os.path.basename(stem)  # the chips' folder
    try:
        for index, (frame, dt) in enumerate(frames):
            image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            faces = step(image, dt)
            annotated = cv2.cvtColor(draw_faces(image, faces, pose_axes), cv2.COLOR_RGB2BGR)
            record = {"frame": index, "faces": [f.to_dict() for f in faces]}
            if chips is not None:
                chips(image, faces, record["faces"], _frame_chip_name(chip_folder, index))
            records.append(record)
            if window is not None:
                try:
                    cv2.imshow(window, annotated)
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error:  # OpenCV without GUI support (opencv-python-headless)
                    print(f"note: cannot open a window (OpenCV has no GUI support here); writing {out_path}",
                          file=sys.stderr)
                    window = None
                else:
                    if key in (ord("q"), 27):
                        stopped = "q pressed"
                        break
                    if cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:
                        stopped = "window closed"
                        break
            if window is None and not unwritable:
                if writer is None:
                    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (image.shape[1], image.shape[0]))
                    if not writer.isOpened():  # e.g. frames wider than the mp4v encoder takes (8191 px)
                        print(f"warning: {out_path}: OpenCV cannot write a {image.shape[1]}x{image.shape[0]} .mp4 "
                              "here; no annotated video (the landmarks are still written)", file=sys.stderr)
                        writer, unwritable = None, True
                if writer is not None:
                    writer.write(annotated)
            _progress(index + 1, total, start, "frames")
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        records.close()
        if writer is not None:
            writer.release()
        if window is not None:
            try:
                cv2.destroyWindow(window)
            except cv2.error:
                pass
    return {"frames": records, "annotated": out_path if writer is not None else None, "stopped": stopped}


def _capture_frames(capture, fps: float, max_frames: int | None, real_time: bool):
    """(BGR frame, seconds since the previous one) from a cv2.VideoCapture until it ends or `max_frames`. A file
    advances by 1/fps a frame; a live camera (`real_time`) by the time that really passed."""
    count, last = 0, None
    while max_frames is None or count < max_frames:
        ok, frame = capture.read()
        if not ok:
            return
        now = time.monotonic()
        dt = 1.0 / fps if last is None or not real_time else max(now - last, 1e-3)
        last, count = now, count + 1
        yield frame, dt


def _tracking_summary(tracker) -> dict | None:
    if tracker is None:
        return None
    summary = {"redetect_every": tracker.redetect_every, "detector_runs": tracker.detector_runs,
               "lost": tracker.lost, "shot_cuts": tracker.cuts, "tracks": tracker.tracks_started}
    if getattr(tracker.landmarker, "min_quality", None) is not None:
        summary["low_quality"] = tracker.low_quality
    return summary


def predict_video(detector: LandmarkDetector, path: str, out_dir: str, smooth: bool, boxes: Boxes | None = None,
                  track: bool = True, redetect_every: int = 15, max_frames: int | None = None, pose_axes: bool = False,
                  chips: ChipWriter | None = None, drop_jaw: bool = False) -> dict:
    """Landmarks on every frame of a video file: annotated .mp4 plus per-frame faces (with track ids when
    tracking; a `FrameLog`, on disk in `out_dir` until landmarks.json takes them) and, with `chips`, each face's
    aligned chip."""
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DataError(f"{path}: cannot open video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if total and max_frames:
        total = min(total, max_frames)
    out_path = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + "_landmarks.mp4")
    step, tracker = _frame_step(detector, smooth, track, boxes, fps, redetect_every)

    try:
        result = _run_frames(step, _capture_frames(capture, fps, max_frames, real_time=False), fps, out_path, None,
                             total, pose_axes, chips, drop_jaw)
    except DataError as err:  # e.g. a --box outside the frames: name the video, as an image's error names it
        raise DataError(str(err) if str(err).startswith(path) else f"{path}: {err}") from None
    finally:
        capture.release()
    if not result["frames"]:
        result["frames"].remove()
        raise DataError(f"{path}: video has no readable frames")
    read = len(result["frames"])
    if result["stopped"] == "end of input" and not max_frames and total and read < 0.95 * total:
        # the container's count is an estimate for some formats, hence the margin
        print(f"warning: {path}: the video ended after {read} of the {total} frames its header announces "
              "(a truncated or damaged file?)", file=sys.stderr)
    return {path: {"frames": result["frames"], "fps": fps, "smoothed": smooth, "annotated": result["annotated"],
                   "tracking": _tracking_summary(tracker)}}


def open_camera(index: int) -> cv2.VideoCapture:
    """cv2.VideoCapture of camera `index`, or ValueError. OpenCV's own log lines about a missing camera are
    silenced: the caller reports one error."""
    import cv2

    level = cv2.getLogLevel() if hasattr(cv2, "getLogLevel") else None
    if level is not None:
        cv2.setLogLevel(0)  # silent
    try:
        capture = cv2.VideoCapture(index)
        opened = capture.isOpened()
    finally:
        if level is not None:
            cv2.setLogLevel(level)
    if not opened:
        capture.release()
        raise DataError(f"camera {index}: cannot open it (no such camera, no permission, or in use)")
    return capture


def predict_camera(detector: LandmarkDetector, index: int, out_dir: str, smooth: bool, boxes: Boxes | None = None,
                   track: bool = True, redetect_every: int = 15, max_frames: int | None = None, show: bool = True,
                   pose_axes: bool = False, chips: ChipWriter | None = None, drop_jaw: bool = False) -> dict:
    """Live landmarks from camera `index`: a window where a display exists (stop with 'q'), otherwise the
    annotated frames go to an .mp4 in `out_dir`; Ctrl-C or `max_frames` also stop. Smoothing uses the real time
    between frames."""
    import cv2

    capture = open_camera(index)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    if not 1 <= fps <= 240:
        fps = 30.0
    out_path = os.path.join(out_dir, f"camera{index}_landmarks.mp4")
    step, tracker = _frame_step(detector, smooth, track, boxes, fps, redetect_every)
    window = f"landmarks: camera {index} (q to quit)" if show and _can_show_window() else None
    if window is None:
        print(f"no display: writing {out_path} (Ctrl-C to stop)", file=sys.stderr)

    try:
        result = _run_frames(step, _capture_frames(capture, fps, max_frames, real_time=True), fps, out_path, window,
                             max_frames, pose_axes, chips, drop_jaw)
    finally:
        capture.release()
    if not result["frames"]:
        result["frames"].remove()
        raise DataError(f"camera {index}: no frames could be read")
    return {f"camera:{index}": {**result, "fps": fps, "smoothed": smooth, "tracking": _tracking_summary(tracker)}}


def _image_paths(path: str) -> list[str]:
    """A folder's images (its subfolders are not searched: said in a note when it has images and subfolders, as a
    folder of subfolders alone is an error saying so), or the one file given."""
    if not os.path.isdir(path):
        return [path]
    names = os.listdir(path)
    found = sorted(os.path.join(path, f) for f in names if f.lower().endswith(IMAGE_EXTENSIONS))
    folders = sorted(f for f in names if not f.startswith(".") and os.path.isdir(os.path.join(path, f)))
    if found and folders:
        print(f"note: {path}: its {len(folders)} subfolder(s) are not searched (first: {folders[0]}); pass them too, "
              "or a --list of images", file=sys.stderr)
    return found


def _expand_inputs(inputs: list[str]) -> list[str]:
    """The command line's inputs, a pattern no shell expanded (quoted, or Windows' cmd) expanded here in sorted
    order; an input that does not exist is an error naming it, before any work."""
    import glob

    expanded = []
    for item in inputs:
        if os.path.exists(item):
            expanded.append(item)
        elif any(c in item for c in "*?["):
            matches = sorted(glob.glob(item))
            if not matches:
                raise MissingFileError(f"{item}: no file matches this pattern")
            expanded += matches
        else:
            raise MissingFileError(f"{item}: no such file or directory")
    return expanded


def _several_inputs(inputs: list[str]) -> list[str]:
    """The images of several inputs (files and folders), each once, in the order given. A file without an image
    extension is left out with a note: a shell glob such as `faces/*` also names the labels beside the images."""
    paths, other = {}, []
    for item in inputs:
        if os.path.isdir(item):
            found = _image_paths(item)
        else:
            found = [item] if item.lower().endswith(IMAGE_EXTENSIONS) else []
            if not found:
                other.append(item)
        paths.update((os.path.normpath(p), None) for p in found)
    if other:
        print(f"note: {len(other)} input(s) without an image extension left out (first: {other[0]})", file=sys.stderr)
    if not paths:
        raise DataError(f"none of the {len(inputs)} inputs is an image or a folder holding images (first: {inputs[0]})")
    return list(paths)


def read_image_list(path: str) -> list[str]:
    """Image paths, one per line (blank lines and # comments ignored); relative paths are taken from the list's
    folder. An image listed more than once is predicted once (a warning counts the repeats): otherwise the pts
    format wrote it twice (`face.pts`, `face_1.pts`) and the counts disagreed with landmarks.json."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the image list ({err})") from None
    base = os.path.dirname(os.path.abspath(path))
    paths = [line if os.path.isabs(line) else os.path.join(base, line) for line in lines if line and not line.startswith("#")]
    if not paths:
        raise DataError(f"{path}: the image list names no images")
    unique, repeated = {}, []
    for image_path in map(os.path.normpath, paths):
        if image_path in unique:
            repeated.append(image_path)
        unique[image_path] = None
    if repeated:
        print(f"warning: {path}: {len(repeated)} repeated entr{'y' if len(repeated) == 1 else 'ies'} ignored "
              f"(first: {repeated[0]}); each image is predicted once", file=sys.stderr)
    return list(unique)


def predict_pts(detector: Callable[[np.ndarray], list], paths: list[str], out_dir: str, inner51: bool) -> dict:
    """The ICME 2024 challenge's batch format: one .pts per image holding every face (one `version/n_points/{}`
    block each), faces ordered right to left; an image with no face (or unreadable) gets an empty file."""
    from .data.pts300w import format_pts
    from .schemes import convert_68_to_51

    written, counts, start, taken = {}, {"faces": 0, "no_face": 0, "unreadable": 0}, time.time(), set()
    for i, path in enumerate(paths, 1):
        try:
            image, shrink = _read_image(path)
            faces = _full_size(detector(image), shrink)
        except ValueError as err:
            print(f"warning: {err}", file=sys.stderr)
            faces, counts["unreadable"] = [], counts["unreadable"] + 1
        else:
            counts["no_face"] += not faces
        faces = sorted(faces, key=lambda f: -(f.box[0] + f.box[2]))  # right to left
        name = output_stem(path, taken)
        text = "".join(format_pts(convert_68_to_51(f.landmarks) if inner51 else f.landmarks) for f in faces)
        atomic_bytes(os.path.join(out_dir, name + ".pts"), text.encode("utf-8"))
        written[path] = name
        counts["faces"] += len(faces)
        _progress(i, len(paths), start, "images")
    return {"pts": {p: os.path.join(out_dir, n + ".pts") for p, n in written.items()}, **counts}


def _named_outputs(results: dict) -> list[str]:
    """The annotated images and videos and the chips this run's `results` name (a video's chips are in its frame
    log's lines)."""
    import json

    named = []
    for entry in results.values():
        if entry.get("annotated"):
            named.append(entry["annotated"])
        named += [face["chip"] for face in entry.get("faces", []) if face.get("chip")]
        if isinstance(entry.get("frames"), FrameLog):
            for line in entry["frames"].lines():
                named += [face["chip"] for face in json.loads(line).get("faces", []) if face.get("chip")]
    return named


def inner51_record(record: dict) -> dict:
    """Drop the 17 jaw points (`convert_68_to_51`) from every face of one image's or frame's record, in place:
    `--points 51` holds for landmarks.json as for the .pts files."""
    import numpy as np

    from .schemes import convert_68_to_51

    for face in record.get("faces", []):
        face["landmarks"] = convert_68_to_51(np.asarray(face["landmarks"], np.float64)).tolist()
    return record


def main(argv: list[str] | None = None) -> int:
    """`python -m landmark_kd.predict`; exit 2 with one `error:` line for a problem the user can fix."""
    from .cli import run

    return run(_main, sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    quiet_unless_verbose(argv)
    from .cli import (ArgumentParser, chip_padding, chip_size, finite_float, non_negative_int, positive_int,
                      quality_floor, refine_passes)

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="*", metavar="INPUT", help="an image, a folder of images, or a video; several "
                        "images or folders may be given (a shell glob such as photos/*.jpg; a quoted pattern is "
                        "expanded too)")
    parser.add_argument("--list", default=None, help="a text file of image paths, one per line (instead of input); "
                        "relative paths are taken from the list file's folder")
    parser.add_argument("--format", default="json", choices=("json", "pts"),
                        help="json: landmarks.json + annotated images; pts: one .pts per image with every face, "
                        "right to left (the ICME 2024 challenge's format; empty file when no face)")
    parser.add_argument("--points", default="all", choices=("all", "51"),
                        help="51: drop the 17 jaw points of a 68-point model (the challenge's 51-point layout) from "
                        "the .pts files and landmarks.json; the overlays still show all 68")
    parser.add_argument("--model", default=None, help=".keras or .tflite landmark model, or a run folder holding best.keras (default: the shipped "
                        "real-face student, landmark_kd/pretrained/real_student_fp16.tflite)")
    parser.add_argument("--scheme", default=None, help="a .tflite model's landmark layout: a built-in name (68, "
                        "98, 29, 51) or a .json layout (default: the .scheme.json convert.py wrote beside the model, "
                        "else the built-in layout of its point count, with a warning)")
    parser.add_argument("--out", default=os.path.join("runs", "predict"), help="output folder")
    parser.add_argument("--detector", default=None, choices=("blazeface", "short", "full_range", "haar", "full"),
                        help="blazeface: MediaPipe's BlazeFace, short and full range together (default); short / "
                        "full_range: one of them; haar: OpenCV's cascade; full: the whole image is one face "
                        "(pre-cropped input)")
    parser.add_argument("--box", type=finite_float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="use this face box")
    parser.add_argument("--camera", type=non_negative_int, default=None, metavar="INDEX",
                        help="live input from this camera (instead of input): a window where a display exists "
                        "('q' quits), otherwise an annotated .mp4 in --out; Ctrl-C or --max-frames stop it")
    parser.add_argument("--max-frames", type=positive_int, default=None, help="stop a video or camera after N frames")
    parser.add_argument("--no-smooth", action="store_true", help="turn off One-Euro smoothing for video")
    parser.add_argument("--no-track", action="store_true", help="video/camera: run the face detector on every "
                        "frame instead of following faces through their landmarks")
    parser.add_argument("--redetect-every", type=positive_int, default=None, metavar="N",
                        help="video/camera tracking: run the face detector every N frames to find new faces and "
                        "confirm followed ones (also whenever a followed face looks lost) (default: 15)")
    parser.add_argument("--no-window", action="store_true", help="camera: write the .mp4 even where a display exists")
    parser.add_argument("--threads", type=positive_int, default=None, help="TFLite threads for a .tflite landmark "
                        "model (default: 1); more only pay on idle cores (a busy core makes 2 threads several times "
                        "slower than 1)")
    parser.add_argument("--flip-test", action="store_true", help="also run each face mirrored and average the two "
                        "(1-2%% lower NME on real faces, twice the model time)")
    parser.add_argument("--refine", type=refine_passes, default=None, metavar="N",
                        help="crop each face again around its own landmarks, turned upright by their eye line, N "
                        "times (default 1 for 68- and 98-point models, 0 for others; 0 off): the framing the model "
                        "was trained on, whatever box found the face (a --box too), and right on faces tilted past "
                        "what the face detector's keypoints get right; at most 5)")
    parser.add_argument("--any-angle", action="store_true", help="also find faces lying on their side or upside "
                        "down (BlazeFace on the image turned by 90, 180 and 270 degrees too: 4x the detector's time)")
    parser.add_argument("--min-quality", type=quality_floor, default=None, metavar="Q",
                        help="leave out found faces whose landmark quality (the mean heatmap peak share, in "
                        "landmarks.json as \"quality\") is below Q: a face detector's false faces on background "
                        "score low. The scale is the model's own: 0.065 for the shipped student, 0.05 for the fast one "
                        "(README, \"Landmark quality\"); in a video, a followed face below it counts as lost")
    parser.add_argument("--pose-axes", action="store_true", help="also draw each head's pose axes on the annotated "
                        "output (red: the face's x, green: down, blue: towards the viewer), from the nose tip; the "
                        "angles (yaw, pitch, roll in degrees) are in landmarks.json either way, for 68- and 51-point models")
    parser.add_argument("--chips", type=chip_size, default=None, metavar="SIZE",
                        help="also write each face aligned for a face recogniser: a SIZE x SIZE PNG (112 is "
                        "ArcFace's) with the eyes, nose tip and mouth corners on ArcFace's reference points, in "
                        "OUT/chips (a video's in one folder per followed face); its path is the face's \"chip\" "
                        "in landmarks.json. An earlier run's OUT/chips is replaced")
    parser.add_argument("--chip-padding", type=chip_padding, default=0.0, metavar="P",
                        help="room around the face in each chip: the face spans 1/(1+P) of what it does at 0 "
                        "(0.25 shows the chin and forehead; 0 to 4)")
    parser.add_argument("--overwrite", action="store_true", help="--format pts: replace .pts files already in --out "
                        "(without it they are refused: an earlier run's and a label of yours look alike)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and the TFLite runtime's log output")
    args = parser.parse_intermixed_args(argv)  # inputs before and after the flags: `predict a.jpg --chips 112 b.jpg`
    if sum((bool(args.input), args.list is not None, args.camera is not None)) != 1:
        parser.error("give one of: an input (image, folder or video), --list FILE or --camera INDEX")
    if args.camera is not None and args.format == "pts":
        parser.error("--format pts is for images, not --camera")
    if args.pose_axes and args.format == "pts":
        parser.error("--pose-axes draws on the annotated images, which --format pts does not write")
    if args.chips is not None and args.format == "pts":
        parser.error("--chips is for --format json (the chips are named in landmarks.json)")
    if args.chip_padding and args.chips is None:
        parser.error("--chip-padding needs --chips SIZE")
    if args.overwrite and args.format != "pts":
        parser.error("--overwrite is for --format pts (a json run replaces the earlier prediction in --out itself)")
    if args.box and args.min_quality is not None:  # given boxes are kept whatever their quality
        parser.error("--box gives the face, and --min-quality only leaves out faces a detector finds: pass one or the "
                     "other")
    if args.box and (args.detector or args.any_angle):  # the box is the face: no detector runs
        parser.error(f"--box gives the face, so {'--detector' if args.detector else '--any-angle'} would not be used; "
                     "pass one or the other")
    video_only = [flag for flag, given in (("--max-frames", args.max_frames is not None), ("--no-track", args.no_track),
                                           ("--no-smooth", args.no_smooth),
                                           ("--redetect-every", args.redetect_every is not None)) if given]
    if args.no_track and args.redetect_every is not None:  # the interval is the tracker's: it would be ignored
        parser.error("--redetect-every sets how often the tracker runs the face detector, and --no-track runs it on "
                     "every frame: pass one or the other")
    if args.no_window and args.camera is None:
        parser.error("--no-window is for --camera")
    if args.box and not (args.box[2] > args.box[0] and args.box[3] > args.box[1]):
        parser.error(f"argument --box: X1 > X0 and Y1 > Y0 needed, got {' '.join(f'{v:g}' for v in args.box)}")
    from .inference import LandmarkDetector, default_model_path
    from .outputs import output_lock, prepare_output_dir, refuse_input_folder

    if args.list is not None and not os.path.exists(args.list):
        raise MissingFileError(f"{args.list}: no such file or directory")
    inputs = _expand_inputs(args.input)
    videos = [p for p in inputs if os.path.isfile(p) and p.lower().endswith(VIDEO_EXTENSIONS)]
    if videos and len(inputs) > 1:
        parser.error(f"a video is predicted on its own: {videos[0]} is one of {len(inputs)} inputs")
    video = bool(videos)
    if video and args.format == "pts":
        parser.error("--format pts is for images, not a video")
    if video_only and args.camera is None and not video:
        parser.error(f"{video_only[0]} is for a video or --camera, not images")
    if args.list:
        paths = read_image_list(args.list)
    elif len(inputs) == 1 and not video:
        paths = _image_paths(inputs[0])
        if not paths:
            folders = os.path.isdir(inputs[0]) and any(os.path.isdir(os.path.join(inputs[0], name))
                                                       for name in os.listdir(inputs[0]))
            raise DataError(f"{inputs[0]}: no images found" + (" (its subfolders are not searched: pass one of them, "
                                                                "or a --list of images)" if folders else ""))
    elif inputs and not video:
        paths = _several_inputs(inputs)
    else:
        paths = None  # a video or a camera
    if paths:  # outputs beside the inputs would replace them (a predicted .pts over the label of its image)
        folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
        refuse_input_folder(args.out, folders)
        if args.chips is not None:  # an earlier run's OUT/chips is deleted: never one holding this run's images
            refuse_input_folder(os.path.join(args.out, "chips"), folders, containing=True,
                                flag="--chips folder (in --out)")
    tflite = (args.model or default_model_path()).lower().endswith(".tflite")
    if args.scheme and not tflite:
        parser.error("--scheme is for a .tflite model; a .keras model carries its own layout")
    if args.threads is not None and not tflite:  # TensorFlow runs a .keras model on its own thread pools
        parser.error("--threads is for a .tflite model; a .keras model runs on TensorFlow's own threads")
    detector = LandmarkDetector(args.model, args.detector or "blazeface", args.threads or 1, flip_test=args.flip_test,
                                refine=args.refine, any_angle=args.any_angle, scheme=args.scheme,
                                min_quality=args.min_quality)
    if args.points == "51" and detector.scheme.num_points not in (68, 51):
        raise ConfigError(f"--points 51 needs a 68-point model (or a 51-point one); {detector.model_path} predicts "
                          f"{detector.scheme.num_points}")
    if args.pose_axes and not detector.gives_pose:
        raise ConfigError(f"--pose-axes needs a 68- or 51-point model (the head pose is fitted to the 51 inner points "
                          f"of 68); {detector.model_path} predicts the {detector.scheme.num_points}-point layout "
                          f"{detector.scheme.name!r}")
    if args.chips is not None and not detector.gives_chips:
        raise ConfigError(f"--chips needs a built-in layout that names the eyes, nose tip and mouth corners (68, 51, "
                          f"98, 29); {detector.model_path} predicts the {detector.scheme.num_points}-point layout "
                          f"{detector.scheme.name!r}")
    drop_jaw = args.points == "51" and detector.scheme.num_points == 68  # a 51-point model's answer is already that
    prepare_output_dir(args.out)
    with output_lock(args.out, flag="--out"):  # two runs into one folder would replace each other's landmarks.json
        return _predict(args, detector, inputs, paths, video, drop_jaw)


def _predict(args, detector: LandmarkDetector, inputs: list[str], paths: list[str] | None, video: bool,
             drop_jaw: bool) -> int:
    """The run, once the flags are checked and --out is locked."""
    if args.format == "pts" and not args.overwrite:
        refuse_replacing_pts(args.out, paths)
    earlier = earlier_prediction(args.out) if args.format == "json" else None
    chips = ChipWriter(detector, args.out, args.chips, args.chip_padding) if args.chips is not None else None
    boxes = [args.box] if args.box else None
    if args.format == "pts":
        result = predict_pts(lambda image: detector(image, boxes), paths, args.out, drop_jaw)
        if result["unreadable"] == len(paths):
            raise DataError(f"{paths[0]}: cannot read image (missing, unreadable or not an image)" if len(paths) == 1
                            else f"none of the {len(paths)} images could be read (see the warnings)")
        low = (f" ({detector.low_quality_faces} below --min-quality {args.min_quality:g} left out)"
               if args.min_quality is not None else "")
        print(f"{len(paths)} image(s): {result['faces']} face(s) written as .pts to {args.out}{low}; "
              f"{result['no_face']} with no face, {result['unreadable']} unreadable (empty .pts files)")
        return 0
    stream = {"smooth": not args.no_smooth, "boxes": boxes, "track": not args.no_track,
              "redetect_every": args.redetect_every or 15, "max_frames": args.max_frames, "pose_axes": args.pose_axes,
              "chips": chips, "drop_jaw": drop_jaw}
    if args.camera is not None:
        results = predict_camera(detector, args.camera, args.out, show=not args.no_window, **stream)
    elif video:
        results = predict_video(detector, inputs[0], args.out, **stream)
    else:
        results = predict_images(detector, paths, args.out, boxes, args.pose_axes, chips)
    unreadable = [r["error"] for r in results.values() if "error" in r]
    if unreadable and len(unreadable) == len(results):  # nothing to show: a failure, not an empty result
        raise DataError(unreadable[0] if len(unreadable) == 1 else
                        f"none of the {len(unreadable)} images could be used; first: {unreadable[0]}")
    logs = [r["frames"] for r in results.values() if isinstance(r.get("frames"), FrameLog)]
    if drop_jaw:
        for entry in results.values():
            inner51_record(entry)
    json_path = os.path.join(args.out, "landmarks.json")
    if earlier is not None:  # the folder holds this run's outputs alone, as the new landmarks.json lists them
        kept = {os.path.realpath(f) for f in _named_outputs(results)}
        gone = [f for f in earlier if os.path.realpath(f) not in kept and os.path.lexists(f)]
        for f in gone:
            os.remove(f)
        removed = f" ({len(gone)} of its files removed)" if gone else ""
        print(f"the earlier prediction in {args.out} was replaced{removed}; another --out keeps each run's")
    scheme = "51" if drop_jaw else detector.scheme.name  # the layout of the landmarks written
    write_results_json(json_path, {"model": detector.model_path, "scheme": scheme}, results)
    for log in logs:  # its frames are in landmarks.json now
        log.remove()
    faces = sum(len(r.get("faces", [])) for r in results.values() if "faces" in r)
    frames = sum(len(log) for log in logs)
    faces += sum(log.faces for log in logs)
    no_face = [p for p, r in results.items() if r.get("message") == "no face found"]
    skipped = f"; {len(unreadable)} image(s) skipped (see the warnings)" if unreadable else ""
    over = f" over {frames} frame(s)" if frames else ""  # a video's faces are counted once per frame
    low = detector.low_quality_faces + sum((r.get("tracking") or {}).get("low_quality", 0) for r in results.values())
    low = f" ({low} below --min-quality {args.min_quality:g} left out)" if args.min_quality is not None else ""
    print(f"{faces} face(s) found{over}{low}{skipped}; landmarks in {json_path}; annotated output in {args.out}")
    if chips is not None:
        failed = f" ({chips.failed} could not be written)" if chips.failed else ""
        print(f"{chips.written} aligned {chips.size}x{chips.size} face chip(s) in {chips.folder}{failed}")
    for p in no_face:
        print(f"  no face found in {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
