"""The grading policy's promise: every solution the course material gives gets full marks.

The seeds' solutions live in tests/fixtures/course_solutions/<assignment>.txt: a notebook's code cells, one per
`# %%` line (kept as text, so that neither ruff nor pytest takes the course's code for ours), graded as the notebook
a student would hand in. Correct variants written the way the course's repositories write them (other formulas,
float32 templates, `.T` on a 1-D tensor, `torch.pow(..., -1)`, nn.functional or modules) are in tests/mutants/ and
graded by tests/test_mutation.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from autograder.spec import load_assignment

from .conftest import grade_paths, write_notebook

FIXTURES = Path(__file__).parent / "fixtures" / "course_solutions"
SEEDS = Path(__file__).parents[2] / "shared" / "seeds"  # beside the clone in CI; the tests below do not need it
ASSIGNMENTS = ("mlp", "decoding", "spiking")
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]
# The direct formula's robustness gaps beyond the task: reported as advice, worth no points.
LIF_ADVICE = {
    "lif_large_inputs_stay_finite",
    "lif_gradients_finite_above_threshold",
    "lif_gradients_finite_far_below_threshold",
}


def absent_here(error: str) -> bool:
    """Whether a load error is an import of a package this environment lacks (e.g. IPython on a bare GPU image):
    the environment's gap, not the notebook's."""
    found = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", error)
    return found is not None and importlib.util.find_spec(found.group(1).split(".")[0]) is None


def code_cells(assignment: str) -> list[str]:
    """The fixture's cells: the text between `# %%` lines; the header above the first one is not a cell."""
    text = (FIXTURES / f"{assignment}.txt").read_text(encoding="utf-8")
    return [cell.strip("\n") for cell in re.split(r"^# %%.*$", text, flags=re.MULTILINE)[1:]]


@pytest.fixture(scope="module", params=DEVICES)
def graded(request, tmp_path_factory):
    """Each assignment's course solution, graded as a notebook on the device."""
    folder = tmp_path_factory.mktemp(f"course-{request.param}")
    return {
        assignment: grade_paths(
            assignment, [write_notebook(folder / f"{assignment}.ipynb", code_cells(assignment))], device=request.param
        )[0]
        for assignment in ASSIGNMENTS
    }


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_course_solution_gets_full_marks_without_errors(graded, assignment):
    result = graded[assignment]
    # e.g. the spiking solution imports torchvision, whose compiled operators must load; and nothing of the course's
    # own boilerplate reaches the student: what is absent here is a note for the instructor
    assert result.errors == ()
    assert [n for n in result.notes if "Error" in n and not absent_here(n)] == [], result.notes
    assert [e.id for e in result.exercises] == list(load_assignment(assignment).exercise_ids)
    for exercise in result.exercises:
        lost = [f"{t.name}: {t.message}" for t in exercise.tests if not t.passed and not t.advisory]
        assert (exercise.score, exercise.status) == (exercise.max_score, "passed"), lost


def test_the_course_lif_hears_where_it_is_fragile_at_no_cost(graded):
    lif = graded["spiking"].exercise("LIF")
    advice = {t.name: t for t in lif.tests if t.advisory}
    assert set(advice) == LIF_ADVICE
    for check in advice.values():
        assert not check.passed and check.score == check.max_score == 0 and check.message
    assert "overflows" in advice["lif_large_inputs_stay_finite"].message
    assert lif.score == lif.max_score == 50


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not beside this checkout")
def test_the_spiking_fixture_is_the_seeds_code_verbatim():
    seed = next(SEEDS.glob("002_*.txt")).read_text(encoding="utf-8")
    for cell in code_cells("spiking"):
        assert cell in seed, cell[:200]
