"""Video landmarks: speed and jitter of running the face detector on every frame vs tracking, on a real face.

    python benchmarks/video_tracking.py                                   # the shipped model
    python benchmarks/video_tracking.py --model runs/student/best.keras --frames 90 --pan 30

The clip: scikit-image's astronaut photo (one real face) held still for --frames frames, each with its own
Gaussian sensor noise (sigma --noise grey levels), then --pan frames in which the view pans 1 px per frame (the
face moves left). Three pipelines, same landmark model and face detector:
  (a) detector every frame, raw landmarks (what `predict --no-track --no-smooth` does);
  (b) detector every frame + One-Euro smoothing (`predict --no-track`);
  (c) FaceTracker + One-Euro (`predict`, the default): the detector runs every --redetect-every frames, or
      when a face looks lost; in between the crop is framed on the previous frame's landmarks, turned by
      their eye line;
  (d) as (c) with upright crops (`LandmarkDetector(align=False)`): what alignment is worth (try --tilt 60).
Columns:
  fps: frames per second of the whole pipeline (detection, crop, model, smoothing) over all frames, after one
    warm-up frame; detector runs: how often the face detector ran.
  jitter: on the still frames, per landmark the standard deviation of its position across frames (radial,
    sqrt(var x + var y)), averaged over landmarks; in pixels and in % of the inter-ocular distance (outer eye
    corners, 36 and 45 of 68 points, measured on (a)'s mean shape).
  offset: distance of the pipeline's mean still-frame landmarks from (a)'s, in % of the inter-ocular distance.
  pan error: on the panning frames, mean distance of the landmarks from (a)'s still-frame mean shape moved by
    the pan; lag (smoothing) or a lost track shows here.
  frames with the face: frames where the pipeline returned the astronaut's face.
  pose jitter: on the still frames, the standard deviation of the face's head pose (yaw / pitch / roll, degrees;
    68- and 51-point models), fitted to the landmarks each pipeline gives.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import (ArgumentParser, finite_float, model_path, non_negative_float, non_negative_int,  # noqa: E402
                             positive_float, positive_int, run as run_cli, seed)

from landmark_kd.inference import (  # noqa: E402
    DEFAULT_MODEL_NAME,
    PRETRAINED_DIR,
    LandmarkDetector,
    default_model_path,
)
from landmark_kd.tracking import DetectionSmoother, FaceTracker  # noqa: E402


def make_clip(still: int, pan: int, noise: float, seed: int = 0, tilt: float = 0.0
              ) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (RGB uint8) and each frame's pan offset in pixels: a still segment, then a 1 px/frame pan; the
    photo turned by `tilt` degrees (clockwise on screen) about the face first."""
    import cv2
    from skimage import data

    photo = data.astronaut()  # 512 x 512 RGB, one face in the upper middle
    if tilt:
        photo = cv2.warpAffine(photo, cv2.getRotationMatrix2D((225.0, 120.0), -tilt, 1.0), photo.shape[1::-1])
    width = photo.shape[1] - pan
    offsets = np.concatenate([np.zeros(still, int), np.arange(1, pan + 1)])
    rng = np.random.default_rng(seed)
    frames = []
    for x in offsets:
        view = photo[:, x:x + width].astype(np.float32)
        frames.append(np.clip(view + rng.normal(0.0, noise, view.shape), 0, 255).round().astype(np.uint8))
    return frames, offsets


def pick(faces, previous_centre: np.ndarray | None):
    """The followed face: nearest the previous one's landmark centre (first frame: the largest box)."""
    if not faces:
        return None
    if previous_centre is None:
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - previous_centre))


def run(name: str, step, frames: list[np.ndarray]) -> dict:
    """Per-frame landmarks and head pose (yaw, pitch, roll) of the followed face (NaN where missing) and the
    pipeline's frame rate."""
    points, poses, centre = [], [], None
    start = time.perf_counter()
    for image in frames:
        face = pick(step(image), centre)
        if face is None:
            points.append(None)
            poses.append([np.nan] * 3)
            continue
        centre = face.landmarks.mean(0)
        points.append(np.asarray(face.landmarks, np.float64))
        poses.append([face.pose.yaw, face.pose.pitch, face.pose.roll] if face.pose is not None else [np.nan] * 3)
    elapsed = time.perf_counter() - start
    size = next((p.shape for p in points if p is not None), (0, 2))
    stacked = np.stack([p if p is not None else np.full(size, np.nan) for p in points])
    return {"name": name, "points": stacked, "poses": np.array(poses, np.float64), "fps": len(frames) / elapsed}


