"""Every CSV file the grader writes survives what a class names its files and itself: a name never splits its row
and never reaches a spreadsheet as a formula, and the scores stay numbers."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from autograder import lms, similarity
from autograder.csvfile import csv_text, text_cell
from autograder.lms import GradeRow, Identity, canvas, moodle
from autograder.results import grades_csv
from autograder.spec import load_assignment

from .test_lms import fake_result

# Formula injection as OWASP lists it, then text that must be quoted to stay in its cell.
HOSTILE = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "a\rb", "a,b", 'say "hi"', "two\nlines"]
# Kept here rather than taken from autograder.csvfile, so that a character dropped there fails these tests.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SCORES = [10.0, 7.5, 0.0, 2.25]


def neutralised(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def read_back(text: str, rows: int) -> list[list[str]]:
    """The file as a spreadsheet's CSV reader sees it, after checking it has `rows` rows and no formula."""
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert len(table) == rows, table
    starts = [value for row in table for value in row if value.startswith(FORMULA_STARTS)]
    assert starts == []
    return table


def score(n: int) -> float:
    return SCORES[n % len(SCORES)]


def test_text_cell_prefixes_only_text_that_begins_like_a_formula():
    assert [text_cell(text) for text in HOSTILE] == [neutralised(text) for text in HOSTILE]
    assert text_cell("=1")[0] == "'" and text_cell("\rCR") == "'\rCR"
    for plain in ["", "alice", "Doe, Alice", "    Points Possible", "'quoted", "7.5", "a=b", "x-1"]:
        assert text_cell(plain) == plain


def test_csv_text_quotes_a_lone_carriage_return_and_keeps_newline_line_ends():
    text = csv_text(["a", "b"], [["x\ry", "1"], ["plain", "2"]])
    assert text == 'a,b\n"x\ry",1\nplain,2\n'
    assert read_back(text, 3) == [["a", "b"], ["x\ry", "1"], ["plain", "2"]]


def test_grades_csv_keeps_hostile_submission_names_in_their_rows_and_scores_as_numbers():
    spec = load_assignment("mlp")
    results = [fake_result(name, score(n)) for n, name in enumerate(HOSTILE)]
    results.append(dataclasses.replace(fake_result("=HYPERLINK(x)", 0), not_graded="no notebook"))
    table = read_back(grades_csv(spec, results), 1 + len(results))
    assert table[0] == ["submission", *spec.exercise_ids, "total", "max_total"]
    for n, (row, name) in enumerate(zip(table[1:-1], HOSTILE, strict=True)):
        assert row[0] == neutralised(f"{name}.ipynb")
        assert row[1 + spec.exercise_ids.index("cross_entropy_loss")] == f"{score(n):g}"
        assert row[-2:] == [f"{score(n):g}", "10"]
    assert table[-1] == ["'=HYPERLINK(x).ipynb", *("" for _ in spec.exercise_ids), "", "10"]


def test_canvas_gradebook_neutralises_every_identity_cell_and_keeps_points_possible():
    rows = []
    for n, name in enumerate(HOSTILE):
        identity = Identity(key=f"s{n}", name=name, user_id=name, sis_id=name, login=name, section=name)
        rows.append(GradeRow(identity, fake_result(f"s{n}", score(n))))
    rows.append(GradeRow(Identity(key="none", name="-Nobody", login="@nobody", section="+B"), None))
    table = read_back(canvas.gradebook_csv(rows, "MLP (4242)", 10, missing="0"), 2 + len(rows))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "MLP (4242)"]
    assert table[1] == ["    Points Possible", "", "", "", "", "10"]
    for n, (row, name) in enumerate(zip(table[2:-1], HOSTILE, strict=True)):
        assert row == [neutralised(name)] * 5 + [f"{score(n):g}"]
    assert table[-1] == ["'-Nobody", "", "", "'@nobody", "'+B", "0"]


