"""Workers inherit the course's usual imports from the fork server (and an assignment's `preload`), plots render
with a non-interactive backend, and a module the server could not import is the worker's to meet."""

import json
import subprocess
import sys
import textwrap

SPEC = """
name = "toy"
title = "Toy"
source = "tests"
reference = "reference.py"
preload = ["colorsys", "no_such_module_anywhere"]

[[exercises]]
id = "seen"
title = "What the worker had before the notebook imported anything"
symbols = { seen = "function" }
points = 1
"""
CHECK = """
import pytest

@pytest.mark.public
@pytest.mark.points(1)
def test_seen(student, reference):
    got = student.seen()
    assert got == reference.seen(), f"the worker had {got}"
"""
REFERENCE = """
def seen():
    return [True, True, True, True, "agg"]
"""
# Evaluated at the top of the notebook, before any import of the student's: constant expressions, so they run in
# the default definitions-only mode.
STUDENT = """
import sys
SEEN = ('torchvision' in sys.modules, 'matplotlib.pyplot' in sys.modules, 'tqdm.auto' in sys.modules,
        'colorsys' in sys.modules)
import matplotlib.pyplot as plt

def seen():
    return [*SEEN, plt.get_backend().lower()]
"""


def test_workers_start_with_the_course_imports_and_the_assignments_preload(tmp_path):
    folder = tmp_path / "toy"
    (folder / "checks").mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC)
    (folder / "reference.py").write_text(textwrap.dedent(REFERENCE))
    (folder / "checks" / "test_seen.py").write_text(textwrap.dedent(CHECK))
    (tmp_path / "student.py").write_text(STUDENT)
    # A fresh process: the fork server reads the preload list when it starts.
    command = [sys.executable, "-m", "autograder", "grade", str(folder), str(tmp_path / "student.py")]
    done = subprocess.run([*command, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "student.json").read_text())
    [check] = result["exercises"][0]["tests"]
    assert check["passed"], check["message"]
    assert result["errors"] == []  # "no_such_module_anywhere" in `preload` is skipped, not fatal
