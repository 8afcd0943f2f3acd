"""`autograder new NAME --from TUTORIAL.ipynb [--solution SOLUTION.ipynb]` on the seeds' two tutorials with
NotImplementedError exercises (tests/fixtures/tutorials/: W1D3 T1 and W2D1 T1 as the course hands them out, each
exercise cell followed by its `# to_remove solution` cell): the generated assignments validate, the course's
solutions get full marks, the unfilled tutorials zero, and a realistic mistake loses points with a message."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import validate
from autograder.tutorial import TutorialError, generate

from .conftest import grade_paths, percent_notebook, run_cli

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures"
TUTORIALS = FIXTURES / "tutorials"


def solution_notebook(name: str, target: Path) -> Path:
    """The course's solution (tests/fixtures/course_solutions/<name>.txt) as a notebook."""
    text = (FIXTURES / "course_solutions" / f"{name}.txt").read_text(encoding="utf-8")
    cells = [c.strip("\n") for c in re.split(r"^# %%.*$", text, flags=re.MULTILINE)[1:]]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), str(target))
    return target


@pytest.fixture(scope="module")
def mlp_tutorial(tmp_path_factory):
    root = tmp_path_factory.mktemp("w1d3")
    tutorial = percent_notebook(TUTORIALS / "W1D3_T1.txt", root / "W1D3_T1.ipynb")
    return root, tutorial, generate("mlp_w1d3", tutorial, root / "course")


