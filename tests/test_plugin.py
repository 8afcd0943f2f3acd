"""The pytest plugin as an instructor meets it: points add up, broken checks stop the tool, grader bugs stay
out of the student's message."""

import json
import sys
import textwrap

import pytest
import torch

from autograder import messages
from autograder.grader import GradingError, grade_chunk
from autograder.options import GradingOptions
from autograder.results import SubmissionResult
from autograder.spec import load_assignment
from autograder.submission import load_submissions

SPEC = """
name = "toy"
title = "Toy"
source = "tests"
reference = "reference_solutions/toy.py"

[[exercises]]
id = "double"
title = "Double a tensor"
symbols = { double = "function" }
points = 4
"""
CHECKS = """
import pytest
import torch
from autograder.checklib import expect_tensor

@pytest.mark.public
@pytest.mark.points(1)
def test_small(student, reference):
    x = torch.arange(3.0)
    expect_tensor(student.double(x), reference.double(x), what="double(x)")

@pytest.mark.points(2)
@pytest.mark.parametrize("n", [5, 50])
def test_sizes(student, reference, n):
    x = torch.randn(n)
    expect_tensor(student.double(x), reference.double(x), what="double(x)")

@pytest.mark.points(1)
def test_grader_bug(student):
    {}["oops"]
"""


@pytest.fixture
def toy(tmp_path):
    def make(checks=CHECKS, spec=SPEC):
        (tmp_path / "reference_solutions").mkdir(exist_ok=True)
        (tmp_path / "reference_solutions" / "toy.py").write_text("def double(x):\n    return 2 * x\n")
        folder = tmp_path / "assignments" / "toy"
        (folder / "checks").mkdir(parents=True, exist_ok=True)
        (folder / "assignment.toml").write_text(spec)
        (folder / "checks" / "test_double.py").write_text(textwrap.dedent(checks))
        (tmp_path / "sub.py").write_text("def double(x):\n    return x + x\n")
        return load_assignment(folder), load_submissions([tmp_path / "sub.py"])

    return make


def test_points_split_over_parametrized_cases_and_internal_errors_stay_hidden(toy):
    spec, subs = toy()
    [result] = grade_chunk(spec, subs, GradingOptions())
    tests = {t.name: t for t in result.exercise("double").tests}
    assert tests["sizes[5]"].score == tests["sizes[50]"].score == 1.0
    assert result.score == 3.0 and result.max_score == 4.0
    bug = tests["grader_bug"]
    assert bug.message == messages.INTERNAL_ERROR and bug.outcome == "error"
    assert "KeyError: 'oops'" in bug.detail and "KeyError" not in bug.message
    assert tests["small"].hidden is False and tests["sizes[5]"].hidden is True


def test_a_result_written_and_read_back_is_the_same_result(toy):
    spec, subs = toy()
    [result] = grade_chunk(spec, subs, GradingOptions())
    written = json.loads(json.dumps(result.to_dict(), indent=2))
    assert written["exercises"][0]["tests"][0].keys() >= {"name", "score", "message", "outcome", "detail"}
    assert written["walls"] == result.walls and written["walls"]["layer"] == result.isolation
    assert SubmissionResult.from_dict(written) == result
    assert result.to_dict()["walls"] is not result.walls  # a copy: whoever edits the dict leaves the result alone


def test_public_only_runs_public_checks(toy):
    spec, subs = toy()
    [result] = grade_chunk(spec, subs, GradingOptions(), public_only=True)
    assert [t.name for t in result.exercise("double").tests] == ["small"]


def test_points_that_do_not_add_up_stop_the_tool(toy):
    spec, subs = toy(spec=SPEC.replace("points = 4", "points = 5"))
    with pytest.raises(GradingError, match=r"test_double.py: the checks for 'double' add up to 4 points but"):
        grade_chunk(spec, subs, GradingOptions())


def test_a_check_without_points_stops_the_tool(toy):
    spec, subs = toy(checks=CHECKS.replace("@pytest.mark.points(1)\ndef test_grader_bug", "def test_grader_bug"))
    with pytest.raises(GradingError, match="every check needs @pytest.mark.points"):
        grade_chunk(spec, subs, GradingOptions())


def test_a_check_module_that_does_not_import_stops_the_tool(toy):
    spec, subs = toy(checks="import torch\ndef test_x(student:\n    pass\n")
    with pytest.raises(GradingError, match="The checks could not be collected"):
        grade_chunk(spec, subs, GradingOptions())


