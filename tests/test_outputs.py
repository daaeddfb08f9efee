"""landmark_kd.outputs on its own: atomic writes keep the previous file on failure, dead writers' temporaries are
removed and no one else's, and output folders inside (or holding) input folders are refused."""
import json
import os

import pytest

from landmark_kd.errors import OutputError
from landmark_kd.outputs import (atomic_bytes, atomic_json, atomic_write, json_safe, prepare_output_dir, read_json,
                                 refuse_input_folder, remove_dead_temporaries)


def test_atomic_write_replaces_the_file_and_a_failed_write_keeps_the_old_one(tmp_path):
    path = str(tmp_path / "best.keras")
    atomic_bytes(path, b"first")
    assert open(path, "rb").read() == b"first" and os.listdir(tmp_path) == ["best.keras"]
    seen = []

    def full_disk(tmp):
        seen.append(tmp)
        with open(tmp, "wb") as handle:
            handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"best\.keras: cannot write it \(No space left on device\); the previous"):
        atomic_write(path, full_disk, suffix=".keras")
    assert seen == [f"{path}.{os.getpid()}.tmp.keras"]  # per process, with the writer's extension kept
    assert open(path, "rb").read() == b"first" and os.listdir(tmp_path) == ["best.keras"]

    def interrupted(tmp):
        open(tmp, "wb").close()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # not turned into an OutputError, but cleaned up all the same
        atomic_write(path, interrupted)
    assert os.listdir(tmp_path) == ["best.keras"]

    def bug(tmp):
        open(tmp, "wb").close()
        raise ValueError("a bug in the writer")

    with pytest.raises(ValueError, match="a bug in the writer"):  # only an OSError is a disk's problem
        atomic_write(path, bug)
    assert os.listdir(tmp_path) == ["best.keras"]


def test_atomic_json_writes_strict_json_with_null_for_nan_and_infinity(tmp_path):
    path = tmp_path / "scores.json"
    atomic_json(str(path), {"nme": float("nan"), "runs": ({"fr": float("-inf")}, 0.5), "n": 3})
    assert json.loads(path.read_text()) == {"nme": None, "runs": [{"fr": None}, 0.5], "n": 3}
    assert json_safe([1.0, float("inf"), "x"]) == [1.0, None, "x"]
    assert read_json(str(path))["n"] == 3
    path.write_text("{half")
    assert read_json(str(path)) is None and read_json(str(tmp_path / "missing.json")) is None


def test_only_dead_writers_temporaries_of_the_named_files_are_removed(tmp_path):
    mine = f"best.keras.{os.getpid()}.tmp.keras"
    names = ["best.keras.4194999.tmp.keras", "config.json.4194999.tmp", mine, "notes.4194999.tmp.txt",
             "best.keras", "other.bin.12.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path / "best.keras", tmp_path / "config.json.4194998.tmp")
    removed = remove_dead_temporaries(str(tmp_path), ["best.keras", "config.json", "notes"])
    assert removed == ["best.keras.4194999.tmp.keras", "config.json.4194999.tmp", "notes.4194999.tmp.txt"]
    assert sorted(os.listdir(tmp_path)) == sorted(["best.keras", mine, "other.bin.12.tmp", "config.json.4194998.tmp"])
    assert remove_dead_temporaries(str(tmp_path), None) == ["other.bin.12.tmp"]  # any name; still never our own
    assert remove_dead_temporaries(str(tmp_path / "absent"), None) == []


def test_an_output_folder_in_or_around_an_input_folder_is_refused(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    refuse_input_folder(str(tmp_path / "out"), [str(photos)], recursive=True, containing=True)
    with pytest.raises(OutputError, match=f"--out {photos} is the input folder {photos}"):
        refuse_input_folder(str(photos), [str(photos)])
    refuse_input_folder(str(photos / "sub"), [str(photos)])  # inside is allowed unless recursive
    with pytest.raises(OutputError, match="lies inside the input folder"):
        refuse_input_folder(str(photos / "sub"), [str(photos)], recursive=True, flag="--output")
    refuse_input_folder(str(tmp_path / "photos2"), [str(photos)], recursive=True)  # a sibling sharing the prefix
    refuse_input_folder(str(tmp_path), [str(photos)])  # holding it is allowed unless `containing`
    with pytest.raises(OutputError, match=f"contains the input folder {photos}"):
        refuse_input_folder(str(tmp_path), [str(photos)], containing=True)
    refuse_input_folder(str(tmp_path / "pho"), [str(photos)], containing=True)  # "pho" does not hold "photos"


def test_prepare_output_dir_creates_the_folder_and_refuses_a_file(tmp_path):
    out = tmp_path / "a" / "b"
    assert prepare_output_dir(str(out)) == str(out) and out.is_dir() and os.listdir(out) == []  # no probe left
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not an output folder"):
        prepare_output_dir(str(tmp_path / "file"))
    with pytest.raises(OutputError, match="output directory is not writable"):
        prepare_output_dir(str(tmp_path / "file" / "below"))
