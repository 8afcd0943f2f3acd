"""Assignments are self-contained folders: `new` scaffolds one, `validate` proves one, every command takes a folder,
and the engine names no exercise."""

import re
import shutil
import textwrap

import pytest

from autograder import messages
from autograder.authoring import new_assignment, template_source, validate
from autograder.grader import grade
from autograder.options import GradingOptions
from autograder.paths import PROJECT_ROOT
from autograder.spec import load_assignment

from .conftest import run_cli, write_notebook

EXERCISE_NAMES = [
    "approximate_function", "Net", "cross_entropy_loss", "shuffle_and_split", "shuffle_and_split_data",
    "DeepNetReLU", "train", "regularized_loss", "lif", "LIF", "LIFNet",
]  # fmt: skip


def test_the_engine_names_no_exercise():
    found = []
    for path in sorted((PROJECT_ROOT / "autograder").rglob("*")):
        if path.suffix not in (".py", ".sh", ".ini", ".toml", ".txt") and path.name not in ("run_autograder",):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for name in EXERCISE_NAMES:
                if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", line):
                    found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {name}: {line.strip()}")
    assert not found, "\n".join(found)


def test_new_writes_an_assignment_that_validates_and_grades(tmp_path):
    folder = new_assignment("week3", tmp_path)
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "assignment.toml",
        "reference.py",
        "checks/test_softmax.py",
    }
    report = validate(folder)
    assert report.ok, report.problems
    assert (report.reference_score, report.template_score) == (10.0, 0.0)
    right = "import torch\ndef softmax(x):\n    e = (x - x.max(-1, keepdim=True).values).exp()\n    return e / e.sum(-1, True)"  # noqa: E501
    overflowing = "import torch\ndef softmax(x):\n    return x.exp() / x.exp().sum(dim=-1, keepdim=True)"
    write_notebook(tmp_path / "subs" / "right.ipynb", [right])
    write_notebook(tmp_path / "subs" / "overflowing.ipynb", [overflowing])
    batch = grade(folder, [tmp_path / "subs"], out_dir=tmp_path / "out", options=GradingOptions(), jobs=1)
    scores = {r.submission: r for r in batch.results}
    assert scores["right.ipynb"].score == 10
    overflow = scores["overflowing.ipynb"]
    assert overflow.score == 7
    message = next(t.message for t in overflow.exercise("softmax").tests if not t.passed)
    assert message.startswith("softmax(x) overflows for large inputs.")


def test_new_refuses_a_bad_name_or_an_existing_folder(tmp_path):
    with pytest.raises(ValueError, match="Python identifier"):
        new_assignment("week-3", tmp_path)
    new_assignment("week3", tmp_path)
    with pytest.raises(ValueError, match="already exists"):
        new_assignment("week3", tmp_path)


def test_validate_lists_every_problem(tmp_path):
    folder = new_assignment("week3", tmp_path)
    # a reference that breaks its own rule (a forbidden call), a check any template passes, no public check left
    (folder / "reference.py").write_text("import torch\ndef softmax(x):\n    return torch.softmax(x, dim=-1)\n")
    checks = folder / "checks" / "test_softmax.py"
    checks.write_text(
        checks.read_text().replace("@pytest.mark.public\n", "")
        + "\n\n@pytest.mark.points(0.5)\ndef test_free_points(student):\n    pass\n"
    )
    toml = folder / "assignment.toml"
    toml.write_text(toml.read_text().replace("points = 10", "points = 10.5"))
    report = validate(folder)
    text = "\n".join(report.problems)
    assert "softmax: the reference scores" in text and "it must get full marks" in text
    assert "softmax: a template whose bodies only raise NotImplementedError scores 0.5" in text
    assert "free_points" in text
    assert messages.VALIDATE_NO_PUBLIC.format(exercise="softmax") in text
    proc = run_cli("validate", str(folder))
    assert proc.returncode == 1 and "3 problem(s)" in proc.stdout, proc.stdout + proc.stderr


def test_validate_reports_points_that_do_not_add_up(tmp_path):
    folder = new_assignment("week3", tmp_path)
    toml = folder / "assignment.toml"
    toml.write_text(toml.read_text().replace("points = 10", "points = 12"))
    report = validate(folder)
    assert len(report.problems) == 1 and "add up to 10 points but assignment.toml gives 12" in report.problems[0]


def test_the_template_keeps_signatures_and_docstrings():
    spec = load_assignment("spiking")
    source = template_source(spec)
    assert "def forward(self, x):" in source and "raise NotImplementedError('Student exercise')" in source
    assert "softplus" not in source.split("def lif")[1].split("class")[0]


