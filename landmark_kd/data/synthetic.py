"""Procedural synthetic faces: the embedded default dataset.

A 68-point 3-D shape model (mean shape + identity variation + expression) is posed (yaw/pitch/roll),
projected, and every facial part is drawn *from those projected points*, so the landmarks are exact by
construction. Skin tones, hair, background clutter, lighting, blur, noise and occluders make it a real
(if easy) learning problem. Same seed, same faces. Written in 300W layout (PNG + .pts).

    python -m landmark_kd.data.synthetic --out data/synthetic/train --num 2000 --seed 0
"""
from __future__ import annotations

import json
import os
import re
import sys
import time

import cv2
import numpy as np

from ..errors import ConfigError, OutputError
from ..outputs import read_json
from .pts300w import write_pts

VERSION = 1  # bump when rendering changes, so cached default sets are regenerated
_OWN_FILE = re.compile(r"face_\d{5}\.(png|pts)|contact_sheet\.png|manifest\.json")  # the names `generate` writes


def mean_shape() -> np.ndarray:
    """(68, 3) face-frame points: x right, y down, z toward the camera; face width ~1."""
    pts = np.zeros((68, 3))
    u = np.linspace(0, np.pi, 17)
    pts[0:17] = np.stack([-0.5 * np.cos(u), -0.08 + 0.62 * np.sin(u) ** 1.3, -0.32 * np.cos(u) ** 2 + 0.02], -1)
    t = np.linspace(0, 1, 5)
    brow_x = -0.40 + 0.31 * t
    brow_y = -0.27 - 0.06 * np.sin(np.pi * (t * 0.8 + 0.1))
    pts[17:22] = np.stack([brow_x, brow_y, 0.08 + 0.1 * t], -1)
    pts[22:27] = pts[17:22][::-1] * [-1, 1, 1]
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.17, 0.07, 4), np.linspace(0.16, 0.32, 4)], -1)
    pts[31:36] = np.stack([np.linspace(-0.09, 0.09, 5), [0.12, 0.135, 0.145, 0.135, 0.12],
                           [0.17, 0.2, 0.23, 0.2, 0.17]], -1)
    eye = np.array([[-0.075, 0, 0], [-0.03, -0.032, 0.01], [0.025, -0.032, 0.01], [0.075, 0, 0],
                    [0.025, 0.026, 0.01], [-0.03, 0.026, 0.01]])
    pts[36:42] = eye + [-0.2, -0.15, 0.1]
    right = eye[[3, 2, 1, 0, 5, 4]] * [-1, 1, 1]
    pts[42:48] = right + [0.2, -0.15, 0.1]
    pts[48:60] = np.array([[-0.17, 0.3, 0.12], [-0.1, 0.265, 0.17], [-0.035, 0.25, 0.19], [0, 0.258, 0.2],
                           [0.035, 0.25, 0.19], [0.1, 0.265, 0.17], [0.17, 0.3, 0.12], [0.1, 0.345, 0.16],
                           [0.04, 0.365, 0.18], [0, 0.368, 0.185], [-0.04, 0.365, 0.18], [-0.1, 0.345, 0.16]])
    pts[60:68] = np.array([[-0.14, 0.3, 0.13], [-0.05, 0.29, 0.18], [0, 0.29, 0.19], [0.05, 0.29, 0.18],
                           [0.14, 0.3, 0.13], [0.05, 0.31, 0.18], [0, 0.31, 0.19], [-0.05, 0.31, 0.18]])
    return pts


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_shape(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Identity and expression applied to the mean shape; returns 3-D points and the parameters."""
    p = mean_shape()
    params = {
        "width": rng.uniform(0.9, 1.1), "height": rng.uniform(0.9, 1.12), "eye_gap": rng.uniform(-0.03, 0.03),
        "eye_size": rng.uniform(0.85, 1.2), "nose": rng.uniform(0.85, 1.2), "mouth_w": rng.uniform(0.8, 1.2),
        "mouth_open": rng.uniform(0, 1) ** 2 * 0.16, "brow_raise": rng.uniform(-0.03, 0.05),
        "eye_closure": float(rng.uniform(0, 1) < 0.15) * rng.uniform(0.5, 0.95), "chin": rng.uniform(0.85, 1.15),
    }
    for side, sl in ((-1, slice(36, 42)), (1, slice(42, 48))):
        centre = p[sl].mean(0)
        local = (p[sl] - centre) * params["eye_size"]
        local[:, 1] *= 1 - params["eye_closure"]
        p[sl] = centre + local + [side * params["eye_gap"], 0, 0]
    p[17:27, 1] -= params["brow_raise"]
    p[27:36, 1] = -0.17 + (p[27:36, 1] + 0.17) * params["nose"]
    p[48:68, 0] *= params["mouth_w"]
    lower = [55, 56, 57, 58, 59, 65, 66, 67]
    p[lower, 1] += params["mouth_open"]
    p[[49, 50, 51, 52, 53, 61, 62, 63], 1] -= params["mouth_open"] * 0.15
    jaw_weight = np.sin(np.linspace(0, np.pi, 17)) ** 3
    p[0:17, 1] += params["mouth_open"] * 0.6 * jaw_weight
    p[0:17, 0] *= 1 + (params["chin"] - 1) * jaw_weight
    p[:, 0] *= params["width"]
    p[:, 1] *= params["height"]
    p += rng.normal(0, 0.006, p.shape)
    return p, params


def _project(points: np.ndarray, rot: np.ndarray, scale: float, centre: np.ndarray) -> np.ndarray:
    return (points @ rot.T)[:, :2] * scale + centre


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    img = a + (b - a) * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    img = img.astype(np.uint8)
    for _ in range(rng.integers(3, 12)):
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        kind = rng.integers(3)
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(size // 20, size // 4))
        if kind == 0:
            cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + r, y + int(r * rng.uniform(0.3, 2))), colour, -1)
        else:
            cv2.line(img, (x, y), tuple(int(v) for v in rng.integers(0, size, 2)), colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    noise = rng.normal(0, rng.uniform(2, 12), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _poly(img: np.ndarray, pts: np.ndarray, colour, closed: bool = True, thickness: int = -1) -> None:
    arr = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)
    if thickness < 0:
        cv2.fillPoly(img, [arr], colour, cv2.LINE_AA, shift=4)
    else:
        cv2.polylines(img, [arr], closed, colour, thickness, cv2.LINE_AA, shift=4)


SKIN_TONES = np.array([[224, 198, 180], [198, 160, 130], [170, 125, 95], [130, 90, 65], [90, 60, 45], [240, 215, 200]])


def render_face(seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image and its (68, 2) landmarks in 0-based pixels."""
    rng = np.random.default_rng(seed)
    shape3d, params = sample_shape(rng)
    rot = _rotation(np.radians(rng.uniform(-35, 35)), np.radians(rng.uniform(-20, 20)), np.radians(rng.uniform(-25, 25)))
    scale = size * rng.uniform(0.42, 0.62)
    centre = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    pts = _project(shape3d, rot, scale, centre)

    img = _background(rng, size)
    skin = np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] + rng.normal(0, 12, 3), 30, 250)
    hair = np.clip(rng.choice([[30, 20, 15], [80, 50, 30], [150, 110, 60], [200, 170, 120], [60, 60, 60]]) + rng.normal(0, 10, 3), 0, 255)

    # Head outline: jaw points plus a forehead arc (not landmarks) closing the top.
    u = np.linspace(0, np.pi, 15)[1:-1]
    jaw_w = (shape3d[16, 0] - shape3d[0, 0]) / 2
    forehead = np.stack([jaw_w * np.cos(u), shape3d[0, 1] - 0.42 * params["height"] * np.sin(u), -0.1 * np.cos(u) ** 2], -1)
    head = np.concatenate([pts[0:17], _project(forehead, rot, scale, centre)])
    neck = _project(np.array([[-0.22, 0.3, -0.2], [0.22, 0.3, -0.2], [0.26, 1.2, -0.2], [-0.26, 1.2, -0.2]]), rot, scale, centre)
    _poly(img, neck, tuple(float(c) for c in skin * 0.75))
    hair_style = rng.integers(3)
    if hair_style > 0:  # hair behind the head
        top = _project(np.array([[0, shape3d[0, 1] - 0.25, -0.3]]), rot, scale, centre)[0]
        axes = (int(scale * 0.62), int(scale * (0.55 if hair_style == 1 else 0.8)))
        cv2.ellipse(img, (int(top[0]), int(top[1] + scale * 0.2)), axes, float(np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))),
                    180, 360, tuple(float(c) for c in hair), -1, cv2.LINE_AA)
    face = np.zeros((size, size), np.uint8)
    _poly(face, head, 255)
    skin_layer = np.zeros_like(img)
    skin_layer[:] = skin
    light_dir = rng.uniform(-1, 1, 2)
    yy, xx = np.mgrid[0:size, 0:size]
    shade = 1 + 0.35 * ((xx - centre[0]) * light_dir[0] + (yy - centre[1]) * light_dir[1]) / scale
    skin_layer = np.clip(skin_layer * shade[..., None], 0, 255).astype(np.uint8)
    mask = (face > 127)[..., None]
    img = np.where(mask, skin_layer, img)
    if hair_style == 2:  # fringe over the forehead, above the brows
        fringe = _project(np.array([[x, shape3d[0, 1] - 0.42 * params["height"] * 0.98, 0] for x in np.linspace(-0.5, 0.5, 7)]
                                   + [[0.45, -0.42, 0.05], [-0.45, -0.42, 0.05]]), rot, scale, centre)
        _poly(img, fringe, tuple(float(c) for c in hair))

    dark = tuple(float(c) for c in skin * 0.45)
    brow = tuple(float(c) for c in hair * 0.8)
    thick = max(1, int(scale * rng.uniform(0.02, 0.04)))
    for sl in (slice(17, 22), slice(22, 27)):
        _poly(img, pts[sl], brow, closed=False, thickness=thick)
    for sl in (slice(36, 42), slice(42, 48)):
        eye = pts[sl]
        layer = img.copy()
        _poly(layer, eye, (235, 235, 230))
        iris_c = eye.mean(0) + rng.normal(0, 0.1, 2) * np.ptp(eye[:, 0]) * 0.3
        radius = max(1.0, float(np.ptp(eye[:, 0]) * 0.22))
        iris_colour = tuple(float(c) for c in rng.choice([[60, 40, 20], [40, 90, 140], [70, 110, 60], [30, 25, 20]]))
        cv2.circle(layer, (int(iris_c[0] * 16), int(iris_c[1] * 16)), int(radius * 16), iris_colour, -1, cv2.LINE_AA, shift=4)
        cv2.circle(layer, (int(iris_c[0] * 16), int(iris_c[1] * 16)), int(radius * 7), (10, 10, 10), -1, cv2.LINE_AA, shift=4)
        eye_mask = np.zeros((size, size), np.uint8)
        _poly(eye_mask, eye, 255)
        img = np.where((eye_mask > 127)[..., None], layer, img)
        _poly(img, eye, dark, closed=True, thickness=1)
        _poly(img, eye[:4], (25, 20, 20), closed=False, thickness=max(1, thick // 2))
    _poly(img, pts[27:31], tuple(float(c) for c in skin * 0.8), closed=False, thickness=max(1, thick // 2))
    _poly(img, pts[31:36], dark, closed=False, thickness=max(1, thick // 2))
    for k in (32, 34):
        cv2.circle(img, (int(pts[k, 0] * 16), int(pts[k, 1] * 16)), max(16, int(scale * 0.018 * 16)), (40, 25, 25), -1, cv2.LINE_AA, shift=4)
    lip = np.clip(skin * [1.05, 0.65, 0.65] + rng.normal(0, 10, 3), 0, 255)
    _poly(img, pts[48:60], tuple(float(c) for c in lip))
    if params["mouth_open"] > 0.02:
        _poly(img, pts[60:68], (45, 20, 25))
        teeth = pts[[60, 61, 62, 63, 64]].copy()
        teeth_low = teeth + [0, params["mouth_open"] * scale * 0.25]
        _poly(img, np.concatenate([teeth, teeth_low[::-1]]), (230, 225, 215))
    else:
        _poly(img, pts[60:68], tuple(float(c) for c in lip * 0.5), closed=True, thickness=1)

    if rng.uniform() < 0.3:  # occluder: a hand-coloured or random blob over part of the face
        colour = tuple(float(c) for c in (skin * rng.uniform(0.7, 1.1) if rng.uniform() < 0.5 else rng.uniform(0, 255, 3)))
        c = pts[rng.integers(17, 68)]
        axes = (int(scale * rng.uniform(0.08, 0.25)), int(scale * rng.uniform(0.08, 0.25)))
        cv2.ellipse(img, (int(c[0]), int(c[1])), axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA)

    gain = rng.uniform(0.6, 1.3)
    img = np.clip(img.astype(np.float32) * gain + rng.uniform(-25, 25), 0, 255)
    sigma = rng.uniform(0, 1.6)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = np.clip(img + rng.normal(0, rng.uniform(0, 8), img.shape), 0, 255).astype(np.uint8)
    return img, pts.astype(np.float32)


def contact_sheet(images: list[np.ndarray], landmarks: list[np.ndarray], columns: int = 4, cell: int = 192) -> np.ndarray:
    """A grid of faces with their landmarks drawn, RGB uint8."""
    rows = (len(images) + columns - 1) // columns
    sheet = np.full((rows * cell, columns * cell, 3), 255, np.uint8)
    for i, (img, pts) in enumerate(zip(images, landmarks)):
        scale = cell / max(img.shape[:2])
        tile = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        for x, y in pts * scale:
            cv2.circle(tile, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1, cv2.LINE_AA)
        r, c = divmod(i, columns)
        sheet[r * cell: r * cell + tile.shape[0], c * cell: c * cell + tile.shape[1]] = tile
    return sheet


def _clear_earlier_set(out_dir: str) -> None:
    """Make `out_dir` ready for `generate`: remove an earlier set's faces, contact sheet and manifest (a smaller
    new set would otherwise sit beside stale faces of another seed, all read as one dataset), touching nothing
    else. A folder holding other files (say a user's photos) and no manifest of ours is refused: the faces would
    mix with them. One holding only our names but no manifest is an interrupted earlier run (the manifest is
    written last) and is cleared too."""
    if not os.path.isdir(out_dir):
        return
    names = [n for n in os.listdir(out_dir) if not n.startswith(".")]  # .DS_Store and the like do not count
    others = sorted(n for n in names if not _OWN_FILE.fullmatch(n))
    if others and not is_synthetic_set(out_dir):
        raise OutputError(f"{out_dir}: holds files other than synthetic faces ({len(others)}, e.g. {others[0]}) "
                          "and no manifest.json of an earlier set of them: the faces would mix with those files; "
                          "choose an empty or new folder")
    own = [n for n in names if _OWN_FILE.fullmatch(n) and os.path.isfile(os.path.join(out_dir, n))]
    for name in sorted(own, key=lambda n: n != "manifest.json"):  # manifest first: a half-cleared set is not reused
        os.remove(os.path.join(out_dir, name))


def generate(out_dir: str, num: int, seed: int = 0, size: int = 256, sheet: bool = True, progress: bool = False) -> str:
    """Write `num` faces as PNG + .pts into `out_dir`; sample i uses seed (seed, i) so sets are stable.

    An earlier set in `out_dir` is replaced (its faces removed first, other files kept); a folder of other files
    is refused with OutputError, a negative seed with ConfigError."""
    if seed < 0:  # train.py --seed -1 reaches here: one line, not numpy's traceback from render_face
        raise ConfigError(f"seed {seed}: synthetic faces need a seed of 0 or more")
    _clear_earlier_set(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    shown_images, shown_points = [], []
    start = time.time()
    for i in range(num):
        img, pts = render_face(seed * 1_000_003 + i, size)
        name = os.path.join(out_dir, f"face_{i:05d}")
        cv2.imwrite(name + ".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        write_pts(name + ".pts", pts)
        if i < 16:
            shown_images.append(img)
            shown_points.append(pts)
        if progress and sys.stderr.isatty() and ((i + 1) % max(1, num // 50) == 0 or i + 1 == num):
            print(f"\r  synthetic faces {i + 1}/{num} ({(i + 1) / (time.time() - start):.0f}/s)", end="", file=sys.stderr)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    if sheet and shown_images:
        cv2.imwrite(os.path.join(out_dir, "contact_sheet.png"), cv2.cvtColor(contact_sheet(shown_images, shown_points), cv2.COLOR_RGB2BGR))
    with open(os.path.join(out_dir, "manifest.json"), "w") as handle:
        json.dump({"version": VERSION, "num": num, "seed": seed, "size": size}, handle)
    return out_dir


def is_synthetic_set(path: str) -> bool:
    """Whether `path` is a folder of faces `generate` drew (it writes manifest.json with the seed and count)."""
    manifest = read_json(os.path.join(path, "manifest.json"))
    return isinstance(manifest, dict) and {"version", "num", "seed"} <= set(manifest)


def ensure_default_dataset(root: str = "data/synthetic", num_train: int = 2000, num_test: int = 300,
                           seed: int = 0, size: int = 256, reuse_any: bool = False,
                           splits: tuple[str, ...] = ("train", "test")) -> tuple[str | None, str | None]:
    """Generate (once) the default train/test sets; reused while their manifest matches. `reuse_any` (scoring
    and export) takes whatever complete set is there, so a model trained with `--seed 1` is scored on its own
    faces instead of the set being silently regenerated with the defaults. Only the `splits` asked for are made
    (evaluation needs no 2,000 training faces); the others' paths come back as None."""
    paths = []
    for split, num, split_seed in (("train", num_train, seed), ("test", num_test, seed + 7919)):
        if split not in splits:
            paths.append(None)
            continue
        path = os.path.join(root, split)
        want = {"version": VERSION, "num": num, "seed": split_seed, "size": size}
        try:
            with open(os.path.join(path, "manifest.json")) as handle:
                have = json.load(handle)
        except (OSError, ValueError):
            have = None
        if reuse_any and isinstance(have, dict) and have.get("version") == VERSION:
            paths.append(path)
            continue
        if have != want:
            print(f"Generating {num} synthetic {split} faces in {path} ...", file=sys.stderr)
            generate(path, num, split_seed, size, progress=True)
        paths.append(path)
    return paths[0], paths[1]


MAX_SIZE = 4096  # the CLI's largest --size: the renderer holds a few float64 grids of size x size pixels


def main(argv: list[str] | None = None) -> int:
    """`python -m landmark_kd.data.synthetic --out DIR`; exit 2 with one `error:` line for a user error."""
    from ..cli import run

    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    from ..cli import ArgumentParser, positive_int, seed
    from ..outputs import prepare_output_dir

    parser = ArgumentParser(description="Render procedural synthetic faces with exact 68-point landmarks (300W layout).")
    parser.add_argument("--out", required=True, help="output folder (PNG + .pts per face, contact_sheet.png): new, "
                        "empty, or an earlier set of synthetic faces, which is replaced")
    parser.add_argument("--num", type=positive_int, default=200, help="number of faces")
    parser.add_argument("--seed", type=seed, default=0,
                        help="random seed, 0 to 2**32-1; the same seed renders the same faces")
    parser.add_argument("--size", type=positive_int, default=256, help=f"image side in pixels, 32 to {MAX_SIZE}")
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error(f"argument --size: must be at least 32, got {args.size}")
    if args.size > MAX_SIZE:  # a huge side ran out of memory in the renderer's pixel grids (a traceback)
        parser.error(f"argument --size: must be at most {MAX_SIZE}, got {args.size}")
    prepare_output_dir(args.out)
    start = time.time()
    generate(args.out, args.num, args.seed, args.size, progress=True)
    print(f"Wrote {args.num} faces to {args.out} in {time.time() - start:.1f}s; preview: {os.path.join(args.out, 'contact_sheet.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
