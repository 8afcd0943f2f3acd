"""Notebooks written the way the course's tutorials are (install cells, course imports, widget cells, helper and
bonus sections) show their student only what concerns them: a correct one no problem at all, a wrong one the reason
next to the exercise that lost points."""

from __future__ import annotations

import subprocess
import sys

from autograder import messages
from autograder.paths import PROJECT_ROOT

from .conftest import grade_paths
from .mutants import decoding, mlp

# As the seeds' notebooks begin: an install cell (a shell command, skipped), the course's own packages (absent
# here), then a widget cell whose layout comes from a call (skipped in definitions mode) used by a decorator.
INSTALL = "# @title Install dependencies\n!pip install vibecheck datatops --quiet\n"
COURSE_IMPORTS = (
    "from vibecheck import DatatopsContentReviewContainer\n"
    "def content_review(notebook_section: str):\n    return DatatopsContentReviewContainer('', notebook_section)\n"
)
WIDGETS = (
    "import ipywidgets as widgets\n"
    "my_layout = widgets.Layout()\n"
    "@widgets.interact(n=widgets.IntSlider(1, 1, 10), layout=my_layout)\n"
    "def plot_fit(n=1):\n    return n * 2\n"
)


def _mlp(*extra: str, exercises: dict[str, str] | None = None) -> list[str]:
    return [INSTALL, COURSE_IMPORTS, mlp.HEADER, WIDGETS, *(exercises or mlp.BASE).values(), *extra]


def test_a_correct_course_shaped_notebook_shows_its_student_no_problem(notebook):
    [result] = grade_paths("mlp", [notebook("course.ipynb", *_mlp())])
    assert result.score == 40
    assert result.errors == ()  # nothing for the student
    notes = "\n".join(result.notes)
    assert "No module named 'vibecheck'" in notes  # for the instructor
    assert "my_layout" in notes and messages.DEFINED_UNDECORATED in notes  # plot_fit defined all the same
    assert result.missing_modules == ("vibecheck",)


def test_a_load_problem_that_explains_a_lost_point_stays_with_the_student(notebook):
    """`np` never imported because its cell failed: the loss that uses it loses points, and the student sees why."""
    ce = "def cross_entropy_loss(x, labels):\n    return torch.tensor(np.mean([0.0]))\n"
    cells = ["import torch\nimport torch.nn as nn\nimport not_a_module_here, numpy as np\n", ce]
    [result] = grade_paths("mlp", [notebook("np.ipynb", *cells)])
    assert result.exercise("cross_entropy_loss").score < 10
    assert any("not_a_module_here" in error for error in result.errors)  # `np`, bound there, is what failed


def test_missing_means_never_defined_and_error_means_its_definition_raised(notebook):
    without_net = {k: v for k, v in mlp.BASE.items() if k != "Net"}
    [unrelated] = grade_paths("mlp", [notebook("a.ipynb", *_mlp(exercises=without_net))])
    assert unrelated.exercise("Net").status == "missing"  # an unrelated import failed: still only missing
    raising = {**without_net, "Net": "import not_a_module_here\nclass Net(not_a_module_here.Module):\n    pass\n"}
    [raised] = grade_paths("mlp", [notebook("b.ipynb", *_mlp(exercises=raising))])
    assert raised.exercise("Net").status == "error"  # the code meant to define it raised
    assert any("Cell" in error and "not_a_module_here" in error for error in raised.errors)


def test_a_signature_that_differs_is_said_once_with_both_signatures(notebook):
    renamed = decoding.BASE["train"].replace("n_iter", "n_epochs")
    cells = [decoding.HEADER, *{**decoding.BASE, "train": renamed}.values()]
    [result] = grade_paths("decoding", [notebook("epochs.ipynb", *cells)])
    train = result.exercise("train")
    assert train.score == 0  # the verdict stands: the assignment asks for n_iter
    messages_seen = [t.message for t in train.tests if not t.passed]
    first = messages_seen[0]
    assert first.startswith("Your train(net, loss_fn, train_data, train_labels, n_epochs=...")
    assert "cannot be called the way this exercise calls it, train(" in first and "n_iter=..." in first
    assert "unexpected keyword argument 'n_iter'" in first
    assert sum("Your train(" in m for m in messages_seen) == 1  # once, then a short pointer
    assert all("TypeError" not in m for m in messages_seen)


def test_a_compatible_signature_still_runs(notebook):
    extra = decoding.BASE["train"].replace("L1_penalty=0):", "L1_penalty=0, verbose=False):")
    cells = [decoding.HEADER, *{**decoding.BASE, "train": extra}.values()]
    [result] = grade_paths("decoding", [notebook("verbose.ipynb", *cells)])
    assert result.exercise("train").score == result.exercise("train").max_score


def test_a_name_defined_several_times_says_which_one_was_graded(notebook):
    wrong_again = "def cross_entropy_loss(x, labels):\n    return x.sum() * 0\n"
    [result] = grade_paths("mlp", [notebook("twice.ipynb", *_mlp(wrong_again))])
    assert result.exercise("cross_entropy_loss").score < 10
    said = [e for e in result.errors if "cross_entropy_loss is defined 2 times" in e]
    assert said and "the last one, in cell 9, is the one graded" in said[0]
    [right] = grade_paths("mlp", [notebook("twice_right.ipynb", *_mlp(mlp.BASE["cross_entropy_loss"]))])
    assert right.score == 40 and right.errors == ()  # nothing lost: a note for the instructor only
    assert any("defined 2 times" in note for note in right.notes)


def test_grade_names_the_modules_the_class_imports_that_this_environment_lacks(notebook, tmp_path):
    for name in ("a", "b"):
        notebook(f"{name}.ipynb", *_mlp())
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "mlp", str(tmp_path), "-o", str(tmp_path / "out"), "-j", "1"],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Modules the class imports that this environment lacks: vibecheck (2 notebooks)" in proc.stdout
    assert "Notes for the instructor (not shown to students)" in proc.stdout
    assert messages.LOST_POINTS not in proc.stdout  # both at full marks: nothing to say to students
