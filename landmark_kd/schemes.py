"""Landmark schemes: point count, edge groups (for AAM edge maps), flip permutation, NME normalisation.

A scheme is all the dataset-specific knowledge the rest of the package needs, so models, targets and
metrics never hard-code a point layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class Edge:
    """A curve through landmarks; `closed` joins the last point back to the first."""

    indices: tuple[int, ...]
    closed: bool = False

    def segments(self) -> list[tuple[int, int]]:
        pairs = list(zip(self.indices[:-1], self.indices[1:]))
        if self.closed and len(self.indices) > 2:
            pairs.append((self.indices[-1], self.indices[0]))
        return pairs


@dataclass(frozen=True)
class LandmarkScheme:
    name: str
    num_points: int
    edges: tuple[Edge, ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    # Outer eye corners (inter-ocular NME); None when the scheme has no eyes.
    outer_eye_corners: tuple[int, int] | None = None
    # Points whose mean is each pupil (inter-pupil NME); a single index is the pupil itself.
    pupils: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        n = self.num_points
        if n < 1:
            raise ValueError(f"scheme {self.name!r}: num_points must be positive, got {n}")
        used = [i for e in self.edges for i in e.indices]
        used += [i for p in self.flip_pairs for i in p]
        if self.outer_eye_corners:
            used += list(self.outer_eye_corners)
        if self.pupils:
            used += [i for group in self.pupils for i in group]
        bad = sorted({i for i in used if not 0 <= i < n})
        if bad:
            raise ValueError(f"scheme {self.name!r}: indices {bad} out of range for {n} points")
        seen: set[int] = set()
        for a, b in self.flip_pairs:
            if a in seen or b in seen:
                raise ValueError(f"scheme {self.name!r}: point in more than one flip pair ({a}, {b})")
            seen.update((a, b))

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def flip_permutation(self) -> np.ndarray:
        """Index map applied after mirroring an image: new[i] = old[perm[i]]."""
        perm = np.arange(self.num_points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def mirror_permutation(self, purpose: str) -> np.ndarray:
        """`flip_permutation()` for averaging an answer with its mirror-image answer (`purpose` names who asks),
        which is only right if the scheme says which points swap: refused when it names no flip pairs."""
        if not self.flip_pairs:
            raise ConfigError(f"{purpose} needs the points that swap in a mirror image, and scheme {self.name!r} "
                              "names no flip pairs")
        return self.flip_permutation()

    def edge_to_point_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """STAR's E2H transform as (N, E) weights and an (N,) bias of 1 for points no edge covers."""
        matrix = np.zeros((self.num_points, max(self.num_edges, 1)), np.float32)
        for e, edge in enumerate(self.edges):
            matrix[list(edge.indices), e] = 1.0
        bias = (matrix.sum(axis=1) < 0.5).astype(np.float32)
        return matrix, bias

    def segments(self) -> tuple[np.ndarray, np.ndarray]:
        """All edge segments as (S, 2) point indices and the (S,) edge each belongs to."""
        pairs, owner = [], []
        for e, edge in enumerate(self.edges):
            for seg in edge.segments():
                pairs.append(seg)
                owner.append(e)
        if not pairs:
            return np.zeros((0, 2), np.int32), np.zeros((0,), np.int32)
        return np.asarray(pairs, np.int32), np.asarray(owner, np.int32)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "num_points": self.num_points,
            "edges": [[list(e.indices), e.closed] for e in self.edges],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "outer_eye_corners": list(self.outer_eye_corners) if self.outer_eye_corners else None,
            "pupils": [list(g) for g in self.pupils] if self.pupils else None,
        }

    @classmethod
    def from_config(cls, config: dict) -> "LandmarkScheme":
        return cls(
            name=config["name"],
            num_points=int(config["num_points"]),
            edges=tuple(Edge(tuple(int(i) for i in idx), bool(closed)) for idx, closed in config["edges"]),
            flip_pairs=tuple((int(a), int(b)) for a, b in config["flip_pairs"]),
            outer_eye_corners=tuple(config["outer_eye_corners"]) if config.get("outer_eye_corners") else None,
            pupils=tuple(tuple(g) for g in config["pupils"]) if config.get("pupils") else None,
        )


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


def _mirror_pairs(left: Sequence[int], right: Sequence[int]) -> list[tuple[int, int]]:
    return list(zip(left, right))


def _ibug68() -> LandmarkScheme:
    pairs = [(i, 16 - i) for i in range(8)]
    pairs += _mirror_pairs(_r(17, 21), _r(22, 26)[::-1])
    pairs += [(31, 35), (32, 34)]
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
    edges = (
        Edge(_r(0, 16)), Edge(_r(17, 21)), Edge(_r(22, 26)), Edge(_r(27, 30)), Edge(_r(31, 35)),
        Edge(_r(36, 41), True), Edge(_r(42, 47), True), Edge(_r(48, 59), True), Edge(_r(60, 67), True),
    )
    return LandmarkScheme("68", 68, edges, tuple(pairs), (36, 45), (_r(36, 41), _r(42, 47)))


