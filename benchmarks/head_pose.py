"""Head pose on real faces: how far the angles `landmark_kd.head_pose` fits to 2D landmarks are from the head's
3D orientation in MediaPipe's face mesh, and how it builds the mean 3D face it fits (`--build`).

The reference is independent of the 2D fit: the mean face turned onto each face's 3D mesh points (MediaPipe's
depth included) by a least-squares rotation (Kabsch). Each model's pose comes from its own 68 landmarks alone
(face box from the ground truth, cropped once), as `LandmarkDetector` reports it; the labels' pose too (ytf68's
machine-made 2D points). A flip check needs no reference: on the mirrored photo the yaw and roll change sign.

    python benchmarks/head_pose.py --models real_student_fp16.tflite real_fast_fp16.tflite
    python benchmarks/head_pose.py --build landmark_kd/assets/mean_face_51.json   # how the shipped face was made

Needs ../shared/realfaces (ytf68/, labellers/face_landmark.tflite and mesh468_to_ibug68.json).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, existing_path, model_path, positive_int, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402

REALFACES = os.path.join(os.path.dirname(ROOT), "shared", "realfaces")
EYE_CORNER_MM = 90.0  # outer eye corner to outer eye corner of the mean face: an adult's, roughly


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation R (no reflection) minimising |source @ R - target| for centred (N, 3) point sets."""
    u, _, vt = np.linalg.svd(source.T @ target)
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def mesh_points(labeller, samples, images) -> np.ndarray:
    """(F, 68, 3) MediaPipe mesh points with depth, each face cropped on its ground-truth 68-point box."""
    from benchmarks.real_faces import landmark_box

    return np.stack([labeller.label_3d(images[s.image_path], landmark_box(s))[0] for s in samples]).astype(np.float64)


def build_mean_face(shapes: np.ndarray) -> np.ndarray:
    """(51, 3) millimetres from (F, 68, 3) mesh shapes: generalised Procrustes over the inner 51 points, then
    turned upright (x along the outer eye corners, y from the eyes' to the mouth corners' midpoint, z = x cross y,
    away from the camera), made mirror-symmetric and scaled to EYE_CORNER_MM between the outer eye corners."""
    from landmark_kd.schemes import get_scheme

    def normed(shape):
        shape = shape - shape.mean(0)
        return shape / np.linalg.norm(shape)

    shapes = np.array([normed(s[17:]) for s in shapes])
    mean = shapes[0]
    for _ in range(20):
        aligned = np.array([s @ kabsch(s, mean) for s in shapes])
        new = normed(aligned.mean(0))
        new = new @ kabsch(new, mean)
        done = np.linalg.norm(new - mean) < 1e-12
        mean = new
        if done:
            break
    point = {k: mean[k - 17] for k in (36, 39, 42, 45, 48, 54)}
    x = point[45] - point[36]
    x /= np.linalg.norm(x)
    y = (point[48] + point[54]) / 2 - (point[36] + point[39] + point[42] + point[45]) / 4
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    upright = mean @ np.stack([x, y, np.cross(x, y)]).T
    mirrored = upright * [-1.0, 1.0, 1.0]
    mirrored = mirrored[get_scheme("68").flip_permutation()[17:] - 17]
    face = (upright + mirrored) / 2
    face -= face.mean(0)
    return face * EYE_CORNER_MM / np.linalg.norm(face[45 - 17] - face[36 - 17])


def reference_angles(mesh: np.ndarray, mean_face: np.ndarray) -> np.ndarray:
    """(F, 3) yaw, pitch, roll of the mean face turned onto each face's inner 51 mesh points."""
    from landmark_kd.head_pose import angles_from_rotation

    out = []
    for shape in mesh[:, 17:]:
        rotation = kabsch(mean_face - mean_face.mean(0), shape - shape.mean(0)).T
        out.append(angles_from_rotation(rotation))
    return np.array(out)


