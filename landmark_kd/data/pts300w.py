"""300W / iBUG `.pts` files: `version: 1`, `n_points: N`, `{`, N lines of `x y`, `}`.

300W coordinates are 1-based (Matlab); we store 0-based pixel centres, so reading subtracts 1 and
writing adds it back, and a round trip is exact.
"""
from __future__ import annotations

import os

import numpy as np

from .records import IMAGE_EXTENSIONS, DatasetError, LoadReport, Sample, placeholder_reason, validate


def read_pts(path: str) -> np.ndarray:
    """Parse one .pts file into (N, 2) float32 0-based pixel coordinates."""
    if not os.path.isfile(path):  # a named pipe or device would block the reader
        raise DatasetError(f"{path}: not a regular file")
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:  # a byte-order mark is not the header
            lines = [line.strip() for line in handle]
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror})") from None
    n_points = None
    start = None
    for i, line in enumerate(lines):
        if line.lower().startswith("n_points"):
            try:
                n_points = int(line.split(":", 1)[1])
            except (IndexError, ValueError):
                raise DatasetError(f"{path}:{i + 1}: bad n_points line {line!r}") from None
        if line == "{":
            start = i + 1
            break
    if n_points is None or start is None:
        raise DatasetError(f"{path}: missing 'n_points' header or '{{'")
    points = []
    for j in range(start, len(lines)):
        if lines[j] == "}":
            break
        parts = lines[j].split()
        if len(parts) != 2:
            raise DatasetError(f"{path}:{j + 1}: expected 'x y', got {lines[j]!r}")
        try:
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise DatasetError(f"{path}:{j + 1}: not a number in {lines[j]!r}") from None
    else:
        raise DatasetError(f"{path}: truncated, no closing '}}' after {len(points)} of {n_points} points")
    if len(points) != n_points:
        raise DatasetError(f"{path}: header says {n_points} points, file has {len(points)}")
    placeholder = placeholder_reason(np.asarray(points))  # -1 -1 and 0 0 as written, before the shift to 0-based
    if placeholder:
        raise DatasetError(f"{path}: {placeholder}")
    return np.asarray(points, np.float32) - 1.0


def format_pts(landmarks: np.ndarray) -> str:
    """One face as .pts text (1-based coordinates)."""
    pts = np.asarray(landmarks, np.float64) + 1.0
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    return f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n"


def write_pts(path: str, landmarks: np.ndarray) -> None:
    """Write one face `landmarks` (N, 2), 0-based pixels, as a 300-W `.pts` file at `path`."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(format_pts(landmarks))


def find_pairs(root: str) -> list[tuple[str | None, str]]:
    """(image, .pts) pairs under `root`, recursively, sorted for determinism; image None where no image has the
    .pts file's name."""
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: not a directory of images and .pts files")
    pairs = []
    for folder, _, files in sorted(os.walk(root)):
        names = set(files)
        for name in sorted(files):
            if not name.lower().endswith(".pts"):
                continue
            stem = name[:-4]
            image = next((stem + ext for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)
                          if stem + ext in names), None)
            pts = os.path.join(folder, name)
            pairs.append((os.path.join(folder, image) if image else None, pts))
    return pairs


OVERVIEW_IMAGES = ("contact_sheet.png", "pseudolabel_sheet.jpg")  # pictures this project writes beside the faces


def unlabelled_images(root: str, pairs: list[tuple[str | None, str]]) -> list[str]:
    """The images under `root` that no .pts file names: a folder where some labels are missing loads fewer faces
    than it holds pictures, which the user should hear about (the project's own overview sheets aside)."""
    used = {image for image, _ in pairs if image}
    return [os.path.join(folder, name) for folder, _, files in sorted(os.walk(root)) for name in sorted(files)
            if name.lower().endswith(IMAGE_EXTENSIONS) and name not in OVERVIEW_IMAGES
            and os.path.join(folder, name) not in used]


def list_file_hint(root: str) -> str:
    """` (it holds a.json: pass that file as the dataset)` when a folder with no .pts holds dataset lists."""
    lists = sorted(name for name in (os.listdir(root) if os.path.isdir(root) else [])
                   if name.lower().endswith((".json", ".csv", ".txt", ".mat")))
    return f" (it holds {', '.join(lists[:3])}: pass that file as the dataset)" if lists else ""


def load_300w(root: str, num_points: int | None = 68, strict: bool = False) -> tuple[list[Sample], LoadReport]:
    """Every image with a sibling .pts under `root`; bad pairs are skipped and counted."""
    report = LoadReport()
    samples = []
    pairs = find_pairs(root)
    if not pairs:
        raise DatasetError(f"{root}: no .pts files found{list_file_hint(root)}")
    for image, pts in pairs:
        if image is None:
            reason = f"no image named {os.path.basename(pts)[:-4]}.jpg/.png/... beside it"
            if strict:
                raise DatasetError(f"{pts}: {reason}")
            report.skip(pts, reason)
            continue
        try:
            samples.append(Sample(image, read_pts(pts), None, pts))
        except DatasetError as err:
            if strict:
                raise
            report.skip_error(pts, err)
    unlabelled = unlabelled_images(root, pairs)
    if unlabelled:
        report.notes.append(f"{len(unlabelled)} image(s) with no .pts of their name are not used (first: "
                            f"{unlabelled[0]})")
    return validate(samples, num_points, report, strict), report
