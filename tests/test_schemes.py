import numpy as np
import pytest

from landmark_kd.schemes import LandmarkScheme, convert_68_to_51, custom_scheme, get_scheme


@pytest.mark.parametrize("name,n,edges", [("68", 68, 9), ("98", 98, 9), ("29", 29, 7), ("51", 51, 8)])
def test_builtin_schemes_are_consistent(name, n, edges):
    scheme = get_scheme(name)
    assert scheme.num_points == n and scheme.num_edges == edges
    perm = scheme.flip_permutation()
    assert sorted(perm.tolist()) == list(range(n))  # a permutation
    assert np.array_equal(perm[perm], np.arange(n))  # flipping twice is the identity
    matrix, bias = scheme.edge_to_point_matrix()
    assert matrix.shape == (n, edges)
    assert np.array_equal(bias, (matrix.sum(1) == 0).astype(np.float32))
    assert scheme.outer_eye_corners is not None


def test_68_flip_maps_left_eye_corner_to_right_and_fixes_nose_tip():
    perm = get_scheme("68").flip_permutation()
    assert perm[36] == 45 and perm[45] == 36 and perm[30] == 30 and perm[0] == 16 and perm[8] == 8
    wflw = get_scheme("wflw").flip_permutation()
    assert wflw[96] == 97 and wflw[60] == 72 and wflw[16] == 16
    cofw = get_scheme("cofw").flip_permutation()  # upper eyelids (12, 14) swap, and lower ones (13, 15)
    assert cofw[12] == 14 and cofw[13] == 15 and cofw[16] == 17 and cofw[20] == 20 and cofw[28] == 28


def test_51_is_68_without_jaw():
    s51 = get_scheme("51")
    assert s51.outer_eye_corners == (19, 28)
    pts = np.arange(136, dtype=np.float32).reshape(68, 2)
    out = convert_68_to_51(pts)
    assert out.shape == (51, 2) and np.array_equal(out[0], pts[17])
    with pytest.raises(ValueError, match="expected 68"):
        convert_68_to_51(pts[:50])


def test_custom_scheme_and_config_round_trip():
    scheme = custom_scheme(5, flip_pairs=[(0, 1)], edges=[([0, 1, 2], False)], outer_eye_corners=(0, 1))
    again = LandmarkScheme.from_config(scheme.get_config())
    assert again == scheme
    assert again.flip_permutation().tolist() == [1, 0, 2, 3, 4]
    with pytest.raises(ValueError, match="out of range"):
        custom_scheme(3, flip_pairs=[(0, 5)])
    with pytest.raises(ValueError, match="unknown landmark scheme"):
        get_scheme("12")


def test_a_json_layout_is_a_scheme_for_the_clis(tmp_path):
    import json

    from landmark_kd.errors import ConfigError

    path = tmp_path / "hand5.json"
    path.write_text(json.dumps({"num_points": 5, "flip_pairs": [[0, 1]], "edges": [[[0, 2, 1], False], [3, 4]],
                                "outer_eye_corners": [0, 1]}))
    scheme = get_scheme(str(path))
    assert (scheme.name, scheme.num_points, scheme.flip_permutation()[:2].tolist()) == ("hand5", 5, [1, 0])
    assert [(e.indices, e.closed) for e in scheme.edges] == [((0, 2, 1), False), ((3, 4), False)]
    path.write_text(json.dumps({"num_points": 3, "flip_pairs": [[0, 7]]}))
    with pytest.raises(ConfigError, match="hand5.json: .*out of range"):
        get_scheme(str(path))
    with pytest.raises(ConfigError, match="scheme file not found"):
        get_scheme(str(tmp_path / "none.json"))


@pytest.mark.parametrize("name", ["68", "98", "29", "51"])
def test_the_flip_permutation_maps_each_contour_onto_its_mirror_contour(name):
    """Mirroring swaps left and right, and a contour's neighbours stay neighbours: every edge segment (a, b) goes to
    a segment (perm[a], perm[b]) of the edge that is its mirror (two swapped eyelid points, or a brow paired in the
    wrong order, break that), and the eye corners and pupils swap sides."""
    scheme = get_scheme(name)
    perm = scheme.flip_permutation()
    pairs, owner = scheme.segments()
    segments = {frozenset(map(int, p)): int(e) for p, e in zip(pairs, owner)}
    mirror_edge = {}
    for (a, b), e in zip(pairs, owner):
        image = frozenset((int(perm[a]), int(perm[b])))
        assert image in segments, f"segment {(a, b)} of edge {e} mirrors to {tuple(image)}, on no edge"
        assert mirror_edge.setdefault(int(e), segments[image]) == segments[image]  # one mirror edge per edge
    assert all(mirror_edge[mirror_edge[e]] == e for e in mirror_edge)
    a, b = scheme.outer_eye_corners
    assert (perm[a], perm[b]) == (b, a)
    if scheme.pupils:
        left, right = scheme.pupils
        assert sorted(perm[list(left)].tolist()) == sorted(right) and sorted(perm[list(right)].tolist()) == sorted(left)


def test_only_closed_edges_join_their_ends():
    scheme = custom_scheme(5, edges=[([0, 1, 2], False), ([2, 3, 4], True), ([0, 4], True)])
    pairs, owner = scheme.segments()
    assert pairs.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 2], [0, 4]] and owner.tolist() == [0, 0, 1, 1, 1, 2]


def test_the_68_and_51_flips_mirror_the_shipped_mean_face_onto_itself():
    """Geometry beyond the contours' topology: the shipped (symmetric) mean face's 51 inner points, mirrored and
    permuted, are the face again; an upper eyelid point swapped with a lower one keeps every contour yet fails."""
    from landmark_kd.head_pose import load_mean_face

    face = np.asarray(load_mean_face())[:, :2]  # millimetres, 90 between the outer eye corners
    perm51 = get_scheme("51").flip_permutation()
    assert np.abs(face[perm51] * [-1, 1] - face).max() < 0.1
    assert np.array_equal(get_scheme("68").flip_permutation()[17:] - 17, perm51)
