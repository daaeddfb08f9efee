"""WFLW annotation lists: per line 196 coordinates (x0 y0 ... x97 y97), bbox x0 y0 x1 y1, six attribute
flags (pose, expression, illumination, make-up, occlusion, blur) and the image path relative to
WFLW_images."""
from __future__ import annotations

import os

import numpy as np

from .records import DatasetError, LoadReport, Sample, validate

NUM_POINTS = 98
ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")


def parse_line(line: str, images_root: str, source: str) -> tuple[Sample, np.ndarray]:
    parts = line.split()
    expected = 2 * NUM_POINTS + 4 + len(ATTRIBUTES) + 1
    if len(parts) > expected:  # an image path with spaces in it ("my photos/a.jpg"), when that file exists
        head = line.split(None, expected - 1)
        if os.path.isfile(os.path.join(images_root, head[-1].strip())):
            parts = head[:-1] + [head[-1].strip()]
    if len(parts) != expected:
        raise DatasetError(f"{source}: expected {expected} fields, got {len(parts)}")
    try:
        numbers = np.asarray([float(v) for v in parts[:-1]], np.float32)
    except ValueError:
        bad = next(v for v in parts[:-1] if not _is_number(v))
        raise DatasetError(f"{source}: not a number: {bad!r}") from None
    landmarks = numbers[: 2 * NUM_POINTS].reshape(NUM_POINTS, 2)
    bbox = numbers[2 * NUM_POINTS: 2 * NUM_POINTS + 4]
    attributes = numbers[2 * NUM_POINTS + 4:].astype(np.int32)
    return Sample(os.path.join(images_root, parts[-1]), landmarks, bbox, source), attributes


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_wflw(annotation_file: str, images_root: str | None = None, strict: bool = False
              ) -> tuple[list[Sample], LoadReport]:
    """Read a WFLW list; `images_root` defaults to a WFLW_images folder beside the annotations."""
    if os.path.isdir(annotation_file):
        raise DatasetError(f"{annotation_file}: a folder, not a WFLW annotation list (the .txt file; its images are "
                           "found beside it or under --images-root)")
    if not os.path.isfile(annotation_file):
        raise DatasetError(f"{annotation_file}: annotation file not found")
    if images_root is None:
        here = os.path.dirname(os.path.abspath(annotation_file))
        candidates = [os.path.join(here, "WFLW_images"), os.path.join(here, "..", "..", "WFLW_images"), here]
        images_root = next((c for c in candidates if os.path.isdir(c)), here)
    report = LoadReport()
    samples = []
    with open(annotation_file, encoding="utf-8-sig", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            source = f"{annotation_file}:{number}"
            try:
                samples.append(parse_line(line, images_root, source)[0])
            except DatasetError as err:
                if strict:
                    raise
                report.skip_error(source, err)
    return validate(samples, NUM_POINTS, report, strict), report
