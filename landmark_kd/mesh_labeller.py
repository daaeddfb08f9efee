"""MediaPipe's Face Mesh `.tflite` as an independent 68-point labeller (for pseudo-labels, not ground truth).

The mesh model wants a well-centred square crop about 1.5x the face; a second pass re-centred on its own
first answer corrects a poor starting box. Its 468 vertices map to the iBUG 68 points through a table of
vertex indices (averaged where a row has several). The user supplies both files; nothing is downloaded.
Runs with numpy, OpenCV and tflite_runtime only.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import cv2
import numpy as np

from .errors import DataError, MissingFileError, ModelFileError


TABLE_KEY = "ibug68_from_mesh468"
MESH_VERTICES = 468


def read_mesh_table(path: str) -> list[list[int]]:
    """The table's 68 rows of mesh vertex indices. A wrong or swapped file is one error naming it and what is
    wrong, not a traceback (or an IndexError on the first face, for an index past the mesh)."""
    try:
        with open(path, encoding="utf-8") as handle:
            table = json.load(handle)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a JSON text file (binary data: the .tflite model given as --mesh-table?)"
                        ) from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    if not isinstance(table, dict) or TABLE_KEY not in table:
        found = sorted(table)[:5] if isinstance(table, dict) else type(table).__name__
        raise DataError(f"{path}: no {TABLE_KEY!r} entry (found {found}); not a mesh-to-68 vertex table")
    rows = table[TABLE_KEY]
    if not isinstance(rows, list) or len(rows) != 68:
        raise DataError(f"{path}: {TABLE_KEY!r} must list 68 rows, got "
                        f"{len(rows) if isinstance(rows, list) else type(rows).__name__}")
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and row and all(type(v) is int and 0 <= v < MESH_VERTICES for v in row)):
            raise DataError(f"{path}: {TABLE_KEY!r} row {i} is {row!r}; each row lists mesh vertex indices "
                            f"0..{MESH_VERTICES - 1}")
    return rows


class MeshLabeller:
    """`label(image RGB uint8, box x0 y0 x1 y1) -> (68, 2)` image pixels, with the mesh's face-presence score."""

    def __init__(self, model_path: str, table_path: str, threads: int = 1, passes: int = 2, crop_scale: float = 1.5):
        from .export.tflite_runner import make_interpreter, verify_tflite

        for path in (model_path, table_path):
            if os.path.isdir(path):
                raise MissingFileError(f"{path}: a folder; the labeller needs the file itself")
            if not os.path.isfile(path):
                raise MissingFileError(f"{path}: labeller file not found")
        self.rows = read_mesh_table(table_path)
        verify_tflite(model_path)  # a damaged file can kill the process inside the runtime
        try:
            self.interpreter = make_interpreter(model_path, threads)
        except (ValueError, RuntimeError) as err:
            raise ModelFileError(f"{model_path}: not a loadable .tflite model ({err})") from None
        self.input = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        shape = tuple(int(v) for v in self.input["shape"])
        self.mesh_out = next((o for o in outputs if int(np.prod(o["shape"])) == MESH_VERTICES * 3), None)
        self.score_out = next((o for o in outputs if int(np.prod(o["shape"])) == 1), None)
        if self.mesh_out is None or self.score_out is None or len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
            raise ModelFileError(f"{model_path}: not MediaPipe's Face Mesh landmark model (needs a (1, S, S, 3) "
                                 f"input, a {MESH_VERTICES}x3 mesh output and a face score; has input {shape} and "
                                 f"outputs {[tuple(int(v) for v in o['shape']) for o in outputs]})")
        self.size = shape[1]
        self.passes, self.crop_scale = passes, crop_scale

    def _run(self, image: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, float]:
        s = self.size / side
        matrix = np.array([[s, 0, self.size / 2 - s * cx], [0, s, self.size / 2 - s * cy]], np.float32)
        crop = cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        self.interpreter.set_tensor(self.input["index"], (crop.astype(np.float32) / 255.0)[None])
        self.interpreter.invoke()
        mesh = self.interpreter.get_tensor(self.mesh_out["index"]).reshape(468, 3)
        score = float(self.interpreter.get_tensor(self.score_out["index"]).ravel()[0])
        pts = np.stack([mesh[r].mean(0) for r in self.rows])
        pts[:, :2] -= matrix[:, 2]
        return (pts / s).astype(np.float32), 1.0 / (1.0 + np.exp(-score))

    def label_3d(self, image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, float]:
        """(68, 3): `label`'s points with the mesh's depth, in image pixels (the mesh gives z on the scale of x,
        smaller nearer the camera, relative to the face: no distance)."""
        x0, y0, x1, y1 = (float(v) for v in box)
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * self.crop_scale
        pts, score = self._run(image, cx, cy, side)
        for _ in range(self.passes - 1):
            lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
            cx, cy = (lo + hi) / 2
            side = max(hi - lo) * self.crop_scale
            pts, score = self._run(image, cx, cy, side)
        return pts, score

    def label(self, image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, float]:
        pts, score = self.label_3d(image, box)
        return np.ascontiguousarray(pts[:, :2]), score
