"""`autograder validate --mutants`: realistic wrong versions of the reference, graded; caught, survivors (a
mistake the checks let through) and equivalent mutants (the same answers on every call the checks made)."""

from __future__ import annotations

import pytest

from autograder.authoring import new_assignment
from autograder.mutants import make_mutants, mutation_scores
from autograder.spec import load_assignment

from .conftest import run_cli

SHAPE_ONLY = '''"""softmax(x): only the shape is checked (a weak check, on purpose)."""

import pytest
import torch

from autograder.checklib import expect


@pytest.mark.public
@pytest.mark.points(10)
def test_shape(student, reference, gen):
    x = torch.randn(8, 5, generator=gen)
    got, expected = student.softmax(x), reference.softmax(x)
    expect(tuple(got.shape) == tuple(expected.shape), "softmax(x) has the wrong shape.")
'''


@pytest.fixture
def week3(tmp_path):
    return new_assignment("week3", tmp_path)


def test_mutants_are_one_realistic_change_each(week3):
    [mutants] = make_mutants(load_assignment(week3)).values()
    diffs = [m.diff for m in mutants]
    assert "line 10: e / e.sum(dim=-1, keepdim=True) -> e * e.sum(dim=-1, keepdim=True) (operator swapped)" in diffs
    assert "line 8: x.amax(dim=-1, keepdim=True) -> x.amin(dim=-1, keepdim=True) (reduction swapped)" in diffs
    assert "line 8: x - x.amax(dim=-1, keepdim=True) -> x (term dropped)" in diffs
    reference = load_assignment(week3).reference_path.read_text()
    for mutant in mutants:
        assert mutant.source != reference and mutant.exercise == "softmax"
        compile(mutant.source, "mutant", "exec")


def test_the_templates_checks_catch_every_mutant_that_changes_an_answer(week3):
    [score] = mutation_scores(week3)
    assert score.survived == [] and len(score.caught) >= 5 and score.score == 1.0
    # softmax is the same whatever is subtracted: amax or amin, both along dim=-1 or dim=1 of a 2-D input
    assert {m.operator for m in score.equivalent} <= {"reduction swapped", "sign flipped"}


def test_a_weak_check_lets_mutants_through_and_says_which(week3):
    (week3 / "checks" / "test_softmax.py").write_text(SHAPE_ONLY)
    [score] = mutation_scores(week3)
    survivors = [m.diff for m in score.survived]
    assert "line 10: e / e.sum(dim=-1, keepdim=True) -> e * e.sum(dim=-1, keepdim=True) (operator swapped)" in survivors
    assert score.score < 0.5
    done = run_cli("validate", str(week3), "--mutants", "--min-score", "0.8")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "survived: line 10: e / e.sum(dim=-1, keepdim=True) -> e * e.sum(dim=-1, keepdim=True)" in done.stdout
    assert "Below --min-score 0.8: add checks for the survivors above." in done.stdout


def test_the_command_line_reports_a_strong_assignment(week3):
    done = run_cli("validate", str(week3), "--mutants", "--min-score", "0.9")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  softmax: " in done.stdout and "caught (100%)" in done.stdout
    assert "Mutation score: " in done.stdout
