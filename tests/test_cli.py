"""The top-level scripts: --help works, and missing inputs give one clear line, not a traceback."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script,needle", [("train.py", "--preset"), ("distill.py", "--alpha"), ("convert.py", "--target-runtime")])
def test_help(script, needle):
    result = _run(os.path.join(ROOT, script), "--help")
    assert result.returncode == 0 and needle in result.stdout


def test_distill_without_teacher_says_what_to_run(tmp_path):
    result = _run(os.path.join(ROOT, "distill.py"), "--teacher", str(tmp_path / "missing.keras"))
    assert result.returncode == 2
    assert "python train.py" in result.stderr and "Traceback" not in result.stderr


def test_train_with_missing_data_names_the_path(tmp_path):
    result = _run(os.path.join(ROOT, "train.py"), "--train-data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "nowhere: no such file or directory" in result.stderr and "Traceback" not in result.stderr


def test_convert_without_student_says_what_to_run(tmp_path):
    result = _run(os.path.join(ROOT, "convert.py"), cwd=str(tmp_path))
    assert result.returncode == 2 and "python distill.py" in result.stderr
