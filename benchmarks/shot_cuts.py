"""Video landmarks across shot cuts: how far off each video pipeline is on the frames after the picture cuts
from one person to another, on real labelled faces.

    python benchmarks/shot_cuts.py                                 # the shipped model, ytf68/val
    python benchmarks/shot_cuts.py --model runs/student/best.keras --cuts 40 --json runs/shot_cuts.json

Each clip: one ytf68/val photo placed at a random size and place on a grey --canvas, held for --frames frames
(each with its own Gaussian noise), then a cut to another person's photo, placed afresh, for --frames more. The
ground truth moves with each photo. Pipelines, same model and face detector:
  tracker: `predict`'s default (tracking.FaceTracker, One-Euro smoothing per track);
  untracked: `predict --no-track` (the detector on every frame, smoothing matched by box overlap);
  raw: the detector on every frame, no smoothing (the reference: each frame on its own).
Per pipeline: inner-51 NME (outer-eye-corner distance) of the face nearest the ground truth on the last frame
before the cut, on the first frame after it, and on the later frames; and in how many cuts the tracker gave the
new face a new track id. A pipeline that carries the old face's state over the cut shows it in the "first
after" column.
"""
from __future__ import annotations

import glob
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import (ArgumentParser, model_path, non_negative_float, positive_float, positive_int,  # noqa: E402
                             run as run_cli, seed)
from landmark_kd.outputs import atomic_json  # noqa: E402


def person(path: str) -> str:
    """ytf68 names are `<split>_<First_Last>_<frame>.jpg`: the person without the frame number."""
    return os.path.basename(path).rsplit("_", 1)[0]


def place(image: np.ndarray, points: np.ndarray, canvas: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """`image` scaled to a random 45-95% of a grey canvas side at a random place; its points moved with it."""
    import cv2

    side = canvas * rng.uniform(0.45, 0.95)
    scale = side / max(image.shape[:2])
    w, h = int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale))
    x, y = int(rng.integers(0, canvas - w + 1)), int(rng.integers(0, canvas - h + 1))
    out = np.full((canvas, canvas, 3), 110, np.uint8)
    out[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return out, (points + 0.5) * [w / image.shape[1], h / image.shape[0]] - 0.5 + [x, y]


def make_clips(root: str, cuts: int, frames: int, canvas: int, noise: float, seed: int):
    """[(frames, ground truth per frame)], each clip one cut between two people."""
    import cv2

    from landmark_kd.data.pts300w import read_pts

    paths = sorted(glob.glob(os.path.join(root, "*.jpg")))
    by_person: dict[str, list[str]] = {}
    for path in paths:
        by_person.setdefault(person(path), []).append(path)
    people = sorted(by_person)
    if len(people) < 2:
        raise SystemExit(f"{root}: needs photos of at least two people")
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(cuts):
        a, b = rng.choice(len(people), 2, replace=False)
        shots, truth = [], []
        for who in (people[a], people[b]):
            path = by_person[who][int(rng.integers(len(by_person[who])))]
            image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            placed, points = place(image, read_pts(os.path.splitext(path)[0] + ".pts"), canvas, rng)
            for _ in range(frames):
                shots.append(np.clip(placed + rng.normal(0, noise, placed.shape), 0, 255).round().astype(np.uint8))
                truth.append(points)
        clips.append((shots, np.stack(truth)))
    return clips


def nearest(faces, truth: np.ndarray):
    """The face whose landmark centre is nearest the ground truth's, or None."""
    if not faces:
        return None
    return min(faces, key=lambda f: np.linalg.norm(np.asarray(f.landmarks).mean(0) - truth.mean(0)))


def frame_changes(frames: list[np.ndarray]) -> list[float]:
    """What `tracking.ShotCutDetector` compares with its threshold, for each frame after the first."""
    from landmark_kd.tracking import ShotCutDetector

    detector, changes = ShotCutDetector(change=None), []
    for frame in frames:
        detector(frame)
        changes.append(detector.last_change)
    return changes[1:]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, type=model_path, help="landmark model (default: the shipped one)")
    parser.add_argument("--root", default=os.path.join(ROOT, "..", "shared", "realfaces", "ytf68", "val"),
                        help="a folder of 68-point .pts-labelled photos named <split>_<person>_<frame>.jpg")
    parser.add_argument("--cuts", type=positive_int, default=30, help="clips, one cut each")
    parser.add_argument("--frames", type=positive_int, default=6, help="frames per shot")
    parser.add_argument("--canvas", type=positive_int, default=320, help="frame side in pixels")
    parser.add_argument("--noise", type=non_negative_float, default=2.0, help="per-frame Gaussian noise sigma, grey levels")
    parser.add_argument("--fps", type=positive_float, default=30.0, help="the clips' frame rate (One-Euro time step)")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (photos, placement, noise)")
    parser.add_argument("--cut-change", type=non_negative_float, default=None, help="the trackers' shot-cut threshold "
                        "(default: tracking.ShotCutDetector's; 0: no cut detection, to see what it is worth)")
    parser.add_argument("--json", default=None, help="also write the results here")

    def parse(args_list: list[str]):
        args = parser.parse_args(args_list)
        if args.frames < 2:  # one frame per shot leaves no frame within a shot, nor after the first one past the cut
            parser.error(f"argument --frames: must be at least 2, got {args.frames}")
        return args

    return run_cli(lambda a: _main(parse(a)), sys.argv[1:] if argv is None else argv)


