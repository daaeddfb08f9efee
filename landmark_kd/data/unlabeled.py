"""Unlabelled face photos for distillation: L_KD needs only the teacher's heatmaps, not ground truth.

Each photo gets a face box from the face detector (the face nearest the image centre, as in one-face
collections such as LFW); photos that are damaged, too large, unreadable or show no face are skipped, each with
its reason. The detector is `LandmarkDetector`'s, BlazeFace with its box converted to the 68-landmark box, so
unlabelled faces are cut as the labelled ones are in training and as every face is at inference (a raw Haar box
sits about a fifth of the face higher and a quarter larger). Boxes (and skip reasons) are cached in a JSON file,
with the detector's name, so a resumed run does not detect again; each entry is keyed by the photo's absolute path
and stamped with its size and modification time, so a photo replaced or edited under the same name (or another
folder of the same relative path) is detected again instead of being cut at a stale box.
"""
from __future__ import annotations

import json
import os

from typing import Callable

import numpy as np

from ..outputs import atomic_json
from .records import DatasetError, LoadReport, Sample


DETECTOR = "blazeface-auto-landmark-box"  # names the boxes in a cache: boxes of another detector are not reused


def load_unlabeled(root: str, num_points: int, cache: str | None = None,
                   detector: Callable[[np.ndarray], list[tuple[np.ndarray, float]]] | None = None,
                   report: LoadReport | None = None, spread: int | None = None) -> list[Sample]:
    """Samples whose `bbox` is the detected face and whose landmarks are placeholders (the box centre).
    `detector(image_rgb) -> [(box, score)]` defaults to BlazeFace's 68-landmark box estimate. Each photo left out
    goes into `report` with its own reason (damaged, too large, unreadable, no face), as a labelled set's skips
    do, so training can list them in its skipped.json. `spread`: only this many photos, evenly spaced over the
    sorted list, are read and detected (int8 calibration wants a hundred faces, not every photo of a large folder
    run through the detector first)."""
    from ..pseudolabel import list_images

    if not os.path.exists(root):
        raise DatasetError(f"{root}: no such file or directory")
    name = DETECTOR if detector is None else getattr(detector, "__name__", type(detector).__name__)
    boxes: dict[str, list[float] | str] = {}
    stamps: dict[str, list[int]] = {}
    if cache and os.path.isfile(cache):
        try:
            with open(cache) as handle:
                stored = json.load(handle)
            if (isinstance(stored, dict) and stored.get("detector") == name and isinstance(stored["boxes"], dict)
                    and isinstance(stored.get("stamps"), dict)):
                boxes, stamps = stored["boxes"], stored["stamps"]
        except (OSError, ValueError, KeyError):
            boxes, stamps = {}, {}  # a damaged (or unstamped, older) cache is only a lost speed-up
    report = report if report is not None else LoadReport()
    samples = []
    paths = list_images(root)
    if spread is not None and len(paths) > spread:
        paths = [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, max(1, spread)).astype(int))]
    for path in paths:
        key, stamp = os.path.abspath(path), _stamp(path)
        entry = boxes.get(key) if stamps.get(key) == stamp else None
        if not (isinstance(entry, str) or (isinstance(entry, list) and len(entry) == 4)):
            # not seen yet, changed since, or an older cache's skip without its reason (null)
            if detector is None:
                from ..inference import make_face_detector

                detector = make_face_detector("blazeface")
            entry = boxes[key] = _box_or_reason(path, detector)
            stamps[key] = stamp
        if isinstance(entry, str):
            report.skip(path, entry)
            continue
        box = entry
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)
        samples.append(Sample(path, np.tile(centre, (num_points, 1)), np.asarray(box, np.float32), path))
    report.loaded = len(samples)
    if cache:
        atomic_json(cache, {"detector": name, "boxes": boxes, "stamps": stamps})
    counts = ", ".join(f"{kind} {n}" for kind, n in report.reason_counts().items())
    print(f"unlabeled {root}: {report.summary()}" + (f"\n  skipped by reason: {counts}" if counts else ""))
    if not samples:
        raise DatasetError(f"{root}: no usable unlabelled face photos ({len(report.skipped)} skipped: "
                           f"{counts or 'no images found'})")
    return samples


def _stamp(path: str) -> list[int] | None:
    """[size, modification time in ns] of a photo: a cached box holds only while the file is the one it was found in."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [int(info.st_size), int(info.st_mtime_ns)]


def _box_or_reason(path: str, detector) -> list[float] | str:
    """The central face's box, or why the photo is left out (as pseudolabel decides it)."""
    from ..pseudolabel import find_central_face

    found = find_central_face(path, detector)
    return found if isinstance(found, str) else [float(v) for v in found[1]]
