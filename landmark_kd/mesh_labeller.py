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

from .errors import DataError, MissingFileError


class MeshLabeller:
    """`label(image RGB uint8, box x0 y0 x1 y1) -> (68, 2)` image pixels, with the mesh's face-presence score."""

    def __init__(self, model_path: str, table_path: str, threads: int = 1, passes: int = 2, crop_scale: float = 1.5):
        from .export.tflite_runner import make_interpreter

        for path in (model_path, table_path):
            if not os.path.isfile(path):
                raise MissingFileError(f"{path}: labeller file not found")
        with open(table_path) as handle:
            rows = json.load(handle)["ibug68_from_mesh468"]
        if len(rows) != 68:
            raise DataError(f"{table_path}: expected 68 rows, got {len(rows)}")
        self.rows = [list(map(int, r)) for r in rows]
        self.interpreter = make_interpreter(model_path, threads)
        self.input = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        self.mesh_out = next(o for o in outputs if int(np.prod(o["shape"])) == 1404)
        self.score_out = next(o for o in outputs if int(np.prod(o["shape"])) == 1)
        self.size = int(self.input["shape"][1])
        self.passes, self.crop_scale = passes, crop_scale

    def _run(self, image: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, float]:
        s = self.size / side
        matrix = np.array([[s, 0, self.size / 2 - s * cx], [0, s, self.size / 2 - s * cy]], np.float32)
        crop = cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        self.interpreter.set_tensor(self.input["index"], (crop.astype(np.float32) / 255.0)[None])
        self.interpreter.invoke()
        mesh = self.interpreter.get_tensor(self.mesh_out["index"]).reshape(468, 3)[:, :2]
        score = float(self.interpreter.get_tensor(self.score_out["index"]).ravel()[0])
        pts = np.stack([mesh[r].mean(0) for r in self.rows])
        return ((pts - matrix[:, 2]) / s).astype(np.float32), 1.0 / (1.0 + np.exp(-score))

    def label(self, image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, float]:
        x0, y0, x1, y1 = (float(v) for v in box)
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * self.crop_scale
        pts, score = self._run(image, cx, cy, side)
        for _ in range(self.passes - 1):
            lo, hi = pts.min(0), pts.max(0)
            cx, cy = (lo + hi) / 2
            side = max(hi - lo) * self.crop_scale
            pts, score = self._run(image, cx, cy, side)
        return pts, score
