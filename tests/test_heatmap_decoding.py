"""benchmarks/heatmap_decoding.py: its full decode is the model's own (the same errors as real_faces.py), and it
scores every radius asked for."""
import json

import keras
import numpy as np
import pytest

from benchmarks import heatmap_decoding, real_faces
from landmark_kd.data.synthetic import generate
from landmark_kd.models import build_landmark_model


def test_full_decode_scores_what_real_faces_scores_and_each_radius_is_reported(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    data = generate(str(tmp_path / "faces"), 5, seed=3, size=128, sheet=False)
    model = str(tmp_path / "m.keras")
    build_landmark_model("mobilevitv2_pico", "68", 64).save(model)
    decoded, scored = tmp_path / "d.json", tmp_path / "r.json"
    assert heatmap_decoding.main(["--models", model, "--data", data, "--radius", "1", "3", "--json", str(decoded)]) == 0
    printed = capsys.readouterr().out
    assert printed.index(f"{data}: 5 faces") < printed.index("| model |")  # what was loaded, then the table
    assert real_faces.main(["--models", model, "--data", data, "--threads", "1", "--json", str(scored)]) == 0
    rows = json.loads(decoded.read_text())[model][data]
    assert list(rows) == [heatmap_decoding.FULL, "local, radius 1", "local, radius 3"]
    assert np.isclose(rows[heatmap_decoding.FULL]["mean"], json.loads(scored.read_text())[model][data]["mean"], atol=1e-5)
    assert all(r["faces"] == 5 and r["mean"] > 0 for r in rows.values())
    assert rows["local, radius 1"]["mean"] != rows[heatmap_decoding.FULL]["mean"]  # an untrained model's maps are flat


@pytest.mark.parametrize("args, message", [(["--models", "m.tflite"], ".keras files only"),
                                           (["--models", "m.keras", "--radius", "0"], "at least 1")])
def test_bad_arguments_are_refused_in_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("m.tflite", "m.keras"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "faces").mkdir()
    with pytest.raises(SystemExit) as stop:
        heatmap_decoding.main(args + ["--data", "faces"])
    assert stop.value.code == 2 and message in capsys.readouterr().err