def jitter(points: np.ndarray) -> float:
    """Mean over landmarks of the radial standard deviation of each landmark's position across frames."""
    found = points[~np.isnan(points).any(axis=(1, 2))]
    if len(found) < 2:
        return float("nan")
    return float(np.sqrt(found.var(axis=0).sum(axis=1)).mean())


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, type=model_path,
                        help=".keras or .tflite landmark model (default: the shipped one)")
    parser.add_argument("--detector", default="blazeface", help="face detector (as in predict --detector)")
    parser.add_argument("--frames", type=positive_int, default=90, help="still frames")
    parser.add_argument("--pan", type=non_negative_int, default=30, help="panning frames after the still ones (1 px/frame)")
    parser.add_argument("--noise", type=non_negative_float, default=3.0, help="per-frame Gaussian noise sigma, grey levels")
    parser.add_argument("--redetect-every", type=positive_int, default=15, help="the tracker runs the face detector every "
                        "N frames")
    parser.add_argument("--fps", type=positive_float, default=30.0, help="the clip's frame rate (One-Euro time step)")
    parser.add_argument("--threads", type=positive_int, default=1, help="TFLite threads")
    parser.add_argument("--seed", type=seed, default=0, help="random seed of the per-frame noise")
    parser.add_argument("--tilt", type=finite_float, default=0.0, help="turn the clip's photo by this many degrees "
                        "(clockwise) about the face: a tilted head")
    parser.add_argument("--refine", type=non_negative_int, default=1, help="refinement passes of the detector-every-frame "
                        "pipelines (as predict --refine; the tracker crops from the previous landmarks)")
    args = parser.parse_args(argv)
    if args.frames < 2:  # a jitter needs two positions
        parser.error(f"argument --frames: must be at least 2, got {args.frames}")
    try:
        model = args.model or default_model_path()
    except FileNotFoundError:
        print(f"error: the shipped model {os.path.join(PRETRAINED_DIR, DEFAULT_MODEL_NAME)} is missing; pass "
              "--model (a .keras or .tflite landmark model)", file=sys.stderr)
        return 2
    detector = LandmarkDetector(model, args.detector, args.threads, refine=args.refine)
    frames, offsets = make_clip(args.frames, args.pan, args.noise, args.seed, args.tilt)
    for image in frames[:3]:  # warm-up: graph tracing, first interpreter calls
        detector(image)
    dt = 1.0 / args.fps

    def every_frame(smooth: bool):
        smoother = DetectionSmoother() if smooth else None  # what predict --no-track runs

        def step(image):
            faces = detector(image)
            return smoother(faces, dt, image) if smoother else faces
        return step

    tracker = FaceTracker(detector, redetect_every=args.redetect_every, smooth=True, fps=args.fps)
    upright = FaceTracker(LandmarkDetector(detector.predictor, args.detector, align=False, refine=args.refine),
                          redetect_every=args.redetect_every, smooth=True, fps=args.fps)
    runs = [run("(a) detector every frame", every_frame(False), frames),
            run("(b) detector every frame + One-Euro", every_frame(True), frames),
            run(f"(c) tracker (re-detect every {args.redetect_every}) + One-Euro", tracker.update, frames),
            run("(d) as (c), upright crops (align off)", upright.update, frames)]
    detector_runs = [len(frames), len(frames), tracker.detector_runs, upright.detector_runs]

    still = slice(0, args.frames)
    reference = np.nanmean(runs[0]["points"][still], axis=0)  # (a)'s mean shape on the still frames
    corners = detector.scheme.outer_eye_corners
    iod = float(np.linalg.norm(reference[corners[0]] - reference[corners[1]])) if corners else float("nan")
    print(f"model {model} ({detector.scheme.name} points), detector {args.detector}; clip {frames[0].shape[1]}x"
          f"{frames[0].shape[0]}: {args.frames} still frames + {args.pan} panning 1 px/frame, noise sigma "
          f"{args.noise:g}; inter-ocular distance {iod:.1f} px\n")
    print("| pipeline | fps | detector runs | jitter px | jitter % IOD | offset % IOD | pan error px | frames with "
          "the face | pose jitter yaw / pitch / roll, degrees |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result, calls in zip(runs, detector_runs):
        points = result["points"]
        still_jitter = jitter(points[still])
        if args.pan:
            expected = reference[None] - np.stack([[o, 0.0] for o in offsets[args.frames:]])[:, None, :]
            pan_error = f"{np.nanmean(np.linalg.norm(points[args.frames:] - expected, axis=2)):.2f}"
        else:
            pan_error = "-"
        found = int((~np.isnan(points).any(axis=(1, 2))).sum())
        relative = f"{100 * still_jitter / iod:.2f}" if iod > 1 else "-"  # no eye corners, or a collapsed shape
        # how far its still-frame mean shape is from (a)'s: the landmarks it settles on, not their noise
        offset = np.linalg.norm(np.nanmean(points[still], axis=0) - reference, axis=1).mean()
        offset = f"{100 * offset / iod:.2f}" if iod > 1 else "-"
        poses = result["poses"][still]
        poses = poses[~np.isnan(poses).any(axis=1)]
        pose_jitter = " / ".join(f"{v:.2f}" for v in poses.std(axis=0)) if len(poses) > 1 else "-"
        print(f"| {result['name']} | {result['fps']:.1f} | {calls} | {still_jitter:.3f} | {relative} | {offset} | "
              f"{pan_error} | {found}/{len(frames)} | {pose_jitter} |")
    if tracker.lost:
        print(f"\ntracker: a face looked lost {tracker.lost} time(s) (each forced a detection); "
              f"{tracker.tracks_started} track(s) started")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