def _wflw98() -> LandmarkScheme:
    pairs = [(i, 32 - i) for i in range(16)]
    pairs += _mirror_pairs(_r(33, 37), _r(42, 46)[::-1]) + _mirror_pairs(_r(38, 41), _r(47, 50)[::-1])
    pairs += [(55, 59), (56, 58)]
    pairs += _mirror_pairs(_r(60, 64), _r(68, 72)[::-1]) + _mirror_pairs(_r(65, 67), _r(73, 75)[::-1])
    pairs += [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95), (96, 97)]
    edges = (
        Edge(_r(0, 32)), Edge(_r(33, 41), True), Edge(_r(42, 50), True), Edge(_r(51, 54)), Edge(_r(55, 59)),
        Edge(_r(60, 67), True), Edge(_r(68, 75), True), Edge(_r(76, 87), True), Edge(_r(88, 95), True),
    )
    return LandmarkScheme("98", 98, edges, tuple(pairs), (60, 72), ((96,), (97,)))


def _cofw29() -> LandmarkScheme:
    # COFW order: brows 0-7, eye corners 8-11, eyelids 12-15, pupils 16-17, nose 18-21, mouth 22-27, chin 28.
    pairs = ((0, 1), (4, 6), (2, 3), (5, 7), (8, 9), (10, 11), (12, 14), (16, 17), (13, 15), (18, 19), (22, 23))
    edges = (
        Edge((0, 4, 2, 5), True), Edge((1, 6, 3, 7), True), Edge((8, 12, 10, 13), True),
        Edge((9, 14, 11, 15), True), Edge((18, 21, 19)), Edge((22, 24, 23, 27), True), Edge((22, 25, 23, 26), True),
    )
    return LandmarkScheme("29", 29, edges, pairs, (8, 9), ((16,), (17,)))


def subset_scheme(base: LandmarkScheme, keep: Sequence[int], name: str) -> LandmarkScheme:
    """Restrict a scheme to `keep` (in that order), dropping edges/pairs that lose points."""
    index = {old: new for new, old in enumerate(keep)}
    edges = []
    for e in base.edges:
        if all(i in index for i in e.indices):
            edges.append(Edge(tuple(index[i] for i in e.indices), e.closed))
    pairs = tuple((index[a], index[b]) for a, b in base.flip_pairs if a in index and b in index)
    corners = None
    if base.outer_eye_corners and all(i in index for i in base.outer_eye_corners):
        corners = tuple(index[i] for i in base.outer_eye_corners)
    pupils = None
    if base.pupils and all(i in index for g in base.pupils for i in g):
        pupils = tuple(tuple(index[i] for i in g) for g in base.pupils)
    return LandmarkScheme(name, len(keep), tuple(edges), pairs, corners, pupils)


SCHEMES: dict[str, LandmarkScheme] = {}
SCHEMES["68"] = _ibug68()
SCHEMES["98"] = _wflw98()
SCHEMES["29"] = _cofw29()
SCHEMES["51"] = subset_scheme(SCHEMES["68"], list(range(17, 68)), "51")
ALIASES = {"300w": "68", "ibug": "68", "wflw": "98", "cofw": "29", "icme51": "51"}


def get_scheme(name: str | int | LandmarkScheme) -> LandmarkScheme:
    """A built-in scheme by name or alias, or a custom one from a `.json` file (see `scheme_from_json`)."""
    if isinstance(name, LandmarkScheme):
        return name
    if str(name).lower().endswith(".json"):
        return scheme_from_json(str(name))
    key = ALIASES.get(str(name).lower(), str(name))
    if key not in SCHEMES:
        raise ConfigError(f"unknown landmark scheme {name!r}; known: {sorted(SCHEMES) + sorted(ALIASES)}")
    return SCHEMES[key]


def custom_scheme(
    num_points: int,
    flip_pairs: Sequence[Sequence[int]] = (),
    edges: Sequence[tuple[Sequence[int], bool]] = (),
    outer_eye_corners: Sequence[int] | None = None,
    name: str = "custom",
) -> LandmarkScheme:
    """A scheme for user data; without eye corners, NME falls back to bounding-box normalisation."""
    return LandmarkScheme(
        name,
        int(num_points),
        tuple(Edge(tuple(int(i) for i in idx), bool(closed)) for idx, closed in edges),
        tuple((int(a), int(b)) for a, b in flip_pairs),
        tuple(outer_eye_corners) if outer_eye_corners else None,
    )


def convert_68_to_51(landmarks: np.ndarray) -> np.ndarray:
    """Drop the 17 jaw-line points: (..., 68, 2) -> (..., 51, 2), the ICME 2024 challenge layout."""
    landmarks = np.asarray(landmarks)
    if landmarks.shape[-2] != 68:
        raise ValueError(f"expected 68 points, got {landmarks.shape[-2]}")
    return landmarks[..., 17:, :]


def scheme_from_json(path: str) -> LandmarkScheme:
    """`--scheme my_layout.json`: {"num_points": N, "flip_pairs": [[a, b], ...], "edges": [[[i, j, ...], closed],
    ...] or [[i, j, ...], ...], "outer_eye_corners": [a, b], "name": "..."}; all but num_points optional."""
    import json
    import os

    try:
        with open(path, encoding="utf-8-sig") as handle:
            spec = json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: scheme file not found") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable JSON scheme ({err})") from None
    if not isinstance(spec, dict) or "num_points" not in spec:
        raise ConfigError(f"{path}: a scheme needs at least {{\"num_points\": N}}")
    try:
        edges = [(e[0], bool(e[1])) if len(e) == 2 and isinstance(e[0], list) else (e, False)
                 for e in spec.get("edges", [])]
        return custom_scheme(spec["num_points"], spec.get("flip_pairs", []), edges, spec.get("outer_eye_corners"),
                             spec.get("name") or os.path.splitext(os.path.basename(path))[0])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from None
