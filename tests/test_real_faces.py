"""benchmarks/real_faces.py: per-face errors in its JSON, the paired ratio, the CED plot and the worst-face sheets."""
import json

import cv2
import keras
import numpy as np
import pytest

from benchmarks.real_faces import main, worst_faces
from landmark_kd.data import load_dataset
from landmark_kd.data.synthetic import generate
from landmark_kd.models import build_landmark_model


def test_worst_faces_are_the_largest_errors_worst_first():
    assert worst_faces([0.02, 0.09, 0.05, 0.09, 0.01], 3).tolist() == [1, 3, 2]
    assert worst_faces([0.03], 8).tolist() == [0]


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


def test_ratio_names_must_be_scored_models(capsys):
    with pytest.raises(SystemExit):
        main(["--models", "a.keras", "--data", "faces", "--ratio", "a.keras", "b.keras"])
    assert "--ratio a.keras b.keras: both must be among --models" in capsys.readouterr().err
