"""Datasets in the formats people have, behind one `load_dataset` call."""
from __future__ import annotations

import os
import re

from .records import DatasetError, LoadReport, Sample

FORMATS = ("300w", "wflw", "cofw", "custom", "synthetic")


def detect_format(path: str | os.PathLike, data_format: str = "auto") -> str:
    """The reader for `path`: `data_format` where one is named, else a folder is 300-W, `.txt` WFLW, `.mat` COFW,
    `.json`/`.csv` custom."""
    if data_format != "auto":
        return data_format.lower()
    path = os.fspath(path)  # a pathlib.Path has no .lower()
    lower = path.lower()
    if os.path.isdir(path):
        return "300w"
    if lower.endswith(".txt"):
        return "wflw"
    if lower.endswith(".mat"):
        return "cofw"
    if lower.endswith((".json", ".csv")):
        return "custom"
    raise DatasetError(f"{path}: cannot tell the dataset format; pass --data-format ({', '.join(FORMATS[:4])})")


def check_images_root(images_root: str | None, paths, data_format: str = "auto") -> None:
    """ConfigError when --images-root is given but none of `paths` (the data sets it would apply to; None stands
    for the synthetic faces a command reads without one, a missing path is left to its own check) is a WFLW
    list: other formats name their images themselves, so the flag would be silently ignored."""
    from ..errors import ConfigError

    if not images_root:
        return
    given = [os.fspath(p) for p in paths if p is not None]
    if not given:
        raise ConfigError("--images-root is for a WFLW list; no data set is given, so the synthetic faces are read, "
                          "whose image paths are their own")
    found = [p for p in given if os.path.exists(p)]
    formats = [detect_format(p, data_format) for p in found]
    if found and "wflw" not in formats:
        raise ConfigError(f"--images-root is for a WFLW list; {found[0]} is read as {formats[0]} data, whose image "
                          "paths are its own")


def load_dataset(path: str | os.PathLike, data_format: str = "auto", num_points: int | None = None, images_root: str | None = None,
                 strict: bool = False, data_boxes: bool = True) -> tuple[list[Sample], LoadReport]:
    """Samples from a 300W folder, a WFLW list, a COFW .mat or a custom JSON/CSV; bad ones skipped and counted.
    `data_boxes` False drops the files' own face boxes before 68-point faces become 51, so each face is framed
    by the box of all the points in its file (with the jaw), as a 51-point model learnt. A `pathlib.Path` is taken
    as its string: the readers test suffixes."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatasetError(f"{path}: no such file or directory")
    fmt = detect_format(path, data_format)
    if num_points == 51 and fmt in ("300w", "synthetic", "custom"):  # 68-point files serve the 51-point scheme
        samples, report = load_dataset(path, data_format, None, images_root, strict, data_boxes)
        return _inner51(path, samples, report, strict)
    if fmt in ("300w", "synthetic"):
        from .pts300w import load_300w
        samples, report = load_300w(path, num_points, strict)
    elif fmt == "wflw":
        from .wflw import load_wflw
        samples, report = load_wflw(path, images_root, strict)
    elif fmt == "cofw":
        from .cofw import load_cofw
        samples, report = load_cofw(path, strict=strict)
    elif fmt == "custom":
        from .custom import load_custom
        samples, report = load_custom(path, num_points, strict)
    else:
        raise DatasetError(f"unknown dataset format {data_format!r}; choose from {', '.join(FORMATS)}")
    if not data_boxes:
        samples = [Sample(s.image_path, s.landmarks, None, s.source) for s in samples]
    counts = {m.group(1) for _, why in report.skipped
              for m in [re.fullmatch(rf"expected {num_points} points, got (\d+)", why)] if m}
    if num_points is not None and not samples and len(counts) == 1 and len(report.skipped) > 0:
        found = int(counts.pop())  # every face was refused for its point count: the layout, not the faces, is wrong
    elif num_points is not None and samples and samples[0].landmarks.shape[0] != num_points:
        found = samples[0].landmarks.shape[0]
    else:
        found = None
    if found is not None:
        hint = f" (training: pass --scheme {found})" if str(found) in ("68", "98", "29") else ""
        raise DatasetError(f"{path}: has {found} points per face, the scheme (or model) expects {num_points}{hint}")
    if not samples:  # one line: the count and the first reason, which is usually the reason for all
        first = f"; first: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
        raise DatasetError(f"{path}: no usable samples ({len(report.skipped)} skipped{first})")
    return samples, report


def _inner51(path: str, samples: list[Sample], report: LoadReport, strict: bool) -> tuple[list[Sample], LoadReport]:
    """68-point faces as 51 (no jaw) via `convert_68_to_51`, keeping the 68-point box so the crop is unchanged;
    51-point faces as they are; other counts skipped and counted."""
    from ..schemes import convert_68_to_51

    kept, boxless = [], 0
    for sample in samples:
        count = sample.landmarks.shape[0]
        boxless += count == 51 and sample.bbox is None
        if count == 68:
            sample = Sample(sample.image_path, convert_68_to_51(sample.landmarks), sample.face_box(), sample.source)
        elif count != 51:
            reason = f"expected 51 or 68 points for the 51-point scheme, got {count}"
            if strict:
                raise DatasetError(f"{sample.source}: {reason}")
            report.skip(sample.source, reason)
            continue
        kept.append(sample)
    report.loaded = len(kept)
    if not kept:
        raise DatasetError(f"{path}: no usable samples for the 51-point scheme ({len(report.skipped)} skipped)")
    if boxless:  # the model learns (and is scored on) crops of the 68 points' box; the jaw is what is missing
        report.notes.append(f"{boxless} face(s) have 51 points and no face box, so each is cropped around its 51 "
                            "points, tighter than the 68-point box 51-point models use: give each its bbox "
                            "(the face with the jaw)")
    return kept, report


__all__ = ["DatasetError", "LoadReport", "Sample", "load_dataset", "detect_format", "FORMATS"]
