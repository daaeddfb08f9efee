"""Head pose (yaw, pitch, roll) from 2D landmarks: a mean 3D face fitted to them with OpenCV's solvePnP.

The 3D face is the 51 inner points of the 68-point layout (brows, nose, eyes, mouth: the jaw line is a
silhouette that slides over the face as the head turns, so it has no fixed 3D point), in millimetres, built by
`benchmarks/head_pose.py --build` from MediaPipe's face mesh depth on real video frames and shipped in
`assets/mean_face_51.json`. Only numpy and OpenCV are needed, so it runs on a board beside a `.tflite` model.

The fit uses the 41 points of the nose, eyes and mouth (27-67 of 68): the brows move with expression, and
leaving them out brings the angles closer to the mesh's own 3D orientation on real faces (benchmarks/head_pose.py,
on both ytf68 splits).

Angles are in degrees, from the viewer's side, relative to the line of sight from the camera to the face: zero
is a face looking straight at the camera with its eyes and mouth corners in an upright plane, wherever it is in
the picture; yaw > 0 when the face turns towards the image's right edge, pitch > 0 when it tilts up, roll > 0
when it leans clockwise in the image. Measured against the line of sight rather than the camera's axis, they
depend little on the camera's focal length, which a photo does not tell: it is taken as the image's longer side
(a 53-degree field of view) unless given. For a face in the picture's corner and a lens 18 to 71 degrees wide that
guess costs at most 2 degrees (the camera-axis angles would be 15-19 off); a 90-degree lens up to 5, a 112-degree
one over 20: pass `focal` for wide-angle pictures. It also sets the distance (`translation`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .errors import ConfigError, DataError

MEAN_FACE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "mean_face_51.json")
POSE_SCHEMES = {"68": slice(17, 68), "51": slice(0, 51)}  # layout -> its 51 inner points, in 68-point order
FIT_POINTS = slice(10, 51)  # of the 51 inner points: nose, eyes and mouth (27-67 of 68), not the brows


@dataclass(frozen=True, eq=False)  # array fields: compare the angles, not the objects
class HeadPose:
    """Where a head faces, in degrees against the line of sight (see the module's conventions), with the fitted
    rotation (head -> camera frame, for drawing) and translation (millimetres, camera frame: the face's distance
    under the assumed focal length)."""
    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    translation: np.ndarray
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the image it was fitted in, and the focal length:
    focal: float | None = None  # what `refit` fits new landmarks of the same face with

    def to_dict(self) -> dict:
        return {name: round(value, 1) + 0.0 for name, value in  # + 0.0: no -0.0 in the JSON
                (("yaw", self.yaw), ("pitch", self.pitch), ("roll", self.roll))}

    def refit(self, landmarks: np.ndarray) -> "HeadPose | None":
        """The pose of new landmarks of this face in the same picture (smoothed ones, say); None where none fits."""
        try:
            return head_pose(landmarks, self.image_size, self.focal)
        except DataError:
            return None


@lru_cache(maxsize=4)
def load_mean_face(path: str = MEAN_FACE_FILE) -> np.ndarray:
    """(51, 3) mean face, millimetres: x to the image's right, y down, z away from the camera (nose tip nearest).
    Read once per file (read-only)."""
    try:
        with open(path) as handle:
            points = np.asarray(json.load(handle)["points"], np.float64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a mean-face file ({type(err).__name__}: {err})") from None
    if points.shape != (51, 3) or not np.all(np.isfinite(points)):
        raise DataError(f"{path}: expected 51 finite points of x, y, z, got shape {points.shape}")
    points.flags.writeable = False
    return points


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head -> camera rotation of (yaw, pitch, roll) degrees: roll in the face's plane, then pitch, then yaw."""
    y, p, r = np.radians([yaw, pitch, roll])
    c, s = np.cos(r), np.sin(r)
    return _rotation_y(-y) @ _rotation_x(-p) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a head -> camera rotation; inverse of `rotation_from_angles`."""
    rotation = np.asarray(rotation, np.float64)
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # the face's normal, towards the camera when frontal
    yaw = np.arctan2(forward[0], -forward[2])
    pitch = np.arctan2(-forward[1], np.hypot(forward[0], forward[2]))
    in_plane = (_rotation_y(-yaw) @ _rotation_x(-pitch)).T @ rotation  # what is left: roll about the normal
    roll = np.arctan2(in_plane[1, 0], in_plane[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def line_of_sight(translation: np.ndarray) -> np.ndarray:
    """The rotation that turns the camera's axis (+z) onto the direction from the camera to `translation`, by yaw
    then pitch (no roll): the frame a face looking at the camera is upright and frontal in."""
    direction = np.asarray(translation, np.float64).ravel()
    direction = direction / np.linalg.norm(direction)
    across = np.arctan2(direction[0], direction[2])
    up = np.arctan2(-direction[1], np.hypot(direction[0], direction[2]))
    return _rotation_y(across) @ _rotation_x(up)


def camera_matrix(image_size: tuple[int, int], focal: float | None = None) -> np.ndarray:
    """Pinhole intrinsics for a (width, height) image: focal length in pixels (default the longer side)."""
    width, height = image_size
    f = float(focal) if focal is not None else float(max(width, height))
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])


def _inner_points(landmarks: np.ndarray) -> np.ndarray:
    """The 51 inner points (float64, contiguous: OpenCV takes no strided views) of 68- or 51-point landmarks."""
    points = np.asarray(landmarks, np.float64)
    layout = {68: "68", 51: "51"}.get(points.shape[0]) if points.ndim == 2 and points.shape[1] == 2 else None
    if layout is None:
        raise ConfigError(f"head pose needs the 68- or 51-point layout (x, y per point), got landmarks of shape "
                          f"{points.shape}")
    return np.ascontiguousarray(points[POSE_SCHEMES[layout]])


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int], focal: float | None = None,
              mean_face: np.ndarray | None = None) -> HeadPose:
    """The head pose of one face from its 68- or 51-point landmarks (image pixels) in a (width, height) image."""
    inner = _inner_points(landmarks)
    if not np.all(np.isfinite(inner)):
        raise DataError("head pose: the landmarks hold NaN or infinite values")
    if len(image_size) != 2:  # image.shape (H, W, 3) passed as it comes: the order is OpenCV's, width first
        raise DataError(f"head pose: image_size is (width, height), got {tuple(image_size)} (for a numpy image: "
                        "(image.shape[1], image.shape[0]))")
    if not min(image_size) >= 1:  # not `< 1`: a NaN side passed it
        raise DataError(f"head pose: an image of {image_size[0]}x{image_size[1]} pixels")
    if focal is not None and not (np.isfinite(focal) and focal > 0):  # a negative one mirrored the pose silently
        raise ConfigError(f"head pose: focal {focal!r} must be a positive number of pixels (None: the image's "
                          "longer side)")
    model = load_mean_face() if mean_face is None else mean_face
    try:
        ok, rvec, tvec = cv2.solvePnP(np.ascontiguousarray(model[FIT_POINTS]), inner[FIT_POINTS],
                                      camera_matrix(image_size, focal), None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:  # points collapsed onto one spot: OpenCV asserts on their spread
        ok = False
    if not ok or tvec[2, 0] <= 0:
        raise DataError("head pose: no pose fits these landmarks (collapsed, or behind the camera)")
    rotation = cv2.Rodrigues(rvec)[0]
    translation = tvec.ravel()
    angles = angles_from_rotation(line_of_sight(translation).T @ rotation)
    return HeadPose(*angles, rotation=rotation, translation=translation, image_size=(int(image_size[0]),
                    int(image_size[1])), focal=focal)


def face_centred_pose(landmarks: np.ndarray) -> HeadPose:
    """`head_pose` of landmarks whose picture is unknown (a dataset's labels): a camera centred on the face with a
    focal length of four times the landmarks' box side, as for a face filling a quarter of the picture's side.
    Within a degree of the pose in the picture for a face near its middle; up to about 4 degrees off for one far
    off the axis of a wide lens, whose perspective this camera cannot know (tests/test_head_pose.py)."""
    points = np.asarray(landmarks, np.float64)
    if not np.all(np.isfinite(points)):
        raise DataError("head pose: the landmarks hold NaN or infinite values")
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = round(max(float(np.max(hi - lo)), 1.0) * 4)
    return head_pose(points - (lo + hi) / 2 + side / 2, (side, side))


def draw_pose_axes(image: np.ndarray, pose: HeadPose, landmarks: np.ndarray, length: float | None = None,
                   thickness: int = 2) -> None:
    """Draws the head's axes in place from the nose tip: red along the face's x axis (towards the image's right
    when frontal), green along its y axis (down), blue out of the face (towards the viewer); `length` in pixels,
    default the outer-eye-corner distance."""
    inner = _inner_points(landmarks)
    nose = inner[13]  # point 30 of 68: the nose tip
    length = float(length if length is not None else np.linalg.norm(inner[28] - inner[19]))
    axes = pose.rotation @ np.diag([1.0, 1.0, -1.0])  # x, y, and z turned towards the camera
    for column, colour in zip(range(3), ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        direction = axes[:2, column]  # its image-plane part: foreshortened as the axis turns away
        end = nose + length * direction
        cv2.arrowedLine(image, tuple(int(round(v)) for v in nose), tuple(int(round(v)) for v in end), colour,
                        thickness, cv2.LINE_AA, tipLength=0.15)
