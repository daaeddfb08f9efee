"""landmark_kd.tracking's numpy parts on their own (the tracker with a model is tested in test_inference.py):
the jump test, the greedy IoU pairing and the shot-cut threshold."""
import numpy as np
import pytest

from landmark_kd.tracking import ShotCutDetector, greedy_pairs, jump_reason, landmark_box


def _points(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [(x0 + x1) / 2, (y0 + y1) / 2]], np.float32)


def test_landmark_box_is_the_points_extent():
    assert landmark_box(_points(10, 20, 70, 95)).tolist() == [10, 20, 70, 95]


@pytest.mark.parametrize("now, reason", [
    ((100, 100, 160, 160), None),  # the same box
    ((105, 95, 172, 165), None),  # 60 -> 67 wide and 70 high (+17%), centre moved 8.5 px
    ((100, 100, 160, 180), "box changed from 60x60 to 60x80 px"),  # taller by a third, width unchanged
    ((100, 100, 180, 160), "box changed from 60x60 to 80x60 px"),  # wider by a third
    ((110, 110, 150, 150), "box changed from 60x60 to 40x40 px"),  # shrunk by a third
    ((131, 100, 191, 160), "box moved 31 px"),  # over half of the 60 px size
    ((129, 100, 189, 160), None),  # under half
])
def test_jump_reason_checks_width_height_and_centre_against_their_limits(now, reason):
    previous = np.array([100, 100, 160, 160], np.float32)
    got = jump_reason(previous, _points(*now))
    assert got == reason if reason is None else got.startswith(reason)


def test_greedy_pairs_take_the_best_overlap_first_and_each_row_and_column_once():
    iou = np.array([[0.5, 0.6, 0.0],
                    [0.0, 0.9, 0.4],
                    [0.2, 0.0, 0.25]])
    # best first: (1, 1) 0.9; row 0's best column is taken, so (0, 0) 0.5; then (2, 2) 0.25 is under 0.3
    assert greedy_pairs(iou, 0.3) == [(1, 1), (0, 0)]
    assert greedy_pairs(iou, 0.2) == [(1, 1), (0, 0), (2, 2)]
    assert greedy_pairs(np.zeros((0, 2)), 0.3) == []


def test_a_shot_cut_is_a_thumbnail_change_above_the_threshold():
    """Frames of flat grey that step by a known level: the thumbnails' mean absolute difference is that step, and
    a cut is a step above `change` (12 grey levels), not at or below it."""
    frames = [np.full((120, 160, 3), level, np.uint8) for level in (100, 111, 123, 135, 135)]
    cuts = ShotCutDetector()
    seen = []
    for frame in frames:
        seen.append((cuts(frame), cuts.last_change))
    assert seen == [(False, None), (False, 11.0), (False, 12.0), (False, 12.0), (False, 0.0)]
    assert ShotCutDetector()(frames[0]) is False
    jumpy = ShotCutDetector(change=5.0)
    assert [jumpy(f) for f in frames] == [False, True, True, True, False]
    never = ShotCutDetector(change=None)
    assert [never(f) for f in (frames[0], 255 - frames[0])] == [False, False] and never.last_change == 55.0
    big = ShotCutDetector()
    assert [big(f) for f in (frames[0], frames[0] // 2)] == [False, True] and big.last_change == 50.0
    big.reset()
    assert big(frames[0]) is False and big.last_change is None  # a new video starts without a previous frame
