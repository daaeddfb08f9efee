"""A training process killed mid-run continues from its backup when the same command runs again."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from landmark_kd.data.synthetic import generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_step_count(tmp_path):
    faces = generate(str(tmp_path / "faces"), 16, seed=5, size=96, sheet=False)
    out = str(tmp_path / "run")
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--preset", "swinv2_pico", "--image-size", "64",
           "--head-dim", "16", "--train-data", faces, "--val-data", faces, "--epochs", "4", "--steps-per-epoch", "4",
           "--batch-size", "4", "--output", out]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    seen = []
    deadline = time.time() + 240
    for line in proc.stdout:
        seen.append(line)
        if line.strip().startswith("epoch 2:"):
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)  # no chance to clean up
            break
        assert time.time() < deadline, "".join(seen)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert os.path.isdir(os.path.join(out, "backup")) and os.path.exists(os.path.join(out, "best.keras"))
    # resumed with another learning rate: allowed, but said and recorded (config.json alone would misstate the run)
    # ... and with --init-from, which the backup's weights override: not loaded, and said so
    import shutil

    start = shutil.copy(os.path.join(out, "best.keras"), tmp_path / "start.keras")
    again = subprocess.run(cmd + ["--lr", "0.001", "--init-from", str(start)], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resuming the interrupted run" in again.stdout
    assert f"the weights come from the backup, not from --init-from {start}" in again.stdout
    assert "starting from the weights of" not in again.stdout
    assert "warning: resuming with other settings than the run had: learning_rate 0.002 -> 0.001" in again.stdout
    assert json.load(open(os.path.join(out, "config.json")))["changed_on_resume"] == {"learning_rate": [0.002, 0.001]}
    assert "epoch 1:" not in again.stdout  # finished epochs are not redone
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["steps"] == 16  # 4 epochs x 4 steps, as if never interrupted
    # the report covers the whole run, not only the epochs after the resume
    assert len(metrics["history"]["loss"]) == 4 and len(metrics["history"]["val_nme"]) == 4
    assert all(v == v for v in metrics["history"]["val_nme"])  # no NaN gaps
    assert not os.path.exists(os.path.join(out, "backup"))
    # --restart removes the finished run's files before training, so no mix of two runs can be left behind;
    # TensorBoard's event files go, what a user put in logs/ stays
    old_events = [os.path.join(root, f) for root, _, files in os.walk(os.path.join(out, "logs")) for f in files]
    assert old_events
    os.makedirs(os.path.join(out, "logs", "mine"), exist_ok=True)
    open(os.path.join(out, "logs", "mine", "notes.txt"), "w").close()
    restart = subprocess.run(cmd + ["--restart", "--epochs", "1", "--init-from", os.path.join(out, "best.keras")],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert restart.returncode == 2 and "--restart would delete this model" in restart.stderr
    # (untraced: 4 steps start sooner without tracing the step, and train.py's --run-eagerly is run end to end)
    restart = subprocess.run(cmd + ["--restart", "--epochs", "1", "--run-eagerly"], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert "--restart: removed the earlier run's best.keras, last.keras, best.json, metrics.json" in restart.stdout
    assert not any(os.path.exists(path) for path in old_events)
    assert os.path.exists(os.path.join(out, "logs", "mine", "notes.txt"))
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    record = json.load(open(os.path.join(out, "config.json")))
    assert metrics["steps"] == 4 and "changed_on_resume" not in record and record["run_eagerly"] is True


def test_a_full_disk_keeps_the_old_checkpoint_and_leaves_no_temporary_file(tmp_path):
    import errno

    from landmark_kd.trainer import save_model_atomically

    class FullDisk:
        def save(self, path):
            with open(path, "wb") as handle:
                handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "best.keras").write_bytes(b"the previous checkpoint")
    with pytest.raises(PermissionError, match="best.keras: cannot write it \\(No space left on device\\)"):
        save_model_atomically(FullDisk(), str(tmp_path / "best.keras"))
    assert (tmp_path / "best.keras").read_bytes() == b"the previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]
