"""The command line's surface, in this process (no student code runs): options, errors, results folders, the
table and feedback a batch prints, file modes. The end-to-end runs of the real command are in test_cli.py."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from autograder import messages, terminal
from autograder.cli import build_parser, main, parse_args, print_batch
from autograder.grader import Batch, GradingError, grade
from autograder.options import GradingOptions
from autograder.paths import PROJECT_ROOT, builtin_names
from autograder.results import SubmissionResult, atomic_write, current_umask, error_result, write_json
from autograder.spec import AssignmentSpec, SpecError, load_assignment
from autograder.submission import Submission

from .conftest import EXAMPLES, write_notebook


# -- options and commands (point 9) ---------------------------------------------------------------------------------
def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version_is_the_package_s(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    version = re.search(r'^version = "(.+)"$', (PROJECT_ROOT / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]
    assert capsys.readouterr().out.strip() == f"autograder {version}"


def test_every_argument_of_every_command_has_help():
    lacking = [
        f"{name} {action.dest}"
        for name, sub in subcommands().items()
        for action in sub._actions
        # a positional with choices shows them in the usage line: they are its help
        if not action.help and not (not action.option_strings and action.choices)
    ]
    assert lacking == []


@pytest.mark.parametrize(
    "command, short, long",
    [("grade", "-o", "--out"), ("grade", "-j", "--jobs"), ("grade", "-q", "--quiet"), ("grade", "-a", "--assignment"),
     ("demo", "-o", "--out"), ("demo", "-j", "--jobs"), ("check", "-a", "--assignment"), ("report", "-o", "--out"),
     ("export", "-o", "--out"), ("feedback", "-o", "--out"), ("build", "-o", "--out"), ("similarity", "-o", "--out"),
     ("gradescope-zip", "-o", "--out"), ("intake", "-o", "--out")],
)  # fmt: skip
def test_short_options_are_the_conventional_ones(command, short, long):
    [action] = [a for a in subcommands()[command]._actions if long in a.option_strings]
    assert short in action.option_strings


def documented_commands() -> Iterator[list[str]]:
    """Every `autograder ...` command line in the README's code blocks, continuation lines joined."""
    text = (PROJECT_ROOT / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("autograder") and len(words) > 1:
                yield words[1:]


def test_every_command_the_readme_documents_still_parses():
    found = list(documented_commands())
    assert len(found) > 15  # the README's examples were found
    for words in found:
        args = parse_args(words)  # SystemExit here is a documented command that no longer works
        assert callable(args.handler), words


@pytest.mark.parametrize(
    "words, assignment, paths",
    [(["grade", "mlp", "a.ipynb", "subs/"], "mlp", ["a.ipynb", "subs"]),
     (["grade", "-a", "mlp", "a.ipynb", "subs/"], "mlp", ["a.ipynb", "subs"]),
     (["grade", "subs/", "--assignment", "assignments/week3"], "assignments/week3", ["subs"]),
     (["similarity", "-a", "mlp", "subs/", "-o", "s.html"], "mlp", ["subs"])],
)  # fmt: skip
def test_grade_takes_the_assignment_first_or_as_an_option(words, assignment, paths):
    args = parse_args(words)
    assert args.assignment == assignment and args.paths == [Path(p) for p in paths]


@pytest.mark.parametrize(
    "words, assignment",
    [(["check", "my.ipynb"], None), (["check", "my.ipynb", "--assignment", "mlp"], "mlp"),
     (["check", "mlp", "my.ipynb"], "mlp"), (["check", "-a", "mlp", "my.ipynb"], "mlp")],
)  # fmt: skip
def test_check_takes_the_assignment_as_grade_does(words, assignment):
    args = parse_args(words)
    assert args.assignment == assignment and args.notebook == Path("my.ipynb")


@pytest.mark.parametrize("old, new", [("gradescope", "gradescope-run")])
def test_the_old_gradescope_runner_name_is_kept_beside_the_new(old, new):
    for name in (old, new):
        args = parse_args([name, "mlp", "--submission-dir", "s", "--results-file", "r.json"])
        assert args.assignment == "mlp" and args.handler.__qualname__ == parse_args([new, "mlp"]).handler.__qualname__
    assert parse_args(["gradescope-zip", "mlp", "--out", "z.zip"]).assignment == "mlp"


@pytest.mark.parametrize(
    "words, problem",
    [(["grade", "mlp"], "needs the assignment, then at least one PATH"),
     (["check", "mlp", "a.ipynb", "b.ipynb"], "check takes one NOTEBOOK"),
     (["check", "mlp", "a.ipynb", "-a", "spiking"], "the assignment is given twice"),
     (["validate"], "the assignment is missing")],
)  # fmt: skip
def test_a_command_line_that_does_not_say_what_to_do_is_a_usage_error(capsys, words, problem):
    with pytest.raises(SystemExit) as exit:
        main(words)
    assert exit.value.code == 2 and problem in capsys.readouterr().err


# -- point 5: --jobs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["grade", "mlp", "subs/"], ["demo"]])
@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_jobs_must_be_at_least_one(capsys, command, jobs):
    with pytest.raises(SystemExit) as exit:
        main([*command, "--jobs", jobs])
    assert exit.value.code == 2
    assert messages.NOT_POSITIVE.format(value=jobs) in capsys.readouterr().err


# -- points 1, 4 and 6: what a mistyped name or path gets -----------------------------------------------------------
def test_a_path_that_does_not_exist_is_a_tool_error_and_nothing_is_written(capsys, tmp_path):
    out = tmp_path / "r"
    assert main(["grade", "mlp", str(EXAMPLES / "mlp" / "correct.ipynb"), "no/such/path", "--out", str(out)]) == 2
    assert messages.NO_SUCH_INPUT.format(paths="no/such/path") in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("command", [["grade", "{a}", "subs/"], ["build", "{a}", "-o", "dist"], ["validate", "{a}"]])
def test_a_mistyped_assignment_lists_the_built_ins_and_the_closest(capsys, command):
    assert main([word.format(a="mpl") for word in command]) == 2
    error = capsys.readouterr().err
    assert "unknown assignment 'mpl'" in error and messages.DID_YOU_MEAN.format(guess="mlp") in error
    assert ", ".join(builtin_names()) in error
    assert "assignments/mpl/assignment.toml" not in error  # not a file to create inside the package


def test_a_folder_without_assignment_toml_is_named_as_such(tmp_path):
    with pytest.raises(SpecError, match="no assignment.toml at"):
        load_assignment(str(tmp_path))


@pytest.mark.parametrize(
    "name, content, expected",
    [("nosuch.ipynb", None, messages.NO_SUCH_FILE.format(path="{path}")),
     ("notes.txt", "my answers", messages.CHECK_SUFFIX.format(path="{path}")),
     ("folder", "", messages.CHECK_FOLDER.format(path="{path}")),
     ("broken.ipynb", '{"cells": [', "broken.ipynb could not be read as a Jupyter notebook"),
     ("other_course.ipynb", "def softmax(x):\n    return x", "defines none of the functions or classes")],
)  # fmt: skip
def test_check_says_once_why_it_cannot_check_a_file(capsys, tmp_path, name, content, expected):
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif name == "other_course.ipynb":
        write_notebook(path, [content])
    elif content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no guessed assignment, no checks run
    assert captured.err.count(expected.format(path=path)) == 1, captured.err


def test_check_with_an_unknown_assignment_lists_the_real_ones(capsys):
    assert main(["check", str(EXAMPLES / "mlp" / "correct.ipynb"), "--assignment", "spiky"]) == 2
    assert "did you mean 'spiking'" in capsys.readouterr().err


# -- point 3: one assignment per results folder, nothing graded lost ------------------------------------------------
class CannedExecutor:
    """Gives each submission the score its name says (`ana-30.ipynb`: 30) without running it: what these tests
    check is the results folder, not grading."""

    def run(self, spec: AssignmentSpec, chunks: Sequence[list[Submission]], options, on_result):
        for chunk in chunks:
            for sub in chunk:
                on_result(canned(spec, sub))


def canned(spec: AssignmentSpec, sub: Submission) -> SubmissionResult:
    score = float(Path(sub.name).stem.split("-")[-1])
    return dataclasses.replace(error_result(spec, sub.name, sub.path, "canned", "cpu"), score=score, errors=())


def submissions(folder: Path, *names: str) -> Path:
    for name in names:
        write_notebook(folder / name, ["x = 1"])
    return folder


def grade_canned(assignment: str, folder: Path, out: Path, **kwargs) -> Batch:
    return grade(assignment, [folder], out_dir=out, options=GradingOptions(), executor=CannedExecutor(), **kwargs)


def csv_rows(out: Path) -> list[str]:
    return (out / "grades.csv").read_text().splitlines()[1:]


def test_a_second_batch_into_the_same_folder_keeps_the_first_in_grades_csv(tmp_path):
    out = tmp_path / "results"
    grade_canned("mlp", submissions(tmp_path / "first", "ben-20.ipynb", "ana-30.ipynb"), out)
    second = grade_canned("mlp", submissions(tmp_path / "late", "cleo-10.ipynb"), out)
    assert [r.submission for r in second.untouched] == ["ana-30.ipynb", "ben-20.ipynb"]
    assert [row.split(",")[0] for row in csv_rows(out)] == ["ana-30.ipynb", "ben-20.ipynb", "cleo-10.ipynb"]
    assert [row.split(",")[-2] for row in csv_rows(out)] == ["30", "20", "10"]
    assert sorted(p.name for p in out.glob("*.json")) == ["ana-30.json", "ben-20.json", "cleo-10.json"]


def test_grading_a_submission_again_replaces_its_row_and_says_so_when_it_came_from_elsewhere(tmp_path):
    out = tmp_path / "results"
    grade_canned("mlp", submissions(tmp_path / "first", "ana-30.ipynb", "ben-20.ipynb"), out)
    again = grade_canned("mlp", submissions(tmp_path / "first"), out)  # the same files: a plain regrade
    assert again.overwritten == [] and len(csv_rows(out)) == 2
    moved = grade_canned("mlp", submissions(tmp_path / "section2", "ana-30.ipynb"), out)
    assert moved.overwritten == ["ana-30.ipynb"] and len(csv_rows(out)) == 2


def test_a_file_of_another_kind_with_the_same_stem_replaces_the_row_it_wrote_over(tmp_path):
    out = tmp_path / "results"
    grade_canned("mlp", submissions(tmp_path / "first", "ana-30.ipynb"), out)
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "ana-30.py").write_text("x = 1\n")  # its result is ana-30.json too
    moved = grade_canned("mlp", tmp_path / "py", out)
    assert moved.overwritten == ["ana-30.py"] and moved.untouched == []
    assert [row.split(",")[0] for row in csv_rows(out)] == ["ana-30.py"]  # no row for a result no longer on disk


