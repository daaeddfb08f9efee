"""MirroredStrategy over two logical CPU devices follows the one-device loss trajectory (same global batch)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from landmark_kd.data.synthetic import generate
from landmark_kd.training import TrainConfig, run_training
faces = generate(sys.argv[1] + "/faces", 16, seed=8, size=96, sheet=False)
out = {}
for strategy in ("one_device", "mirrored"):
    cfg = TrainConfig(preset="swinv2_pico", image_size=64, head_dim=16, head_convs=1, train_data=faces, val_data=faces,
                      epochs=2, steps_per_epoch=3, batch_size=8, augment=False, warmup_epochs=0, seed=3,
                      clipnorm=None, strategy=strategy, output=sys.argv[1] + "/" + strategy, verbose=0)
    m = run_training(cfg)
    out[strategy] = {"loss": m["history"]["loss"], "steps": m["steps"], "nme": m["nme"]}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_matches_one_device(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT")), None)
    assert line, result.stdout[-2000:] + result.stderr[-3000:]
    out = json.loads(line[6:])
    one, two = out["one_device"], out["mirrored"]
    assert one["steps"] == two["steps"] == 6
    for a, b in zip(one["loss"], two["loss"]):
        assert abs(a - b) <= 2e-3 * abs(a), (one["loss"], two["loss"])


@pytest.mark.slow
def test_the_readmes_multiworker_command_trains_on_a_one_worker_cluster(tmp_path):
    """`train.py --strategy multiworker` with TF_CONFIG: the strategy must be made before anything starts
    TensorFlow's runtime (setting the seed or listing the devices did, and every run died with "Collective ops
    must be configured at program startup")."""
    import socket

    with socket.socket() as probe:  # a free port for the one worker
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    cluster = {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}
    run = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--strategy", "multiworker", "--epochs", "1",
                          "--steps-per-epoch", "2", "--batch-size", "4", "--preset", "swinv2_pico", "--image-size", "64",
                          "--head-dim", "16", "--synthetic-root", str(tmp_path / "faces"), "--synthetic-train", "8",
                          "--synthetic-test", "4", "--output", str(tmp_path / "run")], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600, env={**os.environ, "TF_CONFIG": json.dumps(cluster)})
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert metrics["steps"] == 2 and os.path.isfile(tmp_path / "run" / "best.keras")


def test_a_global_batch_must_split_evenly_over_the_replicas(capsys):
    """Keras cannot train on unequal per-replica parts: a batch that does not split is refused naming the flag, and
    a batch cut to the training set stays a multiple of the replicas."""
    from landmark_kd.distribute import global_batch
    from landmark_kd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--batch-size 5 does not split evenly over the 2 replicas of --strategy "
                                          r"mirrored: pass a multiple of 2, e.g. 4 or 6"):
        global_batch(5, 2, "mirrored")
    with pytest.raises(ConfigError, match=r"--batch-size 1 .* e\.g\. 2$"):
        global_batch(1, 2, "mirrored")
    assert global_batch(8, 2, "mirrored", faces=7) == 6
    assert "batches of 6 are used (a multiple of the 2 replicas of --strategy mirrored)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="1 training face"):
        global_batch(2, 2, "mirrored", faces=1)
    assert global_batch(8, 1, "auto", faces=7) == 7 and global_batch(6, 2, "mirrored", faces=100) == 6
    assert "batches of 7 are used\n" in capsys.readouterr().err  # one replica: no multiple to speak of
    assert global_batch(8, 2, "mirrored", faces=8) == 8 and capsys.readouterr().err == ""  # exactly filled: no warning


def test_train_py_refuses_an_uneven_batch_in_one_line_before_any_work(tmp_path):
    """--strategy mirrored --batch-size 5 on two devices died after loading the data and building the model, with
    a traceback from tf.distribute's all-reduce (AddN shapes [3,64,64,3] != [2,64,64,3])."""
    script = ("import sys, tensorflow as tf\n"
              "cpu = tf.config.list_physical_devices('CPU')[0]\n"
              "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
              "import train\nsys.exit(train.main(sys.argv[1:]))\n")
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-c", script, "--strategy", "mirrored", "--batch-size", "5", "--epochs", "1",
                          "--steps-per-epoch", "1", "--preset", "swinv2_pico", "--image-size", "64", "--head-dim", "16",
                          "--synthetic-root", str(tmp_path / "faces"), "--synthetic-train", "8", "--synthetic-test",
                          "4", "--output", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: --batch-size 5 does not split evenly over the 2 "
                                                          "replicas of --strategy mirrored")
    assert not out.exists() and not (tmp_path / "faces").exists()  # refused before the data or the folder


def test_xla_with_mixed_precision_is_refused_on_a_cpu_before_any_work(tmp_path):
    """XLA's CPU compiler rejects the mixed-precision train step of both backbones ("Seen floating point types of
    different precisions"): the run died with that traceback in its first step, after the data and the model."""
    import tensorflow as tf

    from landmark_kd.errors import ConfigError
    from landmark_kd.training import TrainConfig, run_training

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("the pair is refused only where there is no GPU")
    config = TrainConfig(preset="swinv2_pico", image_size=64, head_dim=16, head_convs=1, xla=True,
                         mixed_precision="mixed_bfloat16", synthetic_root=str(tmp_path / "faces"), synthetic_train=8,
                         synthetic_test=4, epochs=1, steps_per_epoch=1, batch_size=4, output=str(tmp_path / "run"),
                         verbose=0)
    with pytest.raises(ConfigError, match="--xla with --mixed-precision mixed_bfloat16 does not compile on a CPU"):
        run_training(config)
    assert not (tmp_path / "faces").exists() and not (tmp_path / "run").exists()


def test_xla_alone_mixed_precision_alone_or_either_on_a_gpu_is_allowed():
    from landmark_kd.distribute import check_xla

    for xla, policy, gpus in ((True, "no", 0), (False, "mixed_float16", 0), (True, "mixed_float16", 1)):
        assert check_xla(xla, policy, gpus) is None
