"""The mutation suite: realistic wrong implementations lose points on their exercise and only there, with a
message a student can act on; correct implementations written differently get every point."""

from collections import Counter

import pytest

from autograder.spec import load_assignment

from .conftest import grade_paths
from .mutants import decoding, mlp, spiking

SUITES = {"mlp": mlp, "decoding": decoding, "spiking": spiking}
CASES = [(a, kind, ex, name) for a, m in SUITES.items() for kind in ("mutant", "variant")
         for ex, name, _ in (m.MUTANTS if kind == "mutant" else m.VARIANTS)]  # fmt: skip


def source(module, exercise, code):
    parts = [module.HEADER] + [code if ex == exercise else base for ex, base in module.BASE.items()]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every mutant and variant of every assignment, graded in one batch per assignment."""
    results = {}
    for assignment, module in SUITES.items():
        folder = tmp_path_factory.mktemp(assignment)
        paths = []
        for kind, cases in (("mutant", module.MUTANTS), ("variant", module.VARIANTS)):
            for exercise, name, code in cases:
                path = folder / f"{kind}__{exercise}__{name}.py"
                path.write_text(source(module, exercise, code))
                paths.append(path)
        for result in grade_paths(assignment, paths):
            kind, exercise, name = result.submission.removesuffix(".py").split("__")
            results[(assignment, kind, exercise, name)] = result
    return results


def test_every_exercise_has_six_mutants_and_three_variants():
    for assignment, module in SUITES.items():
        ids = load_assignment(assignment).exercise_ids
        assert set(module.BASE) == set(ids)
        mutants = Counter(ex for ex, _, _ in module.MUTANTS)
        variants = Counter(ex for ex, _, _ in module.VARIANTS)
        assert all(mutants[i] >= 6 for i in ids), mutants
        assert all(variants[i] >= 3 for i in ids), variants


@pytest.mark.parametrize("assignment, kind, exercise, name", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES])
def test_verdict(graded, assignment, kind, exercise, name):
    result = graded[(assignment, kind, exercise, name)]
    assert result.errors == ()
    for other in result.exercises:
        if other.id != exercise or kind == "variant":
            failures = [f"{t.name}: {t.message}" for t in other.tests if not t.passed]
            assert other.score == other.max_score, failures
    if kind == "mutant":
        target = result.exercise(exercise)
        assert target.score < target.max_score, f"{name} was not caught"
        for test in target.tests:
            if not test.passed:
                assert test.message, test.name
                assert "Traceback" not in test.message and "autograder/" not in test.message
                assert test.outcome != "error" or "stopped" in test.message, test.message
