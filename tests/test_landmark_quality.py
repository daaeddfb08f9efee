"""benchmarks/landmark_quality.py: its AUROC, the moved boxes, and a run on real faces."""
import json

import numpy as np
import pytest

from benchmarks.landmark_quality import PICTURE_CROPS, PICTURES, auroc, main, moved_box


def test_auroc_is_the_chance_a_positive_scores_above_a_negative_ties_half():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert auroc(np.array([2.0]), np.array([2.0])) == 0.5


def test_moved_boxes_go_half_a_box_towards_each_diagonal_in_turn():
    box = [10.0, 20.0, 30.0, 60.0]
    moved = [moved_box(box, i) for i in range(4)]
    assert moved[0] == [0.0, 40.0, 20.0, 80.0] and moved[1] == [20.0, 40.0, 40.0, 80.0]
    assert moved[2] == [0.0, 0.0, 20.0, 40.0] and moved[3] == [20.0, 0.0, 40.0, 40.0]


def test_the_fast_student_tells_dlib_faces_from_pictures_without_one(tmp_path, capsys):
    """All 43 dlib_faces against the 144 picture crops, with the shipped fast student: every figure is written,
    and faces rank above the crops with no face (README, "Landmark quality": AUROC 1.000 on 470 faces)."""
    from conftest import realfaces

    out = tmp_path / "quality.json"
    assert main(["--models", "real_fast_fp16.tflite", "--data", realfaces("dlib_faces/faces.json"),
                 "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text()).values()
    assert result["faces"] == 43 and len(PICTURES) * len(PICTURE_CROPS) == 144
    assert result["auroc_no_face"] > 0.99 and result["auroc_moved"] > 0.9
    assert result["face"]["p5"] > result["no_face"]["p95"] and result["face"]["p50"] > result["moved"]["p50"]
    assert -1 <= result["spearman_nme"] < 0 and len(result["nme_by_quarter"]) == 4
    assert "AUROC faces vs no face" in capsys.readouterr().out


def test_a_model_without_quality_is_one_error_line(tmp_path, capsys):
    from conftest import realfaces

    import keras
    import tensorflow as tf

    from landmark_kd.models import build_landmark_model

    keras.utils.set_random_seed(0)
    model = build_landmark_model("mobilevitv2_pico", "68", 64)
    image = keras.Input((64, 64, 3), batch_size=1)
    old = keras.Model(image, {"landmarks": model(image)["landmarks"]})  # as exports were before peak shares
    (tmp_path / "old.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(old).convert())
    with pytest.raises(SystemExit, match="gives no landmark quality"):
        main(["--models", str(tmp_path / "old.tflite"), "--data", realfaces("dlib_faces/faces.json")])
