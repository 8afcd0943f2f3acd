"""What a class hands in, as data for the instructor's tools: code too deep for Python's parser, file names that
look like terminal markup, notebooks too big to read, and a class read one submission at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import submission as submission_module
from autograder.grader import grade
from autograder.options import GradingOptions
from autograder.paths import PROJECT_ROOT
from autograder.similarity import compare_class, default_template, top_level_definitions
from autograder.spec import load_assignment
from autograder.submission import load_submissions, parse_cell

from .conftest import EXAMPLES, write_notebook
from .mutants import mlp

OPTIONS = GradingOptions(timeout=60)
DEEP = "BIG = " + " + ".join(["1"] * 4000)  # Python's parser: RecursionError, not SyntaxError


def _correct_with(extra: str) -> list[str]:
    return [mlp.HEADER, *mlp.BASE.values(), extra]


def test_code_too_deep_for_the_parser_costs_its_cell_only(tmp_path):
    assert parse_cell(DEEP) is None and parse_cell("a\x00b") is None and parse_cell("x = 1") is not None
    notebook = write_notebook(tmp_path / "deep.ipynb", _correct_with(DEEP))
    [result] = grade("mlp", [notebook], out_dir=None, options=OPTIONS).results
    assert result.score == 40, [(e.id, e.status, [t.message for t in e.tests]) for e in result.exercises]
    # no lost point depends on it: the instructor's note names the cell, the student sees nothing
    assert result.errors == () and any("RecursionError" in note for note in result.notes)
    assert top_level_definitions(DEEP) == {}  # similarity splits it by text instead of stopping


def test_similarity_of_a_class_with_a_cell_too_deep_to_parse_still_writes_its_page(tmp_path):
    folder = tmp_path / "class"
    write_notebook(folder / "deep.ipynb", _correct_with(DEEP))
    write_notebook(folder / "plain.ipynb", _correct_with("x = 1"))
    spec = load_assignment("mlp")
    found = compare_class(spec, load_submissions([folder]), default_template(spec))
    assert found.submissions == ("deep.ipynb", "plain.ipynb") and found.unreadable == ()
    page = tmp_path / "similarity.html"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "similarity", "mlp", str(folder), "-o", str(page)],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert page.exists() and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["x[/]y", "[bold]loud[/bold]", "a[red]b"])
def test_file_names_that_look_like_markup_are_printed_as_they_are(tmp_path, name):
    folder = tmp_path / "subs"
    (folder / name).mkdir(parents=True)
    shutil.copy(EXAMPLES / "mlp" / "correct.ipynb", folder / name / "nb.ipynb")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "mlp", str(folder), "-o", str(tmp_path / "out"), "-j", "1"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{name}/nb.ipynb" in proc.stdout  # shown as it is, not read as markup
    assert "Traceback" not in proc.stderr


def test_a_notebook_over_the_size_limit_is_refused_with_a_result_saying_so(monkeypatch, tmp_path):
    monkeypatch.setattr(submission_module, "MAX_SUBMISSION_BYTES", 50_000)
    big = write_notebook(tmp_path / "subs" / "big.ipynb", _correct_with("BLOB = '" + "x" * 80_000 + "'"))
    zipped = tmp_path / "subs" / "section.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:  # 80 KB of x: a few hundred bytes zipped
        archive.write(big, "carol.ipynb")
        archive.write(EXAMPLES / "mlp" / "correct.ipynb", "dave.ipynb")
    results = {r.submission: r for r in grade("mlp", [tmp_path / "subs"], out_dir=None, options=OPTIONS).results}
    for name in ("big.ipynb", "section.zip/carol.ipynb"):
        assert results[name].score == 0 and "more than the 0 MiB a submission may be" in results[name].errors[0]
        assert "it was not read" in results[name].errors[0]
    assert results["section.zip/dave.ipynb"].score == 40


def test_a_batch_lists_its_submissions_and_each_is_read_where_it_is_graded(tmp_path):
    """Memory must not grow with the class: `grade` holds names and places, a scoring process reads a chunk."""
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(3):
        shutil.copy(EXAMPLES / "mlp" / "correct.ipynb", folder / f"s{i}.ipynb")
    listed = load_submissions([folder], read=False)
    assert [s.name for s in listed] == ["s0.ipynb", "s1.ipynb", "s2.ipynb"]
    assert all(s.pending and s.cells == () for s in listed)
    seen: list[list[bool]] = []

    class Recording:
        def run(self, spec, chunks, options, on_result):
            from autograder.grader import grade_chunk

            for chunk in chunks:
                seen.append([s.pending for s in chunk])
                grade_chunk(spec, chunk, options, on_result=on_result)

    batch = grade("mlp", [folder], out_dir=None, options=OPTIONS, executor=Recording())
    assert seen and all(all(chunk) for chunk in seen)  # what travels to scoring processes is a listing
    assert [r.score for r in batch.results] == [40, 40, 40]
    assert listed[0].read().cells and listed[0].read().name == "s0.ipynb"


def test_a_listed_submission_that_vanished_before_it_was_graded_is_that_submissions_problem(tmp_path):
    notebook = Path(shutil.copy(EXAMPLES / "mlp" / "correct.ipynb", tmp_path / "gone.ipynb"))
    [listed] = load_submissions([notebook], read=False)
    notebook.unlink()
    read = listed.read()
    assert read.error and "could not be read" in read.error and read.name == "gone.ipynb"