@pytest.fixture(scope="module")
def decoding_tutorial(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2d1")
    tutorial = percent_notebook(TUTORIALS / "W2D1_T1.txt", root / "W2D1_T1.ipynb")
    return root, tutorial, generate("decoding_w2d1", tutorial, root / "course")


def test_the_mlp_tutorial_becomes_an_assignment_that_validates(mlp_tutorial):
    root, tutorial, made = mlp_tutorial
    assert [(e.name, e.kind, e.title) for e in made.exercises] == [
        ("approximate_function", "function", "Coding Exercise 1: Function approximation with ReLU"),
        ("Net", "class", "Coding Exercise 2: Implement a general-purpose MLP in Pytorch"),
        ("cross_entropy_loss", "function", "Coding Exercise 2.1: Implement Batch Cross Entropy Loss"),
        ("shuffle_and_split_data", "function", "Coding Exercise 2.3: Implement it for a classfication task"),
    ]
    report = validate(made.folder)
    assert report.ok, report.problems
    assert (report.reference_score, report.template_score) == (40.0, 0.0)
    toml = (made.folder / "assignment.toml").read_text()
    assert "using `torch.log()` and `torch.exp()` without loops." in toml  # the statement, from the Markdown
    check = (made.folder / "checks" / "test_cross_entropy_loss.py").read_text()
    recorded = r"# Recorded from the solution, cell \d+: our_loss = cross_entropy_loss\(x, labels\)\.item\(\)"
    assert re.search(recorded, check)
    assert "@pytest.mark.public" in check
    reference = (made.folder / "reference.py").read_text()
    assert "raise NotImplementedError" not in reference and "atform" not in reference
    assert any("name 'atform' is not defined" in note for note in made.notes)  # a tracking call it cannot run


def test_the_course_solution_gets_full_marks_and_the_unfilled_tutorial_zero(mlp_tutorial, tmp_path):
    root, tutorial, made = mlp_tutorial
    solution = solution_notebook("mlp", tmp_path / "course-solution.ipynb")
    full, empty = grade_paths(made.folder, [solution, tutorial])
    assert full.score == full.max_score == 40
    # The tutorial as handed out also holds the `# to_remove solution` cells; without them it is the template.
    nb = nbformat.read(str(tutorial), 4)
    nb.cells = [c for c in nb.cells if "# to_remove solution" not in c.source]
    template = tmp_path / "template.ipynb"
    nbformat.write(nb, str(template))
    [empty] = grade_paths(made.folder, [template])
    assert empty.score == 0


def test_a_realistic_mistake_loses_the_points_of_that_exercise_with_a_message(mlp_tutorial, tmp_path):
    _, _, made = mlp_tutorial
    solution = solution_notebook("mlp", tmp_path / "summed.ipynb")
    nb = nbformat.read(str(solution), 4)
    for cell in nb.cells:
        cell.source = cell.source.replace("avg_loss = losses.mean()", "avg_loss = losses.sum()")
    nbformat.write(nb, str(solution))
    [summed] = grade_paths(made.folder, [solution])
    assert summed.score == 30 and summed.exercise("cross_entropy_loss").score == 0
    message = next(t.message for t in summed.exercise("cross_entropy_loss").tests if not t.passed)
    assert message.startswith("cross_entropy_loss(x, labels) has the wrong values.\n"
                              "Inputs: x (2, 4) float32, labels (2,) int64\n")  # fmt: skip
    assert "expected 0.346727, got 0.693455" in message


def test_with_a_solution_notebook_the_same_exercises_come_out(tmp_path, mlp_tutorial):
    _, tutorial, _ = mlp_tutorial
    nb = nbformat.read(str(tutorial), 4)
    nb.cells = [c for c in nb.cells if "# to_remove solution" not in c.source]  # the students' version alone
    student = tmp_path / "student.ipynb"
    nbformat.write(nb, str(student))
    made = generate("mlp_from_solution", student, tmp_path, solution_notebook("mlp", tmp_path / "solution.ipynb"))
    assert [e.name for e in made.exercises] == ["approximate_function", "Net", "cross_entropy_loss",
                                                "shuffle_and_split_data"]  # fmt: skip
    assert validate(made.folder).ok
    with pytest.raises(TutorialError, match="has no `# to_remove solution` cell for approximate_function, Net"):
        generate("no_solution", student, tmp_path)


def test_the_decoding_tutorial_with_a_module_passed_to_train(decoding_tutorial, tmp_path):
    root, tutorial, made = decoding_tutorial
    assert [e.name for e in made.exercises] == ["DeepNetReLU", "train", "regularized_loss"]
    report = validate(made.folder)
    assert report.ok, report.problems
    train = (made.folder / "checks" / "test_train.py").read_text()
    # the network passed in is the student's own DeepNetReLU with the recorded weights, compared after training
    assert "theirs_1 = student.DeepNetReLU(60, 10)" in train
    assert 'what="the DeepNetReLU passed in, after the call"' in train
    assert any("train: a call in cell" in note and "builtins.function" in note for note in made.notes)
    solution = solution_notebook("decoding", tmp_path / "course-solution.ipynb")
    [full] = grade_paths(made.folder, [solution])
    assert full.score == full.max_score == 30


def test_the_command_line(tmp_path):
    tutorial = percent_notebook(TUTORIALS / "W1D3_T1.txt", tmp_path / "W1D3_T1.ipynb")
    done = run_cli("new", "week3", "--from", str(tutorial), "--dir", str(tmp_path / "course"))
    assert done.returncode == 0, done.stderr
    assert "Wrote" in done.stdout and "cross_entropy_loss (function): 1 checks from the tutorial's calls" in done.stdout
    assert "failed: NameError: name 'atform' is not defined" in done.stdout
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(x):\n    return x")])
    nbformat.write(empty, str(tmp_path / "none.ipynb"))
    refused = run_cli("new", "week4", "--from", str(tmp_path / "none.ipynb"), "--dir", str(tmp_path / "course"))
    assert refused.returncode == 2 and "no exercise found" in refused.stderr
    (tmp_path / "broken.ipynb").write_text("{not json")
    broken = run_cli("new", "week5", "--from", str(tmp_path / "broken.ipynb"), "--dir", str(tmp_path / "course"))
    assert broken.returncode == 2 and "broken.ipynb: not a notebook that can be read" in broken.stderr


def test_an_instance_of_a_tutorial_class_passed_to_an_exercise_comes_from_the_helpers_module(tmp_path):
    cells = [
        nbformat.v4.new_markdown_cell("# Week 9: training loops"),
        nbformat.v4.new_code_cell("import torch\nfrom torch import nn\n\n\nclass TinyNet(nn.Module):\n"
                                  "    def __init__(self, n):\n        super().__init__()\n"
                                  "        self.lin = nn.Linear(n, 1)\n\n    def forward(self, x):\n"
                                  "        return self.lin(x)"),
        nbformat.v4.new_markdown_cell("## Exercise 1: one step of gradient descent\n\nOne step on the mean squared "
                                      "error of `net(x)` against `y`; return the loss before the step."),
        nbformat.v4.new_code_cell("def sgd_step(net, x, y, lr):\n    raise NotImplementedError('Student exercise')"),
        nbformat.v4.new_code_cell("# to_remove solution\ndef sgd_step(net, x, y, lr):\n"
                                  "    loss = ((net(x) - y) ** 2).mean()\n    net.zero_grad()\n    loss.backward()\n"
                                  "    with torch.no_grad():\n        for p in net.parameters():\n"
                                  "            p -= lr * p.grad\n    return loss.item()\n\n\ntorch.manual_seed(0)\n"
                                  "net = TinyNet(3)\nx = torch.randn(8, 3)\ny = torch.randn(8, 1)\n"
                                  "print(sgd_step(net, x, y, 0.1))"),
    ]  # fmt: skip
    tutorial = tmp_path / "week9.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(tutorial))
    made = generate("week9", tutorial, tmp_path / "course")
    assert "class TinyNet" in (made.folder / "helpers.py").read_text()
    assert "class TinyNet" not in (made.folder / "reference.py").read_text()
    check = (made.folder / "checks" / "test_sgd_step.py").read_text()
    assert 'theirs_1 = student.put(copy.deepcopy(ours_1), label="the TinyNet passed in")' in check
    report = validate(made.folder)
    assert report.ok and report.reference_score == 10, report.problems
    forgot = tmp_path / "forgot_the_step.py"  # the gradient computed, the weights never changed
    forgot.write_text("import torch\n\n\ndef sgd_step(net, x, y, lr):\n    loss = ((net(x) - y) ** 2).mean()\n"
                      "    loss.backward()\n    return loss.item()\n")  # fmt: skip
    [result] = grade_paths(made.folder, [forgot])
    assert result.score == 0
    message = next(t.message for t in result.exercise("sgd_step").tests if not t.passed)
    assert message.startswith("the TinyNet passed in, after the call[0] has the wrong values.")