def test_another_assignment_into_the_same_folder_is_refused_and_nothing_changes(tmp_path):
    out = tmp_path / "results"
    grade_canned("mlp", submissions(tmp_path / "mlp", "ana-30.ipynb"), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(GradingError) as refused:
        grade_canned("decoding", submissions(tmp_path / "dec", "ana-40.ipynb"), out)
    assert str(refused.value) == messages.OUT_HOLDS_OTHER.format(
        out=out, other="mlp", example="ana-30.json", assignment="decoding"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def mixed_folder(folder: Path) -> Path:
    """A folder as today's main could leave it: mlp and decoding results side by side."""
    for name in ("mlp", "decoding"):
        write_json(folder, f"{name}_student", error_result(load_assignment(name), f"{name}.ipynb", "", "e", "cpu"))
    return folder


@pytest.mark.parametrize(
    "command", [["report", "{r}", "-o", "{o}/r.html"], ["feedback", "{r}", "-o", "{o}/fb"],
                ["export", "canvas", "{r}", "-o", "{o}/c.csv"], ["grade", "mlp", "{s}", "-o", "{r}"]],
)  # fmt: skip
def test_no_command_reads_or_writes_a_folder_that_mixes_assignments(capsys, tmp_path, command):
    results = mixed_folder(tmp_path / "results")
    subs = submissions(tmp_path / "subs", "ana-1.ipynb")
    words = [w.format(r=results, o=tmp_path, s=subs) for w in command]
    assert main(words) == 2
    error = capsys.readouterr().err
    assert f"{results} holds results of more than one assignment: 'decoding' (decoding_student.json)" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "subs"]  # nothing written


# -- points 2 and 8: what a batch prints ----------------------------------------------------------------------------
@pytest.fixture
def plain_console(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    return terminal.make_console()


def batch_of(*results: SubmissionResult) -> Batch:
    return Batch(load_assignment("mlp"), results=list(results))


def lost(result: SubmissionResult, exercise: str, score: float, status: str, message: str) -> SubmissionResult:
    """`result` with one exercise that lost points for `message`."""
    check = dataclasses.replace(result.exercise(exercise).tests[0], passed=False, outcome=status, message=message)
    changed = dataclasses.replace(result.exercise(exercise), score=score, status=status, tests=(check,))
    exercises = tuple(changed if e.id == exercise else e for e in result.exercises)
    return dataclasses.replace(result, exercises=exercises, score=sum(e.score for e in exercises))


@pytest.fixture(scope="module")
def full_marks() -> SubmissionResult:
    spec = load_assignment("mlp")
    result = error_result(spec, "x.ipynb", "", "", "cpu")
    exercises = tuple(
        dataclasses.replace(
            e, score=e.max_score, status="passed", tests=(dataclasses.replace(e.tests[0], passed=True),)
        )
        for e in result.exercises
    )
    return dataclasses.replace(result, errors=(), exercises=exercises, score=spec.max_score)


def test_plain_output_is_one_line_per_row_in_name_order_with_statuses_in_words(capsys, plain_console, full_marks):
    summed = "cross_entropy_loss(x, labels) for the tutorial's example is wrong.\nHint: averaged, not summed."
    zed = dataclasses.replace(full_marks, submission="zed_with_a_rather_long_file_name_from_the_lms.ipynb")
    amy = lost(dataclasses.replace(full_marks, submission="amy.ipynb"), "cross_entropy_loss", 4, "partial", summed)
    print_batch(plain_console, batch_of(zed, amy), quiet=False)
    out = capsys.readouterr().out
    assert "\x1b[" not in out and all(line == line.rstrip() for line in out.splitlines())
    assert out.splitlines()[0] == f"mlp: {load_assignment('mlp').title}"  # the title on one line too
    rows = [line for line in out.splitlines() if re.match(r"\| \S+\.ipynb +\|", line)]
    assert [row.split()[1] for row in rows] == ["amy.ipynb", zed.submission]  # as grades.csv orders them
    assert re.search(r"\| +10 \| +10 \| +4 partial \| +10 \| +34 \|$", rows[0])  # the whole row, unwrapped
    assert messages.LEGEND_PLAIN in out
    assert "amy.ipynb / cross_entropy_loss (partial): cross_entropy_loss(x, labels) for the tutorial's" in out


def test_quiet_prints_the_table_only(capsys, plain_console, full_marks):
    wrong = lost(full_marks, "Net", 0, "failed", "Net's output has the wrong shape.")
    print_batch(plain_console, batch_of(wrong), quiet=True)
    out = capsys.readouterr().out
    assert "0 failed" in out and messages.LOST_POINTS not in out and "wrong shape" not in out


def test_an_empty_notebook_is_one_line_naming_every_missing_symbol(full_marks):
    empty = full_marks
    for exercise in load_assignment("mlp").exercises:
        empty = lost(empty, exercise.id, 0, "missing", messages.missing_symbols(list(exercise.symbol_names)))
    empty = dataclasses.replace(empty, submission="empty.ipynb")
    assert terminal.feedback_lines([empty]) == [
        "empty.ipynb (missing): 'approximate_function', 'Net', 'cross_entropy_loss', 'shuffle_and_split_data' "
        "are not defined in your notebook."
    ]


def test_a_terminal_keeps_colour_and_its_own_width(monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("NO_COLOR", raising=False)
    console = terminal.make_console()
    assert console.width == 100


# -- point 7: files are readable as a plain open() would make them --------------------------------------------------
@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_honours_the_umask(tmp_path, umask):
    assert mode(atomic_write(tmp_path / "grades.csv", "x\n")) == 0o640
    os.umask(0o022)
    assert mode(atomic_write(tmp_path / "report.html", "x\n")) == 0o644
    assert current_umask() == 0o022  # read, not changed


def test_atomic_write_keeps_an_existing_file_s_mode_and_leaves_no_temporary_file(tmp_path, umask):
    private = tmp_path / "identities.json"
    private.write_text("[]")
    private.chmod(0o600)
    atomic_write(private, json.dumps([{"key": "ana"}]))
    assert mode(private) == 0o600 and json.loads(private.read_text()) == [{"key": "ana"}]
    assert [p.name for p in tmp_path.iterdir()] == ["identities.json"]


def test_results_grades_csv_pages_and_report_are_readable_by_the_group(tmp_path, umask, capsys):
    out = tmp_path / "results"
    grade_canned("mlp", submissions(tmp_path / "subs", "ana-30.ipynb"), out)
    assert main(["report", str(out), "-o", str(tmp_path / "report.html")]) == 0
    assert main(["feedback", str(out), "-o", str(tmp_path / "feedback")]) == 0
    written = [*out.iterdir(), tmp_path / "report.html", *(tmp_path / "feedback").iterdir()]
    assert len(written) >= 5
    assert {p.name: mode(p) for p in written} == {p.name: 0o640 for p in written}