HELPERS = """
import torch


class Doubler(torch.nn.Module):
    def forward(self, x):
        return 2 * x


def twice(fn, x):
    return fn(fn(x))
"""
HELPER_CHECKS = """
import pytest
import torch
from autograder.checklib import expect_tensor


@pytest.mark.public
@pytest.mark.points(2)
def test_applies_a_module(student, helpers):
    model = student.put(helpers.Doubler(), label="a Doubler")
    x = torch.arange(3.0)
    expect_tensor(student.apply(model, x), 2 * x, what="apply(model, x)")


@pytest.mark.points(2)
def test_runs_inside_a_helper(student, helpers):
    twice = student.put(helpers.twice, label="twice")
    x = torch.arange(3.0)
    expect_tensor(twice(student.apply_relu, x), torch.relu(x), what="apply_relu(apply_relu(x))")
"""


def test_helpers_reach_workers_but_student_code_cannot_import_them(tmp_path):
    folder = tmp_path / "course" / "week4"
    (folder / "checks").mkdir(parents=True)
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "checks" / "test_apply.py").write_text(textwrap.dedent(HELPER_CHECKS))
    (folder / "reference.py").write_text(
        "import torch\ndef apply(model, x):\n    return model(x)\ndef apply_relu(x):\n    return torch.relu(x)\n"
    )
    (folder / "assignment.toml").write_text(
        'name = "week4"\ntitle = "Apply"\nsource = "tests"\nreference = "reference.py"\nhelpers = "helpers.py"\n'
        '[[exercises]]\nid = "apply"\ntitle = "Apply"\nsymbols = { apply = "function", apply_relu = "function" }\n'
        "points = 4\nstatement = 'Apply a model.'\n"
    )
    assert validate(folder).ok
    snoop = (
        "import importlib, torch\ndef apply(model, x):\n    importlib.import_module('autograder_helpers_week4')\n"
        "def apply_relu(x):\n    return torch.relu(x)\n"
    )
    (tmp_path / "snoop.py").write_text(snoop)
    [result] = grade(folder, [tmp_path / "snoop.py"], out_dir=None, options=GradingOptions()).results
    tests = {t.name: t for t in result.exercise("apply").tests}
    assert "No module named 'autograder_helpers_week4'" in tests["applies_a_module"].message
    assert tests["runs_inside_a_helper"].passed


def test_statements_come_from_the_toml_or_a_markdown_file(tmp_path):
    folder = new_assignment("week3", tmp_path)
    assert load_assignment(folder).exercise("softmax").statement.startswith("`softmax(x)` returns")
    toml = folder / "assignment.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index('statement = """')])
    (folder / "statements").mkdir()
    (folder / "statements" / "softmax.md").write_text("Write softmax.\n")
    assert load_assignment(folder).exercise("softmax").statement == "Write softmax."


def test_a_builtin_name_is_not_shadowed_by_a_folder_in_the_current_directory(tmp_path, monkeypatch):
    fake = tmp_path / "mlp"
    new_assignment("mlp", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert load_assignment("mlp").folder != fake.resolve()
    assert load_assignment("./mlp").folder == fake.resolve()


@pytest.mark.slow
def test_the_readme_steps_from_new_to_otter_zips_outside_the_repo(tmp_path):
    """`Write your own assignment` in the README, followed in a course repository outside this one."""
    course = tmp_path / "course"
    course.mkdir()
    assert run_cli("new", "week3", "--dir", str(course)).returncode == 0
    folder = course / "week3"
    proc = run_cli("validate", str(folder))
    assert proc.returncode == 0 and "valid" in proc.stdout, proc.stdout + proc.stderr
    subs = tmp_path / "submissions"
    write_notebook(subs / "alice.ipynb", ["import torch\ndef softmax(x):\n    return torch.softmax(x, -1)"])
    write_notebook(subs / "bob.ipynb", [(folder / "reference.py").read_text()])
    proc = run_cli("grade", str(folder), str(subs), "--out", str(tmp_path / "results"), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    grades = (tmp_path / "results" / "grades.csv").read_text().splitlines()
    assert grades[0] == "submission,softmax,total,max_total"
    assert sorted(grades[1:]) == ["alice.ipynb,7,7,10", "bob.ipynb,10,10,10"]
    proc = run_cli("report", str(tmp_path / "results"), "--assignment", str(folder), "--out", str(tmp_path / "r.html"))
    assert proc.returncode == 0 and "week3: Softmax by hand" in (tmp_path / "r.html").read_text(), proc.stderr
    proc = run_cli("build", str(folder), "--out", str(tmp_path / "dist"), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    student = tmp_path / "dist" / "week3" / "student" / "week3.ipynb"
    assert student.is_file() and "subtract each row's maximum" in student.read_text()
    assert "shifted = x - x.amax" not in student.read_text()  # no solution in the student's notebook
    [zipped] = (tmp_path / "dist" / "week3" / "autograder").glob("*.zip")
    import zipfile

    with zipfile.ZipFile(zipped) as outer:
        wheel_name = next(n for n in outer.namelist() if n.endswith(".whl"))
        (tmp_path / "w.whl").write_bytes(outer.read(wheel_name))
    with zipfile.ZipFile(tmp_path / "w.whl") as wheel:
        inside = wheel.namelist()
    assert "autograder/_data/assignments/week3/checks/test_softmax.py" in inside
    shutil.rmtree(tmp_path / "dist")
