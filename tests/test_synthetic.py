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


def _listing(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_cli_replaces_an_earlier_set_whole_and_keeps_other_files(tmp_path, capsys):
    """A smaller second set used to leave the first one's face_00002.. beside the new manifest (5 faces of two
    seeds read as one set); only the earlier set's own files go, a note of the user's stays."""
    out = tmp_path / "syn"
    assert main(["--out", str(out), "--num", "5", "--size", "64"]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["--out", str(out), "--num", "2", "--seed", "7", "--size", "64"]) == 0
    assert sorted(os.listdir(out)) == ["contact_sheet.png", "face_00000.png", "face_00000.pts", "face_00001.png",
                                       "face_00001.pts", "manifest.json", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    samples, _ = load_dataset(str(out), num_points=68)
    _, pts = render_face(7 * 1_000_003 + 1, 64)
    assert len(samples) == 2 and np.allclose(samples[1].landmarks, pts, atol=2e-3)


def test_cli_refuses_a_folder_of_other_files_and_leaves_it_untouched(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.jpg").write_bytes(b"jpeg")
    (photos / "me.pts").write_text("points")
    before = _listing(photos)
    assert main(["--out", str(photos), "--num", "2", "--size", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {photos}: holds files other than synthetic faces (2, e.g. me.jpg) and no manifest.json "
                   "of an earlier set of them: the faces would mix with those files; choose an empty or new folder")
    assert _listing(photos) == before


def test_cli_refuses_a_seed_numpy_cannot_take_in_one_line(tmp_path, capsys):
    """-1 used to end in render_face's ValueError traceback."""
    import pytest

    for bad in ("-1", str(2**32)):
        with pytest.raises(SystemExit) as exited:  # the parser's exit
            main(["--out", str(tmp_path / "syn"), "--seed", bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: argument --seed: must be 0 to 4294967295, got {bad} (see ") and "\n" not in err
    assert not (tmp_path / "syn").exists()
    assert main(["--out", str(tmp_path / "syn"), "--num", "1", "--size", "32", "--seed", str(2**32 - 1)]) == 0


def test_training_cache_is_reused_regenerated_cleanly_and_never_over_user_files(tmp_path):
    """The library path train.py takes (ensure_default_dataset -> generate): a matching set is reused as it is, a
    mismatched one is replaced without its stale faces, a folder of the user's files is refused untouched, and a
    negative seed (train.py --seed -1) is one ConfigError line, not numpy's traceback."""
    import pytest

    from landmark_kd.data.synthetic import ensure_default_dataset
    from landmark_kd.errors import ConfigError, OutputError

    root = tmp_path / "syn"
    train, _ = ensure_default_dataset(str(root), 4, 1, size=64)
    (root / "train" / "notes.txt").write_text("mine")
    before = _listing(root / "train")
    assert ensure_default_dataset(str(root), 4, 1, size=64)[0] == train and _listing(root / "train") == before
    ensure_default_dataset(str(root), 2, 1, seed=3, size=64)
    assert len([n for n in os.listdir(train) if n.endswith(".pts")]) == 2 and (root / "train" / "notes.txt").exists()
    # An interrupted run (faces, no manifest yet) is taken for what it is and cleared.
    os.remove(root / "train" / "manifest.json")
    (root / "train" / "notes.txt").unlink()
    generate(train, 1, seed=4, size=64)
    assert len([n for n in os.listdir(train) if n.endswith(".pts")]) == 1

    photos = tmp_path / "mine" / "train"
    photos.mkdir(parents=True)
    (photos / "face_00000.png").write_bytes(b"my photo")
    (photos / "holiday.jpg").write_bytes(b"jpeg")
    before = _listing(photos)
    with pytest.raises(OutputError, match=r"train: holds files other than synthetic faces \(1, e\.g\. holiday\.jpg\)"):
        ensure_default_dataset(str(tmp_path / "mine"), 2, 1, size=64)
    assert _listing(photos) == before
    with pytest.raises(ConfigError, match=r"^seed -1: synthetic faces need a seed of 0 or more$"):
        generate(str(tmp_path / "neg"), 1, seed=-1, size=64)


def test_cli_refuses_a_size_too_large_in_one_line(tmp_path, capsys):
    """--size 100000 used to end in numpy's MemoryError traceback after creating the output folder."""
    import pytest

    from landmark_kd.data.synthetic import MAX_SIZE

    with pytest.raises(SystemExit) as exited:
        main(["--out", str(tmp_path / "syn"), "--num", "1", "--size", str(MAX_SIZE + 1)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: argument --size: must be at most {MAX_SIZE}, got {MAX_SIZE + 1}") and "\n" not in err
    assert not (tmp_path / "syn").exists()
