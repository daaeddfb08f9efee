"""COFW `.mat` files (COFW_train_color.mat / COFW_test_color.mat, or the grey originals).

Images live inside the .mat, so they are written once as PNGs into a cache folder beside it and the
samples point there; `phis` rows hold 29 x, 29 y and 29 occlusion flags; boxes are x, y, w, h (1-based).
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np

from ..outputs import atomic_json
from .records import DatasetError, LoadReport, Sample, validate

NUM_POINTS = 29


def _read_mat(path: str) -> dict:
    """Both the v7 (scipy) and v7.3/HDF5 (h5py) variants, as numpy arrays and lists of images."""
    try:
        import scipy.io

        data = scipy.io.loadmat(path)
        images = {k: [np.asarray(im) for im in v.ravel()] for k, v in data.items() if k in ("IsTr", "IsT")}
        arrays = {k: np.asarray(v, np.float64) for k, v in data.items() if k.startswith(("phis", "bboxes"))}
        return {**images, **arrays}
    except NotImplementedError:
        pass  # v7.3: HDF5
    except Exception as err:  # scipy raises many types (ValueError, TypeError, zlib.error, ...) on a corrupt file
        raise DatasetError(f"{path}: not a readable .mat file ({type(err).__name__}: {str(err)[:120]})") from None
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            out = {}
            for key in handle.keys():
                if key in ("IsTr", "IsT"):
                    refs = handle[key][()].ravel()
                    out[key] = [np.asarray(handle[ref][()]).T for ref in refs]
                elif key.startswith(("phis", "bboxes")):
                    out[key] = np.asarray(handle[key][()], np.float64).T
            return out
    except Exception as err:  # h5py: OSError, KeyError, TypeError, ... on a corrupt file
        raise DatasetError(f"{path}: not a readable .mat file ({type(err).__name__}: {str(err)[:120]})") from None


def load_cofw(mat_file: str, cache_dir: str | None = None, strict: bool = False) -> tuple[list[Sample], LoadReport]:
    """(samples, report) from a COFW `.mat` (v7 or v7.3); its images are extracted once beside it."""
    if not os.path.isfile(mat_file):
        raise DatasetError(f"{mat_file}: COFW .mat file not found")
    data = _read_mat(mat_file)
    suffix = "Tr" if "IsTr" in data else "T"
    try:
        images, phis, boxes = data["Is" + suffix], data["phis" + suffix], data["bboxes" + suffix]
    except KeyError as err:
        raise DatasetError(f"{mat_file}: missing variable {err.args[0]!r} (expected IsTr/phisTr/bboxesTr or IsT/...)")
    if phis.ndim != 2 or phis.shape[1] < 2 * NUM_POINTS:
        raise DatasetError(f"{mat_file}: phis has shape {phis.shape}, expected (faces, {3 * NUM_POINTS})")
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise DatasetError(f"{mat_file}: bboxes has shape {boxes.shape}, expected (faces, 4)")
    if not len(images) == len(phis) == len(boxes):
        raise DatasetError(f"{mat_file}: {len(images)} images, {len(phis)} landmark rows, {len(boxes)} boxes")
    cache_dir = cache_dir or os.path.splitext(mat_file)[0] + "_images"
    os.makedirs(cache_dir, exist_ok=True)
    # The images extracted earlier belong to the .mat as it was then: a replaced .mat (another size or time)
    # re-extracts them all, or its landmarks would be paired with the old file's pictures.
    stamp_path, stat = os.path.join(cache_dir, "source.json"), os.stat(mat_file)
    stamp = {"mat": os.path.abspath(mat_file), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        with open(stamp_path) as handle:
            fresh = json.load(handle) == stamp
    except (OSError, ValueError):
        fresh = False
    if not fresh and os.path.exists(stamp_path):
        os.remove(stamp_path)  # an extraction cut short now re-extracts next time too
    report = LoadReport()
    samples = []
    for index, image in enumerate(images):
        source = f"{mat_file}[{index}]"
        path = os.path.join(cache_dir, f"{index:05d}.png")
        if not fresh or not os.path.exists(path):
            image = np.asarray(image)
            if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))) or min(image.shape[:2], default=0) < 1:
                if strict:
                    raise DatasetError(f"{source}: image has shape {image.shape}")
                report.skip(source, f"image has shape {image.shape}")
                continue
            if image.ndim == 3 and image.shape[2] == 3:
                image = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2BGR)
            cv2.imwrite(path, image.astype(np.uint8))
        points = np.stack([phis[index, :NUM_POINTS], phis[index, NUM_POINTS: 2 * NUM_POINTS]], -1) - 1.0
        x, y, w, h = boxes[index, :4]
        bbox = np.array([x - 1, y - 1, x - 1 + w, y - 1 + h], np.float32)
        samples.append(Sample(path, points.astype(np.float32), bbox, source))
    if not fresh:
        atomic_json(stamp_path, stamp)
    return validate(samples, NUM_POINTS, report, strict), report
