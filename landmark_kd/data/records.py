"""One annotated face, its validation, and the record of samples a reader skipped.

Readers never raise mid-epoch: a bad record is either a `DatasetError` naming the file and line at load
time (strict mode) or a skipped-and-counted entry in `LoadReport`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

# Magic bytes of the image formats tf.io.decode_image reads; anything else would fail inside tf.data.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")
_TAIL_BYTES = 4096  # end markers are searched here: some writers append a few bytes after them


class DatasetError(ValueError):
    """Bad annotation or image; the message names the file (and line or index) and what is wrong."""


@dataclass
class Sample:
    image_path: str
    landmarks: np.ndarray  # (N, 2) float32, x then y, image pixels (pixel centres at integers)
    bbox: np.ndarray | None = None  # (4,) x0, y0, x1, y1 in image pixels
    source: str = ""  # "file:line" or "file[index]" for messages

    def face_box(self) -> np.ndarray:
        """The annotated box, else the landmarks' bounding box."""
        if self.bbox is not None:
            return self.bbox
        lo, hi = self.landmarks.min(axis=0), self.landmarks.max(axis=0)
        return np.array([lo[0], lo[1], hi[0], hi[1]], np.float32)


@dataclass
class LoadReport:
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append((source, reason))

    def summary(self) -> str:
        text = f"{self.loaded} samples loaded, {len(self.skipped)} skipped"
        for source, reason in self.skipped[:5]:
            text += f"\n  skipped {source}: {reason}"
        if len(self.skipped) > 5:
            text += f"\n  ... and {len(self.skipped) - 5} more"
        return text


MAX_PIXELS = 50_000_000  # decoding more would take gigabytes (a 1 MB PNG can hold 20000 x 20000 pixels)


def image_dimensions(head: bytes, handle) -> tuple[int, int] | None:
    """(width, height) from a PNG/JPEG/BMP/GIF header without decoding the pixels; None if not found.
    `head` is the file's first bytes, `handle` the open file (JPEG needs a scan for its frame header)."""
    if head.startswith(_SIGNATURES[0]) and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith((b"GIF87a", b"GIF89a")) and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if head.startswith(b"BM") and len(head) >= 26:
        return int.from_bytes(head[18:22], "little", signed=True), abs(int.from_bytes(head[22:26], "little", signed=True))
    if head.startswith(_SIGNATURES[1]):
        handle.seek(2)
        for _ in range(10000):  # markers before the frame header; bounded, so a damaged file cannot spin
            marker = handle.read(4)
            if len(marker) < 4 or marker[0] != 0xFF:
                return None
            kind, length = marker[1], int.from_bytes(marker[2:4], "big")
            if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
                frame = handle.read(5)
                return (int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")) if len(frame) == 5 else None
            handle.seek(length - 2, 1)
    return None


def too_many_pixels(size: tuple[int, int] | None) -> str | None:
    """The reason to refuse an image of `size` (width, height) before decoding it, or None."""
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        return f"image too large to decode: {size[0]}x{size[1]} pixels (the limit is {MAX_PIXELS / 1e6:.0f} million)"
    return None


def check_image_file(path: str) -> str | None:
    """Cheap check that `path` is an image TensorFlow can decode: a known signature and, for PNG and JPEG,
    the end marker (a truncated download is the commonest corruption). Returns a reason or None."""
    if not os.path.isfile(path):
        return f"image not found: {path}"
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            size = image_dimensions(head, handle)
            handle.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
            tail = handle.read()
    except OSError as err:
        return f"image unreadable: {path} ({err.strerror})"
    if not head:
        return f"image is empty: {path}"
    if not any(head.startswith(sig) for sig in _SIGNATURES):
        return f"not a PNG/JPEG/BMP/GIF image: {path}"
    if head.startswith(_SIGNATURES[0]) and b"IEND" not in tail:
        return f"truncated PNG (no IEND chunk): {path}"
    if head.startswith(_SIGNATURES[1]) and b"\xff\xd9" not in tail:
        return f"truncated JPEG (no end-of-image marker): {path}"
    reason = too_many_pixels(size)
    return f"{reason}: {path}" if reason else None


def check_sample(sample: Sample, num_points: int | None, check_image: bool = True) -> str | None:
    """Everything that would break training later, checked now; returns a reason or None."""
    pts = sample.landmarks
    if pts.ndim != 2 or pts.shape[1] != 2:
        return f"landmarks must be (N, 2), got shape {pts.shape}"
    if num_points is not None and pts.shape[0] != num_points:
        return f"expected {num_points} points, got {pts.shape[0]}"
    if not np.all(np.isfinite(pts)):
        bad = int(np.argwhere(~np.isfinite(pts))[0][0])
        return f"non-finite coordinate at point {bad}"
    box = sample.face_box()
    if not np.all(np.isfinite(box)):
        return f"non-finite bbox {box.tolist()}"
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        return f"zero-area face box {np.round(box, 2).tolist()}"
    if check_image:
        return check_image_file(sample.image_path)
    return None


def validate(samples: list[Sample], num_points: int | None, report: LoadReport, strict: bool = False,
             check_images: bool = True) -> list[Sample]:
    """Keep the good samples; skip-and-count the rest, or raise on the first in strict mode."""
    good = []
    for sample in samples:
        reason = check_sample(sample, num_points, check_images)
        if reason is None:
            good.append(sample)
        elif strict:
            raise DatasetError(f"{sample.source}: {reason}")
        else:
            report.skip(sample.source, reason)
    report.loaded = len(good)
    return good