def test_two_assignments_with_the_same_check_names_do_not_share_checks(toy, tmp_path_factory):
    spec, subs = toy()
    [first] = grade_chunk(spec, subs, GradingOptions())
    other = tmp_path_factory.mktemp("other")
    (other / "reference_solutions").mkdir()
    (other / "reference_solutions" / "toy.py").write_text("def double(x):\n    return 3 * x\n")  # a stricter course
    folder = other / "assignments" / "toy"
    (folder / "checks").mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC.replace("points = 4", "points = 1"))
    (folder / "checks" / "test_double.py").write_text(
        "import pytest, torch\nfrom autograder.checklib import expect_tensor\n"
        "@pytest.mark.points(1)\ndef test_triple(student, reference):\n"
        "    x = torch.ones(2)\n    expect_tensor(student.double(x), reference.double(x), what='double(x)')\n"
    )
    [second] = grade_chunk(load_assignment(folder), subs, GradingOptions())
    assert first.score == 3.0
    assert [t.name for t in second.exercise("double").tests] == ["triple"]
    assert second.score == 0.0


def test_a_later_chunk_reuses_the_imported_checks_unless_they_were_edited(toy):
    spec, subs = toy()
    [first] = grade_chunk(spec, subs, GradingOptions())
    module = sys.modules["checks.test_double"]
    [again] = grade_chunk(spec, subs, GradingOptions())
    assert sys.modules["checks.test_double"] is module  # not parsed, rewritten and compiled once more
    assert again.score == first.score == 3.0
    checks = spec.checks_dir / "test_double.py"
    checks.write_text(checks.read_text().replace("def test_sizes(", "def test_sizez("))  # same size, same second
    [edited] = grade_chunk(spec, subs, GradingOptions())
    assert sys.modules["checks.test_double"] is not module
    assert "sizez[5]" in [t.name for t in edited.exercise("double").tests]


THREAD_CHECKS = """
import pytest
import torch

@pytest.mark.points(4)
def test_threads(student):
    assert torch.get_num_threads() == 1, f"checks ran with {torch.get_num_threads()} torch threads"
"""


def test_checks_compute_with_one_torch_thread_and_the_callers_setting_comes_back(toy):
    # Idle OpenMP threads of a scoring process spin on cores its workers and the other scoring processes need.
    spec, subs = toy(checks=THREAD_CHECKS)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        [result] = grade_chunk(spec, subs, GradingOptions())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert result.score == 4.0, result.exercise("double").tests


ADVISORY_CHECKS = """
import pytest
import torch
from autograder.checklib import expect, expect_tensor

@pytest.mark.public
@pytest.mark.points(4)
def test_values(student, reference):
    x = torch.arange(3.0)
    expect_tensor(student.double(x), reference.double(x), what="double(x)")

@pytest.mark.public
@pytest.mark.advisory
def test_keeps_integers(student):
    got = student.double(torch.arange(3))
    expect(got.dtype == torch.int64, "double(x) turned integers into floats.", hint="multiply by 2, not 2.0.")
"""


def test_advisory_checks_report_but_never_cost_points(toy, tmp_path):
    spec, _ = toy(checks=ADVISORY_CHECKS)
    (tmp_path / "floaty.py").write_text("def double(x):\n    return x * 2.0\n")
    [result] = grade_chunk(spec, load_submissions([tmp_path / "floaty.py"]), GradingOptions())
    exercise = result.exercise("double")
    advice = {t.name: t for t in exercise.tests}["keeps_integers"]
    assert (result.score, result.max_score, exercise.status) == (4.0, 4.0, "passed")
    assert advice.advisory and not advice.passed and advice.max_score == 0.0
    assert advice.message.startswith(messages.ADVICE_PREFIX + " double(x) turned integers into floats.")
    assert result.to_dict()["exercises"][0]["tests"][1]["advisory"] is True

    from autograder.pages import feedback_markdown
    from autograder.student.runtime import check_lines
    from autograder.terminal import feedback_lines

    assert "advice, costs no points" in feedback_markdown(result)
    assert any(line.startswith("  [TIP ] double: keeps_integers") for line in check_lines(result))
    assert "1 of 1 public checks passed" in check_lines(result)[-1]
    assert feedback_lines([result]) == []  # full marks: nothing lost to report


def test_an_advisory_check_with_points_stops_the_tool(toy):
    with_points = ADVISORY_CHECKS.replace("@pytest.mark.advisory", "@pytest.mark.advisory\n@pytest.mark.points(1)")
    spec, subs = toy(checks=with_points)
    with pytest.raises(GradingError, match="an advisory check is worth no points"):
        grade_chunk(spec, subs, GradingOptions())


def test_code_that_mixes_devices_on_a_gpu_is_judged_on_the_cpu():
    # Needs no GPU: torch.device("cuda") is only a name here, and the comparison is a stand-in.
    import torch

    from autograder.checklib import on_any_device
    from autograder.runner.proxy import StudentError

    def compare(device):
        if device.type == "cuda":
            message = "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
            raise StudentError("LIFNet()(x)", {"type": "RuntimeError", "message": message})
        return f"judged on {device}"

    assert on_any_device(torch.device("cuda"), compare) == "judged on cpu"

    def wrong(device):
        raise StudentError("f(x)", {"type": "ValueError", "message": "a real mistake"})

    with pytest.raises(StudentError, match="a real mistake"):
        on_any_device(torch.device("cuda"), wrong)
    with pytest.raises(StudentError):
        on_any_device(torch.device("cpu"), wrong)
