"""FrameLog and write_results_json: a video's frames on disk as they come, landmarks.json streamed from them."""
import json
import math

from landmark_kd.frame_log import FrameLog, write_results_json
from landmark_kd.outputs import atomic_json


def test_results_json_with_a_frame_log_is_the_document_atomic_json_writes(tmp_path):
    frames = [{"frame": i, "faces": [{"landmarks": [[i, 2.5]], "score": math.nan if i == 1 else 0.5}] * (i % 3)}
              for i in range(5)]
    log = FrameLog(str(tmp_path / "v_frames.jsonl"))
    for frame in frames:
        log.append(frame)
    assert len(log) == 5 and log.faces == 0 + 1 + 2 + 0 + 1 and log[1]["faces"][0]["score"] is None  # NaN: null
    header = {"model": "m.tflite", "scheme": "68"}
    results = {"a.jpg": {"faces": [], "message": "no face found"}, "v.mp4": {"frames": log, "fps": 25.0}}
    write_results_json(str(tmp_path / "streamed.json"), header, results)
    atomic_json(str(tmp_path / "whole.json"), {**header, "results": {**results, "v.mp4": {"frames": frames, "fps": 25.0}}})
    streamed = json.loads((tmp_path / "streamed.json").read_text())
    assert streamed == json.loads((tmp_path / "whole.json").read_text())
    assert list(streamed["results"]["v.mp4"]["frames"][2]) == ["frame", "faces"]
    log.remove()
    assert not (tmp_path / "v_frames.jsonl").exists()


def test_a_transform_rewrites_each_record_before_it_is_written(tmp_path):
    log = FrameLog(str(tmp_path / "f.jsonl"), transform=lambda r: {**r, "faces": r["faces"][:1]})
    log.append({"frame": 0, "faces": [{"box": [0, 0, 1, 1]}, {"box": [2, 2, 3, 3]}]})
    log.close()
    assert log.faces == 1 and json.loads((tmp_path / "f.jsonl").read_text()) == {"frame": 0, "faces": [{"box": [0, 0, 1, 1]}]}


def test_each_frame_is_on_disk_as_soon_as_it_is_appended(tmp_path):
    """A killed run keeps every frame it finished: each line is flushed, not left in the file object's buffer."""
    path = tmp_path / "f.jsonl"
    log = FrameLog(str(path))
    log.append({"frame": 0, "faces": []})
    log.append({"frame": 1, "faces": [{"score": 0.5}]})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"frame": 0, "faces": []},
                                                                             {"frame": 1, "faces": [{"score": 0.5}]}]
    log.remove()
    log.remove()  # already gone: nothing to do
    assert not path.exists()