def _main(args) -> int:
    from landmark_kd.inference import LandmarkDetector, default_model_path
    from landmark_kd.metrics import nme_inner51
    from landmark_kd.tracking import DetectionSmoother, FaceTracker

    if not os.path.isdir(args.root):
        raise SystemExit(f"{args.root}: not found (see ../shared/realfaces/README.md)")
    detector = LandmarkDetector(args.model or default_model_path(), threads=1)
    clips = make_clips(args.root, args.cuts, args.frames, args.canvas, args.noise, args.seed)
    cut = args.frames  # index of the first frame after the cut
    errors = {name: {"before": [], "first after": [], "later": []} for name in ("tracker", "untracked", "raw")}
    new_ids = 0
    for frames, truth in clips:
        change = {} if args.cut_change is None else {"cut_change": args.cut_change}
        tracker, smoother = FaceTracker(detector, fps=args.fps, **change), DetectionSmoother(**change)
        steps = {"tracker": tracker.update, "untracked": lambda image: smoother(detector(image), 1 / args.fps, image),
                 "raw": detector}
        for name, step in steps.items():
            ids = []
            for k, (image, points) in enumerate(zip(frames, truth)):
                face = nearest(step(image), points)
                ids.append(None if face is None else face.track_id)
                error = 1.0 if face is None else float(nme_inner51(face.landmarks[None], points[None])[0])
                if k in (cut - 1, cut) or k > cut:
                    errors[name]["before" if k == cut - 1 else "first after" if k == cut else "later"].append(error)
            if name == "tracker":
                new_ids += ids[cut] is not None and ids[cut] != ids[cut - 1]
    changes = [frame_changes(frames) for frames, _ in clips]
    at_cuts = np.array([c[cut - 1] for c in changes])
    within = np.array([v for c in changes for k, v in enumerate(c) if k != cut - 1])
    rows = {name: {part: float(np.mean(v)) for part, v in parts.items()} for name, parts in errors.items()}
    print(f"{len(clips)} cuts, {args.frames} frames per shot, {os.path.basename(detector.model_path)}; inner-51 NME "
          "of the face nearest the ground truth (a missed face counts 100%):")
    print(f"{'pipeline':>10} | {'last before':>11} | {'first after':>11} | {'later after':>11}")
    for name, row in rows.items():
        print(f"{name:>10} | {row['before']:>10.2%} | {row['first after']:>10.2%} | {row['later']:>10.2%}")
    print(f"tracker: a new track id at {new_ids} of {len(clips)} cuts")
    print(f"frame change (mean absolute difference of 32x32 grey thumbnails; the tracker's cut threshold is "
          f"{tracker.is_cut.change or 0:g}): at the cuts {at_cuts.min():.1f} / {np.median(at_cuts):.1f} / "
          f"{at_cuts.max():.1f} (min / median / max), within shots at most {within.max():.2f}")
    if args.json:
        atomic_json(args.json, {"args": vars(args), "nme": rows, "new_track_ids": new_ids, "cuts": len(clips),
                                "change_at_cuts": at_cuts.tolist(), "change_within_shots_max": float(within.max())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
