"""A documented format for your own data, as JSON or CSV.

JSON: `{"samples": [{"image": "a.jpg", "landmarks": [[x, y], ...], "bbox": [x0, y0, x1, y1]}, ...]}`
(or the bare list); `bbox` is optional. CSV: a header `image,bbox_x0,bbox_y0,bbox_x1,bbox_y1,x0,y0,x1,y1,...`
where the bbox columns are optional (columns or cells may be empty); coordinate columns are matched by name
(`x0`/`y0` or `x_0`/`y_0`), so their order does not matter. Image paths are relative to the
annotation file's folder unless absolute. Coordinates are 0-based pixels.
"""
from __future__ import annotations

import csv
import json
import os
import re

import numpy as np

from .records import DatasetError, LoadReport, Sample, validate


def _sample(entry: object, base: str, source: str) -> Sample:
    if not isinstance(entry, dict):
        raise DatasetError(f"{source}: expected an object with 'image' and 'landmarks'")
    for key in ("image", "landmarks"):
        if key not in entry:
            raise DatasetError(f"{source}: missing field {key!r}")
    try:
        points = np.asarray(entry["landmarks"], np.float32)
    except (TypeError, ValueError):
        raise DatasetError(f"{source}: field 'landmarks' is not a list of [x, y] numbers") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise DatasetError(f"{source}: field 'landmarks' must be [[x, y], ...], got shape {points.shape}")
    bbox = entry.get("bbox")
    if bbox is not None:
        try:
            bbox = np.asarray(bbox, np.float32).reshape(4)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: field 'bbox' must be [x0, y0, x1, y1]") from None
    image = str(entry["image"])
    if os.sep == "/" and "\\" in image and not os.path.exists(os.path.join(base, image)):
        image = image.replace("\\", "/")  # a file written on Windows (img\\a.jpg)
    return Sample(os.path.join(base, image), points, bbox, source)


_BBOX_COLUMNS = ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")
_COORDINATE = re.compile(r"([xy])_?(\d+)", re.IGNORECASE)


def _csv_columns(header: list[str], path: str) -> tuple[list[int], list[int]]:
    """(bbox column indices, coordinate column indices in x0, y0, x1, y1, ... order), read from the header's
    names, so that a file with every x before every y, or its columns in another order, is read right; any
    other column is an error naming it (it would otherwise become a point)."""
    given = [c for c in _BBOX_COLUMNS if c in header]
    if given and len(given) != 4:
        raise DatasetError(f"{path}:1: bbox columns {given} given without the rest of {', '.join(_BBOX_COLUMNS)}")
    bbox_cols = [header.index(c) for c in given]
    named: dict[tuple[int, str], int] = {}
    for i, name in enumerate(header):
        if i == 0 or i in bbox_cols:
            continue
        match = _COORDINATE.fullmatch(name.strip())
        if match is None:
            raise DatasetError(f"{path}:1: column {i + 1} ({name!r}) is not a coordinate: the header is image, then "
                               f"optionally {', '.join(_BBOX_COLUMNS)}, then x0, y0, x1, y1, ...")
        key = int(match.group(2)), match.group(1).lower()
        if key in named:
            raise DatasetError(f"{path}:1: column {name!r} appears twice")
        named[key] = i
    indices = sorted({k for k, _ in named})
    for k in indices:
        for axis in "xy":
            if (k, axis) not in named:
                raise DatasetError(f"{path}:1: point {k} has no {axis}{k} column")
    if indices and indices != list(range(indices[0], indices[0] + len(indices))):
        missing = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
        raise DatasetError(f"{path}:1: no columns for point(s) {missing[:5]} between {indices[0]} and {indices[-1]}")
    return bbox_cols, [named[k, axis] for k in indices for axis in "xy"]


def load_custom(path: str | os.PathLike, num_points: int | None = None, strict: bool = False
                ) -> tuple[list[Sample], LoadReport]:
    """(samples, report) from our JSON or CSV layout (see the README); `num_points` None accepts any count."""
    path = os.fspath(path)  # a pathlib.Path: its suffix is tested as a string
    if os.path.isdir(path):
        raise DatasetError(f"{path}: a folder, not a custom annotation file (.json or .csv, see the README)")
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: annotation file not found")
    base = os.path.dirname(os.path.abspath(path))
    report = LoadReport()
    samples = []
    if path.lower().endswith(".json"):
        try:
            with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark is not data
                data = json.load(handle)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
        except UnicodeDecodeError as err:
            raise DatasetError(f"{path}: not UTF-8 text (byte {err.start})") from None
        except RecursionError:
            raise DatasetError(f"{path}: JSON nested too deeply") from None
        entries = data.get("samples") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise DatasetError(f"{path}: expected a list of samples or {{'samples': [...]}}")
        for index, entry in enumerate(entries):
            source = f"{path}[{index}]"
            try:
                samples.append(_sample(entry, base, source))
            except DatasetError as err:
                if strict:
                    raise
                report.skip_error(source, err)
    elif path.lower().endswith(".csv"):
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.reader(handle))
        except UnicodeDecodeError as err:
            raise DatasetError(f"{path}: not UTF-8 text (byte {err.start})") from None
        except csv.Error as err:
            raise DatasetError(f"{path}: malformed CSV ({err})") from None
        if rows and len(rows[0]) == 1 and rows[0][0].startswith("image") and rows[0][0][5:6] in (";", "\t", "|"):
            raise DatasetError(f"{path}:1: the columns are separated by {rows[0][0][5:6]!r}; this reader takes "
                               "commas")
        if not rows or not rows[0] or rows[0][0] != "image":
            raise DatasetError(f"{path}:1: header must start with 'image'")
        header = rows[0]
        bbox_cols, point_cols = _csv_columns(header, path)
        for number, row in enumerate(rows[1:], 2):
            source = f"{path}:{number}"
            if not any(cell.strip() for cell in row):
                continue
            try:
                if len(row) != len(header):
                    raise DatasetError(f"{source}: expected {len(header)} columns, got {len(row)}")
                try:
                    coords = [float(row[i]) for i in point_cols]
                    bbox = [float(row[i]) for i in bbox_cols] if bbox_cols and all(row[i].strip() for i in bbox_cols) else None
                except ValueError:
                    raise DatasetError(f"{source}: a coordinate is not a number") from None
                entry = {"image": row[0], "landmarks": np.reshape(coords, (-1, 2)).tolist(), "bbox": bbox}
                samples.append(_sample(entry, base, source))
            except DatasetError as err:
                if strict:
                    raise
                report.skip_error(source, err)
    else:
        raise DatasetError(f"{path}: custom annotations must be .json or .csv")
    return validate(samples, num_points, report, strict), report
