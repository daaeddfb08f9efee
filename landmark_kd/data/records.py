"""One annotated face, its validation, and the record of samples a reader skipped.

Readers never raise mid-epoch: a bad record is either a `DatasetError` naming the file and line at load
time (strict mode) or a skipped-and-counted entry in `LoadReport`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from ..errors import DataError

# Magic bytes of the image formats we read: the first five by tf.io.decode_image, TIFF and WebP by OpenCV.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")
_OPENCV_SIGNATURES = (b"II*\x00", b"MM\x00*")  # TIFF; WebP is RIFF....WEBP, see _is_webp
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".jpe")  # JPEG by two more names
_ORIENTATION_TAG, _WIDTH_TAG, _HEIGHT_TAG = 274, 256, 257
_TAIL_BYTES = 4096  # end markers are searched here: some writers append a few bytes after them


class DatasetError(DataError):
    """Bad annotation or image; the message names the file (and line or index) and what is wrong."""


@dataclass
class Sample:
    """One annotated face: its image, (N, 2) landmarks, optional box, and where it came from."""
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
    """How many samples a reader kept, and each skipped one with its `file:line` and reason."""
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about samples that were kept but may not be what was meant

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append((source, reason))

    def skip_error(self, source: str, err: Exception) -> None:
        """Skip with the error's own location when it names `source` more precisely (`file.pts:12`)."""
        message = str(err)
        if message.startswith(source):
            location, _, reason = message[len(source):].partition(": ")
            self.skip(source + location, reason)
        else:
            self.skip(source, message)

    def reason_counts(self) -> dict[str, int]:
        """Skips per kind of reason, most common first: the reason up to its first ': ' (the detail after it, a
        size or a score, differs from file to file)."""
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            kind = reason.split(": ", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def summary(self) -> str:
        text = f"{self.loaded} samples loaded, {len(self.skipped)} skipped"
        for source, reason in self.skipped[:5]:
            text += f"\n  skipped {source}: {reason}"
        if len(self.skipped) > 5:
            text += f"\n  ... and {len(self.skipped) - 5} more"
        for note in self.notes:
            text += f"\n  note: {note}"
        return text


MAX_PIXELS = 50_000_000  # decoding more would take gigabytes (a 1 MB PNG can hold 20000 x 20000 pixels)


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def read_bgr(path: str, flags: int | None = None) -> np.ndarray | None:
    """`cv2.imread(path)` (BGR uint8, None when it cannot be read), with GIFs read as their first frame through
    OpenCV's video reader: opencv-python's imread has no GIF decoder, while training reads GIFs (through
    tf.io.decode_image), so predict, pseudolabel and unlabelled distillation would otherwise drop them. `flags`:
    imread's, IMREAD_COLOR by default (predict reads a huge JPEG with IMREAD_REDUCED_COLOR_k)."""
    import cv2

    from ..quiet import named_native_warnings

    with named_native_warnings(path):  # libjpeg's "Corrupt JPEG data" lines, which would not say which file
        image = imread_color(path, flags)
        if image is None and path.lower().endswith(".gif"):
            capture = cv2.VideoCapture(path)
            ok, frame = capture.read()
            capture.release()
            image = frame if ok else None
    return image


def imread_color(path: str, flags: int | None = None) -> np.ndarray | None:
    """`cv2.imread(path, flags or IMREAD_COLOR)`, except that a TIFF is decoded from its bytes: OpenCV 4.11's
    imread fails on a TIFF turned a quarter by its Orientation tag (5-8), where imdecode reads it and applies the
    turn."""
    import cv2

    flags = cv2.IMREAD_COLOR if flags is None else flags
    try:
        with open(path, "rb") as handle:
            tiff = handle.read(4) in _OPENCV_SIGNATURES
    except OSError:
        return None
    if not tiff:
        return cv2.imread(path, flags)
    try:
        return cv2.imdecode(np.fromfile(path, np.uint8), flags)
    except (OSError, cv2.error):
        return None


def needs_opencv(head: bytes) -> bool:
    """TIFF and WebP: formats tf.io.decode_image cannot read, decoded through OpenCV instead."""
    return head.startswith(_OPENCV_SIGNATURES) or _is_webp(head)


def _tiff_tags(data: bytes, wanted: tuple[int, ...]) -> dict[int, int]:
    """Integer values of `wanted` tags in the first IFD of a TIFF structure (a TIFF file, or a JPEG's EXIF
    block). Malformed structures give what could be read, never an exception."""
    if data[:4] not in _OPENCV_SIGNATURES:
        return {}
    order = "little" if data[:2] == b"II" else "big"
    offset = int.from_bytes(data[4:8], order)
    count = int.from_bytes(data[offset:offset + 2], order) if offset + 2 <= len(data) else 0
    found = {}
    for i in range(min(count, 1000)):
        entry = data[offset + 2 + 12 * i: offset + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind = int.from_bytes(entry[:2], order), int.from_bytes(entry[2:4], order)
        if tag in wanted and kind in (3, 4):  # SHORT or LONG, stored in the entry itself
            found[tag] = int.from_bytes(entry[8:10] if kind == 3 else entry[8:12], order)
    return found


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(head) >= 30:
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    return None


def _jpeg_segments(handle):
    """(marker, payload offset, length) of the segments before a JPEG's scan data, from a file opened at 0; the
    start-of-scan marker (0xDA) comes last when the chain of segments reaches it, so a damaged header shows as
    its absence."""
    handle.seek(2)
    for _ in range(10000):  # bounded, so a damaged file cannot spin
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return
        if marker[1] == 0xFF:  # a fill byte before a marker
            handle.seek(handle.tell() - 1)
            continue
        if marker[1] == 0xDA:
            yield 0xDA, handle.tell(), 0
            return
        length = handle.read(2)
        if len(length) < 2:
            return
        length = int.from_bytes(length, "big")
        yield marker[1], handle.tell(), length - 2
        handle.seek(handle.tell() + length - 2)


def _reaches_scan(handle) -> bool:
    """Whether a JPEG's segments lead to its scan: damaged header bytes break the chain, and libjpeg then fails
    with "missing SOS marker" on every read."""
    return any(kind == 0xDA for kind, _, _ in _jpeg_segments(handle))


def image_dimensions(head: bytes, handle: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from an image header without decoding the pixels; None if not found. `head` is the
    file's first 32 or more bytes, `handle` the open file (JPEG and TIFF need to look further in)."""
    if head.startswith(_SIGNATURES[0]) and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith((b"GIF87a", b"GIF89a")) and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if head.startswith(b"BM") and len(head) >= 26:
        return int.from_bytes(head[18:22], "little", signed=True), abs(int.from_bytes(head[22:26], "little", signed=True))
    if _is_webp(head):
        return _webp_dimensions(head)
    if head.startswith(_OPENCV_SIGNATURES):
        handle.seek(0)
        tags = _tiff_tags(handle.read(1 << 16), (_WIDTH_TAG, _HEIGHT_TAG))
        return (tags[_WIDTH_TAG], tags[_HEIGHT_TAG]) if len(tags) == 2 else None
    if head.startswith(_SIGNATURES[1]):
        for kind, start, length in _jpeg_segments(handle):
            if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
                handle.seek(start)
                frame = handle.read(5)
                return (int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")) if len(frame) == 5 else None
    return None


def _exif_orientation(handle) -> int:
    """The EXIF orientation (1-8) in an open JPEG, 1 when absent. Coordinates in annotation files refer to the
    image as viewers and OpenCV show it, i.e. with this orientation applied."""
    for kind, start, length in _jpeg_segments(handle):
        if kind == 0xE1:
            handle.seek(start)
            block = handle.read(min(length, 1 << 16))
            if block.startswith(b"Exif\0\0"):
                value = _tiff_tags(block[6:], (_ORIENTATION_TAG,)).get(_ORIENTATION_TAG, 1)
                return value if 1 <= value <= 8 else 1
    return 1


def _png_orientation(handle) -> int:
    """The orientation (1-8) in an open PNG's eXIf chunk, 1 when absent: OpenCV's imread turns a PNG by it (before
    or after the image data), as browsers show it."""
    handle.seek(8)
    for _ in range(100000):  # bounded, so a damaged file cannot spin
        header = handle.read(8)
        if len(header) < 8 or header[4:] == b"IEND":
            return 1
        length = int.from_bytes(header[:4], "big")
        if header[4:] == b"eXIf":
            value = _tiff_tags(handle.read(min(length, 1 << 16)), (_ORIENTATION_TAG,)).get(_ORIENTATION_TAG, 1)
            return value if 1 <= value <= 8 else 1
        handle.seek(handle.tell() + length + 4)  # the data and its CRC
    return 1


def _orientation(head: bytes, handle) -> int:
    """The EXIF orientation (1-8) of an open JPEG, PNG or TIFF whose first bytes are `head`; 1 for other formats."""
    if head.startswith(_SIGNATURES[1]):
        return _exif_orientation(handle)
    if head.startswith(_OPENCV_SIGNATURES):  # OpenCV turns a TIFF by its own Orientation tag
        handle.seek(0)
        value = _tiff_tags(handle.read(1 << 16), (_ORIENTATION_TAG,)).get(_ORIENTATION_TAG, 1)
        return value if 1 <= value <= 8 else 1
    return _png_orientation(handle) if head.startswith(_SIGNATURES[0]) else 1


def decode_plan(path: str) -> int:
    """How the input pipeline decodes `path`: 0 through OpenCV (TIFF, WebP), else tf.io.decode_image followed
    by the file's EXIF orientation (1-8; JPEG, or a PNG's eXIf chunk), so training, evaluation and `predict`
    (cv2.imread) see the same pixels."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
            return 0 if needs_opencv(head) else _orientation(head, handle)
    except OSError:
        return 1  # the pipeline drops what it cannot read


def too_many_pixels(size: tuple[int, int] | None) -> str | None:
    """The reason to refuse an image of `size` (width, height) before decoding it, or None."""
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        return f"image too large to decode: {size[0]}x{size[1]} pixels (the limit is {MAX_PIXELS / 1e6:.0f} million)"
    return None


def check_image_file(path: str) -> str | None:
    """Cheap check that `path` is an image TensorFlow can decode: a known signature and, for PNG and JPEG,
    the end marker (a truncated download is the commonest corruption). Returns a reason or None."""
    return inspect_image_file(path)[0]


def inspect_image_file(path: str) -> tuple[str | None, tuple[int, int] | None]:
    """(check_image_file's reason, the (width, height) annotations refer to: EXIF orientation applied; None
    when the header does not say) without decoding the pixels."""
    if not os.path.isfile(path):
        return f"image not found: {path}", None
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            size = image_dimensions(head, handle)
            if size is not None and _orientation(head, handle) >= 5:
                size = size[1], size[0]  # orientations 5-8 turn the picture a quarter
            scan_found = not head.startswith(_SIGNATURES[1]) or _reaches_scan(handle)
            handle.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
            tail = handle.read()
    except OSError as err:
        return f"image unreadable: {path} ({err.strerror})", None
    if not head:
        return f"image is empty: {path}", None
    if not any(head.startswith(sig) for sig in _SIGNATURES) and not needs_opencv(head):
        return f"not a PNG/JPEG/BMP/GIF/TIFF/WebP image: {path}", None
    if head.startswith(_SIGNATURES[0]) and b"IEND" not in tail:
        return f"truncated PNG (no IEND chunk): {path}", size
    if head.startswith(_SIGNATURES[1]) and b"\xff\xd9" not in tail:
        return f"truncated JPEG (no end-of-image marker): {path}", size
    if head.startswith(_SIGNATURES[1]) and (size is None or not scan_found):  # TF's decoder refuses these
        return f"damaged JPEG (its header does not lead to the image data): {path}", size
    reason = too_many_pixels(size)
    return (f"{reason}: {path}" if reason else None), size


def _points_outside(points: np.ndarray, size: tuple[int, int], bbox: np.ndarray | None = None) -> str | None:
    """A reason when most landmarks lie outside the image: coordinates of another image or scale (a face cut
    by the border keeps most of its points inside, and is kept); or when one point or box corner lies more than
    the image's own size past its border, a typo (15000 for 150.00) that would stretch the crop box over it."""
    width, height = size
    inside = (points[:, 0] >= -0.5) & (points[:, 0] <= width - 0.5) & (points[:, 1] >= -0.5) & (points[:, 1] <= height - 0.5)
    if inside.mean() < 0.5:
        lo, hi = points.min(0), points.max(0)
        return (f"only {int(inside.sum())} of {len(points)} points lie inside the {width}x{height} image (the points "
                f"span x {lo[0]:.0f}..{hi[0]:.0f}, y {lo[1]:.0f}..{hi[1]:.0f}: another image's or scale's coordinates?)")
    corners = [] if bbox is None else [("bbox corner", np.reshape(bbox, (2, 2)))]
    for what, xy in [("point", points), *corners]:
        far = (xy[:, 0] < -width) | (xy[:, 0] > 2 * width) | (xy[:, 1] < -height) | (xy[:, 1] > 2 * height)
        if far.any():
            i = int(np.argmax(far))
            return (f"{what} {i} at ({xy[i, 0]:.6g}, {xy[i, 1]:.6g}) lies far outside the {width}x{height} image "
                    "(more than its size past the border: a typo?)")
    return None


def placeholder_reason(points: np.ndarray) -> str | None:
    """A reason when a point sits exactly at (-1, -1) or (0, 0), the values labelling tools write for a point
    they did not place (in the file's own numbering: the .pts reader checks its 1-based values): trained on, it
    pulls its heatmap to the image corner and, without a bbox, stretches the crop box over it. The losses need
    every point, so the face is skipped rather than guessed."""
    for value in (-1.0, 0.0):
        hits = np.flatnonzero(np.all(points == value, axis=1))
        if hits.size:
            listed = ", ".join(str(i) for i in hits[:5]) + (" ..." if hits.size > 5 else "")
            return (f"point{'s' if hits.size > 1 else ''} {listed} at ({value:g}, {value:g}): a placeholder for a point "
                    "the labeller did not place? (training needs every point)")
    return None


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
    reason = placeholder_reason(pts)
    if reason:
        return reason
    box = sample.face_box()
    if not np.all(np.isfinite(box)):
        return f"non-finite bbox {box.tolist()}"
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        hint = " (bbox is [x0, y0, x1, y1], not [x, y, width, height])" if sample.bbox is not None and (
            box[2] < box[0] or box[3] < box[1]) else ""
        return f"zero-area face box {np.round(box, 2).tolist()}{hint}"
    if check_image:
        reason, size = inspect_image_file(sample.image_path)
        return reason or (_points_outside(pts, size, sample.bbox) if size is not None and size[0] * size[1] else None)
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
