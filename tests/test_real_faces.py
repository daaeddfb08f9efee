"""benchmarks/real_faces.py: per-face errors in its JSON, the paired ratio, the CED plot and the worst-face sheets."""
import json
import os

import cv2
import keras
import numpy as np
import pytest

from benchmarks.real_faces import main, worst_faces
from conftest import ROOT
from landmark_kd.data import load_dataset
from landmark_kd.data.synthetic import generate
from landmark_kd.models import build_landmark_model


def test_worst_faces_are_the_largest_errors_worst_first():
    assert worst_faces([0.02, 0.09, 0.05, 0.09, 0.01], 3).tolist() == [1, 3, 2]
    assert worst_faces([0.03], 8).tolist() == [0]


def test_a_face_whose_prediction_is_no_number_is_among_the_worst():
    # argsort puts NaN last: the failed face was never shown
    assert worst_faces([0.02, float("nan"), 0.09, 0.01], 2).tolist() == [1, 2]


def test_json_keeps_every_faces_error_and_plots_show_the_worst_faces(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    data = generate(str(tmp_path / "faces"), 6, seed=2, size=128, sheet=False)
    model = str(tmp_path / "m.keras")
    build_landmark_model("mobilevitv2_pico", "68", 64).save(model)
    out, report = tmp_path / "plots", tmp_path / "r.json"
    assert main(["--models", model, "--data", data, "--threads", "1", "--plots", str(out), "--json", str(report),
                 "--ratio", model, model]) == 0
    printed = capsys.readouterr().out
    assert "CED and worst-face plots" in printed
    assert f"{data}: 1.000x (1.000-1.000; A ahead in 0.0% of resamples, 6 faces)" in printed  # a model against itself
    row = json.loads(report.read_text())[model][data]
    samples, _ = load_dataset(data, num_points=68)
    assert len(row["errors"]) == len(samples) == 6
    assert np.isclose(np.mean(row["errors"]), row["mean"], atol=1e-5)
    (sheet_path,) = out.glob("worst_*_m_keras.png")
    sheet = cv2.imread(str(sheet_path))
    assert sheet.shape == (2 * 192, 4 * 192, 3)  # 6 faces in a 4-column grid, then blank tiles
    assert (sheet[192:, 2 * 192:] == 255).all() and sheet[:192, :192].std() > 10
    (ced_path,) = out.glob("ced_*.png")
    assert cv2.imread(str(ced_path)).std() > 10


def test_ratio_names_must_be_scored_models(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.keras").write_bytes(b"")
    (tmp_path / "faces").mkdir()
    with pytest.raises(SystemExit):
        main(["--models", "a.keras", "--data", "faces", "--ratio", "a.keras", "b.keras"])
    assert "--ratio a.keras b.keras: both must be among --models" in capsys.readouterr().err


def test_ratio_takes_shipped_names_as_models_does(tmp_path, capsys, monkeypatch):
    """`--models real_student.keras --ratio real_student.keras ...` names the same resolved file in both flags."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):  # stops at the empty-data check after the --ratio check, loading nothing
        main(["--models", "real_student.keras", "real_fast_fp16.tflite", "--ratio", "real_student.keras",
              "real_fast_fp16.tflite"])
    assert "--data: name the 68-point sets" in capsys.readouterr().err
    # a full path in one flag and the bare name in the other name the same file
    shipped = os.path.relpath(os.path.join(ROOT, "landmark_kd", "pretrained"))  # relative to tmp_path
    with pytest.raises(SystemExit):
        main(["--models", os.path.join(shipped, "real_student.keras"), "real_fast_fp16.tflite", "--ratio",
              "real_student.keras", os.path.join(shipped, "real_fast_fp16.tflite")])
    assert "--data: name the 68-point sets" in capsys.readouterr().err


def test_faces_with_unreadable_images_are_counted_not_dropped_silently(tmp_path, capsys):
    from benchmarks.real_faces import load_faces
    from landmark_kd.errors import DataError

    data = generate(str(tmp_path / "faces"), 4, seed=5, size=96, sheet=False)
    samples, _ = load_dataset(data, num_points=68)
    with open(samples[1].image_path, "wb") as handle:  # cut short: the reader skips its record
        handle.write(b"\x89PNG\r\n\x1a\n cut short")
    with open(samples[2].image_path, "wb") as handle:  # a whole PNG in form that does not decode
        handle.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (96).to_bytes(4, "big") * 2 + bytes(300) + b"IEND\xaeB`\x82")
    kept, images = load_faces(data)
    assert [s.image_path for s in kept] == [samples[0].image_path, samples[3].image_path]
    assert set(images) == {s.image_path for s in kept} and all(i.shape == (96, 96, 3) for i in images.values())
    printed = capsys.readouterr().out
    assert f"{data}: 2 faces; skipped 1 bad record(s) and 1 face(s) in 1 unreadable image(s)" in printed
    assert samples[1].image_path in printed  # the first reason given
    undecodable = open(samples[2].image_path, "rb").read()
    for s in samples:
        with open(s.image_path, "wb") as handle:
            handle.write(undecodable)
    with pytest.raises(DataError, match="none of its 4 faces"):
        load_faces(data)