def fitted_angles(landmarks: np.ndarray, sizes: list[tuple[int, int]]) -> np.ndarray:
    """(F, 3) yaw, pitch, roll `head_pose` fits to (F, 68, 2) landmarks in images of the given sizes."""
    from landmark_kd.head_pose import head_pose

    return np.array([[(p := head_pose(lm, size)).yaw, p.pitch, p.roll] for lm, size in zip(landmarks, sizes)])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=[], type=model_path, help="68-point .keras/.tflite models")
    parser.add_argument("--realfaces", type=existing_path, default=REALFACES, help="the real-face folder")
    parser.add_argument("--split", default="val", choices=("train", "val"), help="ytf68 split scored")
    parser.add_argument("--build", default=None, metavar="OUT.json",
                        help="instead: build the mean 3D face from ytf68/train's mesh depth and write it here")
    parser.add_argument("--limit", type=positive_int, default=None, help="use only every k-th face, k chosen so "
                        "that about this many are used")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from landmark_kd.quiet import quiet_tensorflow

    quiet_tensorflow()
    from benchmarks.real_faces import landmark_box, load_faces
    from landmark_kd.head_pose import load_mean_face
    from landmark_kd.mesh_labeller import MeshLabeller

    labellers = os.path.join(args.realfaces, "labellers")
    mesh_labeller = MeshLabeller(os.path.join(labellers, "face_landmark.tflite"),
                                 os.path.join(labellers, "mesh468_to_ibug68.json"))
    split = "train" if args.build else args.split
    samples, images = load_faces(os.path.join(args.realfaces, "ytf68", split))
    if args.limit and args.limit < len(samples):
        samples = samples[::-(-len(samples) // args.limit)]
    mesh = mesh_points(mesh_labeller, samples, images)
    if args.build:
        face = build_mean_face(mesh)
        note = (f"Mean 3D face of the 51 inner points of the 68-point layout, millimetres (outer eye corners "
                f"{EYE_CORNER_MM:g} mm apart); x right, y down, z away from the camera. Built by "
                f"`python benchmarks/head_pose.py --build` from MediaPipe face mesh depth (face_landmark.tflite, "
                f"Apache-2.0) on {len(samples)} ytf68/train frames: generalised Procrustes, upright, mirror-symmetric.")
        rows = ",\n  ".join(json.dumps(row) for row in np.round(face, 2).tolist())  # one point per line
        with open(args.build, "w") as handle:
            handle.write(f'{{"note": {json.dumps(note)},\n "units": "mm",\n "points": [\n  {rows}\n ]\n}}\n')
        print(f"mean face of {len(samples)} faces written to {args.build}")
        return 0
    mean_face = np.asarray(load_mean_face())
    reference = reference_angles(mesh, mean_face)
    sizes = [(images[s.image_path].shape[1], images[s.image_path].shape[0]) for s in samples]
    rows = {"labels (ytf68, 2D)": fitted_angles(np.stack([s.landmarks for s in samples]), sizes),
            "MediaPipe mesh (2D only)": fitted_angles(mesh[:, :, :2], sizes)}
    flips = {}
    if args.models:
        from landmark_kd.inference import LandmarkDetector

        for path in args.models:
            detector = LandmarkDetector(path, "full", refine=0)
            pred, mirrored_pred = [], []
            for s in samples:
                image = images[s.image_path]
                box = landmark_box(s)
                pred.append(detector(image, [box])[0].landmarks)
                width = image.shape[1]
                mirror_box = [width - 1 - box[2], box[1], width - 1 - box[0], box[3]]
                mirrored_pred.append(detector(np.ascontiguousarray(image[:, ::-1]), [mirror_box])[0].landmarks)
            name = os.path.basename(path)
            rows[name] = fitted_angles(np.stack(pred), sizes)
            flipped = fitted_angles(np.stack(mirrored_pred), sizes)
            flips[name] = np.abs(flipped - rows[name] * [-1, 1, -1]).mean(0)  # mirrored: -yaw, pitch, -roll
    big = np.abs(reference[:, 0]) >= 25
    print(f"ytf68/{split}: {len(samples)} faces; reference (mesh 3D) yaw {reference[:, 0].min():.0f} to "
          f"{reference[:, 0].max():.0f} deg, pitch {reference[:, 1].min():.0f} to {reference[:, 1].max():.0f}, "
          f"roll {reference[:, 2].min():.0f} to {reference[:, 2].max():.0f}; {int(big.sum())} faces with |yaw| >= 25")
    print("mean absolute difference from the mesh's 3D orientation, degrees (yaw / pitch / roll; |yaw| >= 25: yaw)")
    print("| 2D landmarks from | yaw | pitch | roll | yaw, |yaw| >= 25 | flip check yaw / pitch / roll |")
    print("|---|---|---|---|---|---|")
    results = {"faces": len(samples), "turned_faces": int(big.sum()), "rows": {}}
    for name, angles in rows.items():
        error = np.abs(angles - reference)
        turned = float(error[big, 0].mean()) if big.any() else float("nan")
        flip = " / ".join(f"{v:.2f}" for v in flips[name]) if name in flips else "-"
        print(f"| {name} | {error[:, 0].mean():.2f} | {error[:, 1].mean():.2f} | {error[:, 2].mean():.2f} | "
              f"{turned:.2f} | {flip} |")
        results["rows"][name] = {"mae": error.mean(0).tolist(), "mae_yaw_turned": turned,
                                 "flip": flips[name].tolist() if name in flips else None}
    if args.json:
        atomic_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
