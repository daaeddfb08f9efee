"""Unlabelled face photos for distillation: L_KD needs only the teacher's heatmaps, not ground truth.

Each photo gets a face box from the face detector (the face nearest the image centre, as in one-face
collections such as LFW); photos that cannot be read or show no face are skipped and counted. The detector is
`LandmarkDetector`'s, BlazeFace with its box converted to the 68-landmark box, so unlabelled faces are cut as
the labelled ones are in training and as every face is at inference (a raw Haar box sits about a fifth of the
face higher and a quarter larger). Boxes are cached in a JSON file, with the detector's name, so a resumed run
does not detect again.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .records import DatasetError, LoadReport, Sample, check_image_file, read_bgr


DETECTOR = "blazeface-auto-landmark-box"  # names the boxes in a cache: boxes of another detector are not reused


def load_unlabeled(root: str, num_points: int, cache: str | None = None, detector=None) -> list[Sample]:
    """Samples whose `bbox` is the detected face and whose landmarks are placeholders (the box centre).
    `detector(image_rgb) -> [(box, score)]` defaults to BlazeFace's 68-landmark box estimate."""
    import cv2

    from ..pseudolabel import central_face, list_images

    if not os.path.exists(root):
        raise DatasetError(f"{root}: no such file or directory")
    name = DETECTOR if detector is None else getattr(detector, "__name__", type(detector).__name__)
    boxes: dict[str, list[float] | None] = {}
    if cache and os.path.isfile(cache):
        try:
            with open(cache) as handle:
                stored = json.load(handle)
            if isinstance(stored, dict) and stored.get("detector") == name:
                boxes = stored["boxes"]
        except (OSError, ValueError, KeyError):
            boxes = {}  # a damaged cache is only a lost speed-up
    report, samples = LoadReport(), []
    for path in list_images(root):
        if path not in boxes:
            reason = check_image_file(path)
            image = None if reason else read_bgr(path)
            if image is None:
                boxes[path] = None
            else:
                if detector is None:
                    from ..inference import make_face_detector

                    detector = make_face_detector("blazeface")
                box = central_face(detector(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), image.shape)
                boxes[path] = None if box is None else [float(v) for v in box]
        box = boxes[path]
        if box is None:
            report.skip(path, "unreadable image or no face found")
            continue
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)
        samples.append(Sample(path, np.tile(centre, (num_points, 1)), np.asarray(box, np.float32), path))
    report.loaded = len(samples)
    if cache:
        tmp = f"{cache}.{os.getpid()}.tmp"
        with open(tmp, "w") as handle:
            json.dump({"detector": name, "boxes": boxes}, handle)
        os.replace(tmp, cache)
    print(f"unlabeled {root}: {report.summary()}")
    if not samples:
        raise DatasetError(f"{root}: no usable unlabelled face photos ({len(report.skipped)} skipped)")
    return samples