@pytest.mark.parametrize(("key", "field"), [("email", "email"), ("username", "login"), ("idnumber", "sis_id")])
def test_moodle_import_neutralises_the_identifying_column(key, field):
    rows = [
        GradeRow(Identity(key=f"s{n}", **{field: name}), fake_result(f"s{n}", score(n)))
        for n, name in enumerate(HOSTILE)
    ]
    rows.append(GradeRow(Identity(key="none", **{field: "=1+1"}), None))
    table = read_back(moodle.grades_csv(rows, "mlp", key=key, missing="0"), 1 + len(rows))
    assert table[0] == [moodle.KEYS[key][0], "mlp", "Feedback"]
    for n, (row, name) in enumerate(zip(table[1:-1], HOSTILE, strict=True)):
        assert row == [neutralised(name), f"{score(n):g}", lms.summary_line(rows[n].result)]
    assert table[-1] == ["'=1+1", "0", "No submission."]


def test_moodle_worksheet_neutralises_full_names():
    rows = [
        GradeRow(Identity(key=f"s{n}", name=name, participant_id=str(600 + n)), fake_result(f"s{n}", score(n)))
        for n, name in enumerate(HOSTILE)
    ]
    table = read_back(moodle.worksheet(rows), 1 + len(rows))
    assert table[0] == list(moodle.WORKSHEET_HEADER)
    for n, (row, name) in enumerate(zip(table[1:], HOSTILE, strict=True)):
        identifier, full_name, grade, _, feedback = row
        assert (identifier, full_name, grade) == (f"Participant {600 + n}", neutralised(name), f"{score(n):g}")
        assert feedback == lms.summary_line(rows[n].result)


def test_scores_stay_numbers_and_only_the_feedback_text_beginning_with_one_is_neutralised():
    # No check takes points away, but a score the grader formats is a number whatever its sign; the feedback
    # line that begins with it is text.
    result = fake_result("s0", -1.5)
    spec = load_assignment("mlp")
    grades = list(csv.reader(io.StringIO(grades_csv(spec, [result]), newline="")))
    assert grades[1][-2:] == ["-1.5", "10"]
    row = GradeRow(Identity(key="s0", email="s0@uni.example", name="S", participant_id="1"), result)
    [_, imported] = csv.reader(io.StringIO(moodle.grades_csv([row], "mlp"), newline=""))
    assert imported == ["s0@uni.example", "-1.5", "'" + lms.summary_line(result)]
    [_, worksheet] = csv.reader(io.StringIO(moodle.worksheet([row]), newline=""))
    assert worksheet[2] == "-1.5" and worksheet[4] == "'-1.5/10: cross_entropy_loss -1.5/10"


def _pairs(names: list[str]) -> similarity.ClassSimilarity:
    pairs = tuple(
        similarity.Pair("Net", a, "zed.ipynb", 0.6 + n / 100, 0.7, 0.5, "", "", (), ()) for n, a in enumerate(names)
    )
    return similarity.ClassSimilarity("mlp", "MLP", 0.6, 10, (), (), {"Net": 11}, {"Net": 10}, pairs)


def test_similarity_csv_neutralises_submission_names():
    files = [f"{name}.ipynb" for name in HOSTILE]
    table = read_back(similarity.similarity_csv(_pairs(files)), 1 + len(files))
    assert table[0] == ["exercise", "submission_a", "submission_b", "similarity"]
    for n, (row, file) in enumerate(zip(table[1:], files, strict=True)):
        assert row == ["Net", neutralised(file), "zed.ipynb", f"{0.6 + n / 100:.3f}"]


def test_similarity_csv_neutralises_students_names_from_identities():
    names = {f"s{n}": name for n, name in enumerate(HOSTILE)} | {"zed": "@zed"}
    found = _pairs([f"s{n}.ipynb" for n in range(len(HOSTILE))])
    table = read_back(similarity.similarity_csv(found, names), 1 + len(HOSTILE))
    for row, name in zip(table[1:], HOSTILE, strict=True):
        assert row[1:3] == [neutralised(name), "'@zed"]
