"""A regular install (``pip install .``, not editable) holds the kit's data and grades.

The kit is copied to a temporary folder and installed into a virtual environment made with
``--system-site-packages`` (torch and the rest come from this Python, nothing is
downloaded: ``--no-index --no-build-isolation``); the installed copy then runs from a folder
that is not the kit's. ~20-25 s on 2 busy cores (building and installing the wheel, grading one exercise),
so it is marked slow: ``python -m pytest -m slow tests/test_install.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COPY_IGNORED = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "*.egg-info", "build", "dist", "tests",
                                      ".benchmarks", "pretraining-output")


def run(args, cwd, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_regular_install_finds_its_data_and_grades(tmp_path):
    source = tmp_path / "kit"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORED)
    venv = tmp_path / "venv"
    # without pip: the venv uses this Python's pip and setuptools (a venv's own bundled setuptools may be too old)
    done = run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    done = run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "-q", source],
               cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run([python, "-c", "import reference; reference.verify_all_data(); "
                "print(reference.__file__); print(reference.DATA_DIR); print(len(reference.load_text()))"],
               cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    module, data_dir, characters = done.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(data_dir) == Path(module).parent / "kitdata"
    assert characters == "20479"  # The Verdict, read from the installed package data

    done = run([python, "-m", "grader", "--solutions", "text_to_token_ids"], cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed." in done.stdout and str(venv) in done.stdout  # the installed copy graded
