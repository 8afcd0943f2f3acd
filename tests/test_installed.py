"""The package as an instructor installs it (its wheel, not this checkout) runs its own demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autograder.otterkit.build import build_wheel
from autograder.paths import PROJECT_ROOT
from autograder.results import read_result


@pytest.mark.slow
def test_the_installed_wheel_grades_its_bundled_examples_from_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path / "wheel")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    # this interpreter's dependencies (torch, pytest), the wheel's autograder before the checkout's editable one
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import autograder; print(autograder.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert where.startswith(str(site)), where
    run = subprocess.run([sys.executable, "-m", "autograder", "demo", "--out", str(tmp_path / "out")], env=env,
                         cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    expected = json.loads((PROJECT_ROOT / "examples" / "submissions" / "expected_scores.json").read_text())
    for assignment, notebooks in expected.items():
        for notebook, exercises in notebooks.items():
            result = read_result(tmp_path / "out" / assignment / notebook.replace(".ipynb", ".json"))
            assert {e.id: [e.score, e.status] for e in result.exercises} == exercises, (assignment, notebook)
            assert str(site) in result.path or result.path.startswith(str(site)), result.path  # the wheel's copies
