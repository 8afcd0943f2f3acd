"""autograder similarity: disguised copies are found; independent solutions and the template are not."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import importlib
import io
import json
import re
import subprocess
import zipfile
from itertools import combinations
from pathlib import Path

import pytest

from autograder import similarity
from autograder.cli import main
from autograder.results import SubmissionResult, atomic_write, write_json
from autograder.spec import load_assignment
from autograder.submission import Submission, load_submissions, notebook_bytes
from bench import similarity as bench
from tests.mutants import mlp

from .conftest import EXAMPLES, run_cli, write_notebook
from .test_lms import _chromium

ASSIGNMENTS = ("mlp", "decoding", "spiking")
DISGUISES = {
    "renamed_variables": lambda o: bench.rename(o.code, o.renames),
    "reordered_helpers": lambda o: bench.reorder(o.code),
    "added_comments": lambda o: bench.add_comments(o.code),
    "changed_constant": lambda o: bench.change_constant(o.code, o.constant),
    "all_four": bench.disguise,
}


def _compare(assignment: str, notebooks: dict[str, list[str]], tmp: Path, threshold: float = 0.0):
    """A class of notebooks (name -> code cells, after the mutation suite's imports), compared."""
    header = importlib.import_module(f"tests.mutants.{assignment}").HEADER
    paths = [write_notebook(tmp / f"{name}.ipynb", [header, *cells]) for name, cells in notebooks.items()]
    spec = load_assignment(assignment)
    return similarity.compare_class(spec, load_submissions(paths), similarity.default_template(spec), threshold)


def _solutions(assignment: str) -> dict[str, tuple[str, str]]:
    """The course's solution and every correct variant of the mutation suite: name -> (exercise, code)."""
    mutants = importlib.import_module(f"tests.mutants.{assignment}")
    found = {f"base_{exercise}": (exercise, code) for exercise, code in mutants.BASE.items()}
    found.update({name: (exercise, code) for exercise, name, code in mutants.VARIANTS})
    return found


def _edit_of_each_other(a: str, b: str) -> bool:
    """One is the other with a line or two changed (some variants are the course's solution so edited): copies by
    construction, which a copy detector must report, so not independent solutions. Layout aside, 3 lines in 4 are
    the same: 0.88 to 0.96 for those; 0.71 at most for any other two solutions of the suite."""
    lines_a, lines_b = ([" ".join(line.split()) for line in code.splitlines() if line.strip()] for code in (a, b))
    return difflib.SequenceMatcher(None, lines_a, lines_b).ratio() >= 0.75


def _disguised(code: str) -> str:
    """Every local renamed, comments added, the first whole number changed: a copy meant not to look like one."""
    assigned = set(re.findall(r"^\s+(\w+)\s*=", code, re.MULTILINE)) - {"self"}
    code = bench.rename(code, {name: f"{name}_mine" for name in assigned})
    number = re.search(r"\b\d+\b", code)
    if number:
        code = code[: number.start()] + str(int(number.group()) + 1) + code[number.end() :]
    return bench.add_comments(code)


def _pairs(report) -> dict[tuple[str, str, str], float]:
    return {(p.exercise, Path(p.a).stem, Path(p.b).stem): p.similarity for p in report.pairs}


# -- what is found ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("disguise", DISGUISES)
def test_a_disguised_copy_is_found_above_the_threshold(tmp_path, disguise):
    notebooks = {name: [code] for name, (_, code) in _solutions("mlp").items()}
    for exercise, original in bench.ORIGINALS.items():
        notebooks[f"original_{exercise}"] = [original.code]
        notebooks[f"copy_{exercise}"] = [DISGUISES[disguise](original)]
    report = _compare("mlp", notebooks, tmp_path, threshold=similarity.DEFAULT_THRESHOLD)
    found = _pairs(report)
    planted = {(exercise, f"original_{exercise}", f"copy_{exercise}") for exercise in bench.ORIGINALS}
    assert planted <= set(found), found
    assert not [pair for pair in set(found) - planted if pair[1].startswith(("original", "copy"))]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_disguised_copy_of_any_course_solution_is_found(tmp_path, assignment):
    solutions = {
        name: code for name, (_, code) in _solutions(assignment).items() if len(code.strip().splitlines()) >= 4
    }  # an answer of a line or two has too little in it to show copying (MIN_SHARED_CHARS)
    notebooks = {name: [code] for name, code in solutions.items()}
    notebooks.update({f"copy_of_{name}": [_disguised(code)] for name, code in solutions.items()})
    found = {(p.a, p.b) for p in _compare(assignment, notebooks, tmp_path, similarity.DEFAULT_THRESHOLD).pairs}
    missed = [name for name in solutions if (f"{name}.ipynb", f"copy_of_{name}.ipynb") not in found]
    assert not missed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_independent_correct_solutions_are_not_reported(tmp_path, assignment):
    solutions = _solutions(assignment)
    report = _compare(assignment, {name: [code] for name, (_, code) in solutions.items()}, tmp_path)
    scores = _pairs(report)
    independent = [
        (exercise, a, b)
        for (a, (exercise, code_a)), (b, (other, code_b)) in combinations(solutions.items(), 2)
        if exercise == other and not _edit_of_each_other(code_a, code_b)
    ]
    assert len(independent) >= 6
    highest = max(scores.get(key, scores.get((key[0], key[2], key[1]), 0.0)) for key in independent)
    # The default threshold sits between these: the highest independent pair of the three assignments is 0.50
    # (two LIF solutions that share the task's formula line), the lowest disguised copy of a course solution 0.70
    # (a four-line cross entropy: one_hot).
    assert highest < similarity.DEFAULT_THRESHOLD - 0.05, highest


def test_the_lowest_planted_copy_clears_the_threshold_with_a_margin(tmp_path):
    notebooks = {}
    for exercise, original in bench.ORIGINALS.items():
        notebooks[f"original_{exercise}"] = [original.code]
        notebooks[f"copy_{exercise}"] = [bench.disguise(original)]
    scores = _pairs(_compare("mlp", notebooks, tmp_path))
    lowest = min(scores[(exercise, f"original_{exercise}", f"copy_{exercise}")] for exercise in bench.ORIGINALS)
    assert lowest >= similarity.DEFAULT_THRESHOLD + 0.2, scores


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_template_alone_never_matches(tmp_path, assignment):
    template = load_submissions([EXAMPLES / assignment / "template.ipynb"])[0]
    cells = [cell.source for cell in template.cells]
    commented = [source.replace("\n    ", "\n    # my notes\n    ", 3) for source in cells]
    one_done = {**_solutions(assignment)}.popitem()[1][1]
    notebooks = {"untouched": cells, "also_untouched": cells, "commented": commented, "one_done": [*cells, one_done]}
    report = _compare(assignment, notebooks, tmp_path)
    assert report.pairs == ()
    assert all(n == 4 for n in report.compared.values())  # every exercise was compared, and none matched


def test_code_more_than_common_submissions_share_is_no_evidence(tmp_path):
    original = bench.ORIGINALS["cross_entropy_loss"].code
    notebooks = {f"student{i}": [original] for i in range(4)}
    assert len(_compare("mlp", notebooks, tmp_path / "a", threshold=0.6).pairs) == 6
    spec = load_assignment("mlp")
    paths = sorted((tmp_path / "a").glob("*.ipynb"))
    report = similarity.compare_class(spec, load_submissions(paths), similarity.default_template(spec), common=3)
    assert report.pairs == ()


# -- what is compared ---------------------------------------------------------------------------------------------
def test_an_exercise_is_its_symbols_and_the_helpers_they_use():
    spec = load_assignment("mlp")
    cells = [
        "def cross_entropy_loss(x, labels):\n    return 0\n",
        "def _unused(x):\n    return x\n",
        "def _picked(x, labels):\n    return x[range(len(labels)), labels]\n",
        "def cross_entropy_loss(x, labels):  # the last definition wins\n    return _lse(x) - _picked(x, labels)\n",
        "def _lse(x):\n    set_seed(0)\n    return approximate_function(x, x)\n",
        "def set_seed(seed):\n    pass\n",
        "def shuffle_and_split_data(X, y, seed)\n    return X\n\nprint('a cell that does not parse')\n",
    ]
    submission = Submission("s.ipynb", "s.ipynb", tuple(_cells(cells)))
    codes = similarity.exercise_code(spec, submission, skip={"set_seed"})
    assert codes["cross_entropy_loss"] == "\n\n".join([cells[3].strip(), cells[4].strip(), cells[2].strip()])
    assert codes["shuffle_and_split"] == "def shuffle_and_split_data(X, y, seed)\n    return X"
    assert set(codes) == {"cross_entropy_loss", "shuffle_and_split"}


def _cells(sources: list[str]):
    from autograder.submission import Cell

    return [Cell(index, source) for index, source in enumerate(sources, start=1)]


def test_a_results_folder_stands_for_the_files_it_graded(tmp_path):
    original = bench.ORIGINALS["Net"]
    alice = write_notebook(tmp_path / "class" / "alice.ipynb", [mlp.HEADER, original.code])
    archive = tmp_path / "class" / "section2.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("bob.ipynb", notebook_bytes([mlp.HEADER, bench.disguise(original)]))
    results = tmp_path / "results"
    for name, path in (("alice.ipynb", str(alice)), ("section2.zip/bob.ipynb", f"{archive}!bob.ipynb")):
        result = SubmissionResult(name, "mlp", 0.0, 40.0, "cpu", 0.0, path=path)
        write_json(results, Path(name).stem, result)
    write_json(results, "gone", SubmissionResult("gone.ipynb", "mlp", 0, 40, "cpu", 0, path=str(tmp_path / "x")))
    atomic_write(results / "grades.csv", "submission,total\n")
    loaded = similarity.load_class([results])
    assert sorted(s.name for s in loaded if not s.error) == ["alice.ipynb", "section2.zip/bob.ipynb"]
    spec = load_assignment("mlp")
    report = similarity.compare_class(spec, loaded, similarity.default_template(spec))
    assert [(p.exercise, p.a, p.b) for p in report.pairs] == [("Net", "alice.ipynb", "section2.zip/bob.ipynb")]
    assert len(report.unreadable) == 1 and "gone" in report.unreadable[0]


def test_a_threshold_outside_0_to_1_is_refused(tmp_path):
    spec = load_assignment("mlp")
    with pytest.raises(ValueError, match="between 0 and 1"):
        similarity.compare_class(spec, [], similarity.default_template(spec), threshold=60)


# -- the command and its page -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_files(tmp_path_factory):
    """`autograder similarity` on a class of 6 with two planted pairs, names from intake's identities.json."""
    root = tmp_path_factory.mktemp("similarity")
    folder = root / "class"
    students = ["ada", "ben", "cy", "dee", "eve", "fay"]
    codes = {name: dict(mlp.BASE) for name in students}
    codes["ada"]["Net"], codes["dee"]["Net"] = bench.ORIGINALS["Net"].code, bench.disguise(bench.ORIGINALS["Net"])
    original = bench.ORIGINALS["shuffle_and_split"]
    codes["ben"]["shuffle_and_split"], codes["fay"]["shuffle_and_split"] = original.code, bench.disguise(original)
    for name in students:  # everyone else's code is the course's own: too common to count, with --common 3
        write_notebook(folder / f"{name}.ipynb", [mlp.HEADER, *codes[name].values()])
    identities = [{"key": name, "name": f"{name.title()} Lovelace"} for name in students]
    atomic_write(root / "identities.json", json.dumps(identities))
    out = root / "report.html"
    done = run_cli(
        "similarity", "mlp", str(folder), "--out", str(out), "--identities", str(root / "identities.json"),
        "--common", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 pairs at or above 0.6: " in done.stdout
    return out, out.with_suffix(".csv")


def test_the_csv_lists_every_pair_above_the_threshold_by_name(report_files):
    _, table = report_files
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [(r["exercise"], r["submission_a"], r["submission_b"]) for r in rows] == [
        ("Net", "Ada Lovelace", "Dee Lovelace"),
        ("shuffle_and_split", "Ben Lovelace", "Fay Lovelace"),
    ]
    assert all(0.6 <= float(r["similarity"]) <= 1 for r in rows)


def test_the_page_shows_the_pairs_side_by_side_in_a_headless_browser(report_files):
    page, _ = report_files
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert "6 submissions compared; 2 pairs at or above similarity 0.6." in dom.stdout
    assert "Ada Lovelace and Dee Lovelace" in dom.stdout and "Ben Lovelace and Fay Lovelace" in dom.stdout
    assert dom.stdout.count('<section class="pair"') == 2 and dom.stdout.count("<mark>") >= 4
    assert "_hidden_stack" in dom.stdout and "evidence to look at, not a verdict" in dom.stdout
    shot = page.with_suffix(".png")
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1400,1400", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    from matplotlib import image

    pixels = image.imread(str(shot))[:, :, :3]
    mark = [0xFF / 255, 0xD9 / 255, 0x66 / 255]
    marked = (abs(pixels - mark) < 0.03).all(axis=2)
    assert marked.sum() > 5000, "the shared code is not marked"


def test_an_assignment_without_a_bundled_template_asks_for_one(tmp_path, capsys):
    spec = dataclasses.replace(load_assignment("mlp"), name="optics")
    with pytest.raises(ValueError, match="pass --template NOTEBOOK"):
        similarity.default_template(spec)
    out = tmp_path / "r.html"
    assert main(["similarity", "mlp", str(tmp_path), "--out", str(out), "--template", "nope.ipynb"]) == 2
    assert "nope.ipynb" in capsys.readouterr().err and not out.exists()


def test_the_bench_finds_every_planted_pair(capsys):
    assert bench.main(["--sizes", "30"]) == 0
    out = capsys.readouterr().out
    assert "4 of 4" in out
