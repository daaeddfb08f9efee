import os

import numpy as np

from landmark_kd.data import load_dataset
from landmark_kd.data.synthetic import generate, main, render_face


def test_render_is_deterministic_and_landmarks_lie_on_drawn_face():
    a_img, a_pts = render_face(5, 128)
    b_img, b_pts = render_face(5, 128)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_pts, b_pts)
    c_img, c_pts = render_face(6, 128)
    assert not np.array_equal(a_pts, c_pts)
    assert a_img.shape == (128, 128, 3) and a_pts.shape == (68, 2)
    assert np.all(np.isfinite(a_pts))
    # Faces vary in pose: the inter-ocular vector's angle differs across seeds.
    angles = []
    for seed in range(20):
        _, pts = render_face(seed, 128)
        d = pts[45] - pts[36]
        angles.append(np.degrees(np.arctan2(d[1], d[0])))
    assert np.std(angles) > 5


def test_generate_writes_300w_layout_readable_by_the_reader(tmp_path):
    out = generate(str(tmp_path / "syn"), 6, seed=3, size=96)
    assert os.path.exists(os.path.join(out, "contact_sheet.png"))
    samples, report = load_dataset(out, num_points=68)
    assert len(samples) == 6 and not report.skipped
    _, pts = render_face(3 * 1_000_003 + 2, 96)
    assert np.allclose(samples[2].landmarks, pts, atol=2e-3)


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "cli"), "--num", "3", "--size", "64"]) == 0
    assert "Wrote 3 faces" in capsys.readouterr().out
    assert len([f for f in os.listdir(tmp_path / "cli") if f.endswith(".pts")]) == 3


def test_scoring_reuses_a_set_made_with_another_seed(tmp_path):
    """After `train.py --seed 1`, evaluate/convert (reuse_any) must score the faces that exist, not regenerate
    the default seed's set over them."""
    import json
    import os

    from landmark_kd.data.synthetic import ensure_default_dataset

    root = str(tmp_path / "syn")
    train, test = ensure_default_dataset(root, 3, 2, seed=1, size=64)
    stamp = os.path.getmtime(os.path.join(test, "manifest.json"))
    again = ensure_default_dataset(root, reuse_any=True)
    assert again == (train, test) and os.path.getmtime(os.path.join(test, "manifest.json")) == stamp
    assert json.load(open(os.path.join(test, "manifest.json")))["seed"] == 1 + 7919


def test_only_the_splits_asked_for_are_generated(tmp_path):
    """Scoring needs the test faces only: the 2,000 training faces must not be drawn for it."""
    import os

    from landmark_kd.data.synthetic import ensure_default_dataset

    root = str(tmp_path / "syn")
    train, test = ensure_default_dataset(root, 3, 2, size=64, splits=("test",))
    assert train is None and os.path.isfile(os.path.join(test, "manifest.json"))
    assert not os.path.exists(os.path.join(root, "train"))
    train, again = ensure_default_dataset(root, 3, 2, size=64)
    assert again == test and len([f for f in os.listdir(train) if f.endswith(".pts")]) == 3
