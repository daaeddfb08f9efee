"""landmark_kd.quiet: what native libraries write to descriptor 2 is rewritten or dropped, never lost by accident."""
import os

import pytest

from landmark_kd.quiet import native_stderr, runtime_notices_wanted


def test_native_lines_are_rewritten_or_dropped(capfd):
    with native_stderr(lambda line: None if "drop" in line else f"[x] {line}"):
        os.write(2, b"keep me\nplease drop this\n\n")
    assert capfd.readouterr().err == "[x] keep me\n"


def test_captured_lines_survive_an_exception(capfd):
    """A library that fails often says why on stderr first: that must still be shown."""
    with pytest.raises(RuntimeError):
        with native_stderr(lambda line: line):
            os.write(2, b"why it failed\n")
            raise RuntimeError("boom")
    assert capfd.readouterr().err == "why it failed\n"
    os.write(2, b"after\n")  # descriptor 2 is back
    assert capfd.readouterr().err == "after\n"


def test_runtime_notices_only_when_the_log_level_is_zero(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert not runtime_notices_wanted()
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    assert not runtime_notices_wanted()
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert runtime_notices_wanted()


@pytest.mark.parametrize("level, shown", [(None, False), ("0", True)])
def test_a_library_user_sees_no_xnnpack_notice(level, shown):
    """`LandmarkDetector()` in a user's script printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    (the runtime logs it once per process, so each case runs in a fresh one); TF_CPP_MIN_LOG_LEVEL=0 brings it
    back."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    code = ("from landmark_kd.export.tflite_runner import make_interpreter; "
            "make_interpreter('landmark_kd/assets/face_detection_short_range.tflite'); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert ("XNNPACK delegate" in done.stderr) == shown, done.stderr[-2000:]


def test_a_nested_capture_neither_deadlocks_nor_loses_lines(capfd):
    """The inner capture prints through sys.stderr: outside pytest that is descriptor 2, so the outer capture
    rewrites it again; pytest's sys.stderr writes past the descriptor, hence either form."""
    with native_stderr(lambda line: f"outer: {line}"):
        with native_stderr(lambda line: f"inner: {line}"):
            os.write(2, b"x\n")
    assert capfd.readouterr().err in ("outer: inner: x\n", "inner: x\n")
