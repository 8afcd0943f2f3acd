"""Helpers for the project's own tests: writing submissions, grading them in-process or through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grader import grade_chunk
from autograder.options import GradingOptions
from autograder.paths import PROJECT_ROOT, builtin_names
from autograder.results import SubmissionResult
from autograder.spec import load_assignment
from autograder.submission import load_submissions, notebook_bytes

EXAMPLES = PROJECT_ROOT / "examples" / "submissions"


def write_notebook(path: Path, cells: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(notebook_bytes(cells))
    return path


def grade_paths(assignment: str, paths: list[Path], **options: object) -> list[SubmissionResult]:
    """Grade in this process (student code still runs in workers); results in the order of `paths`."""
    return grade_chunk(load_assignment(assignment), load_submissions(paths), GradingOptions(**options))  # type: ignore[arg-type]


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def notebook(tmp_path: Path):
    def make(name: str, *cells: str) -> Path:
        return write_notebook(tmp_path / name, list(cells))

    return make


@pytest.fixture(scope="session")
def built_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`autograder build` of every built-in (trusted scores), made once for the otter and student-bundle tests."""
    from autograder.otterkit.build import build

    out = tmp_path_factory.mktemp("dist")
    build(builtin_names(), out)
    return out


def solution_lines(assignment: str) -> set[str]:
    """Lines of the reference's code in the master notebook (after `# BEGIN SOLUTION`), long enough to be telling:
    what must never reach a student."""
    import nbformat

    from autograder.otterkit.build import master_path

    master = nbformat.read(str(master_path(assignment)), as_version=4)
    return {
        line.strip()
        for cell in master.cells
        if cell.cell_type == "code" and "# BEGIN SOLUTION" in cell.source
        for line in cell.source.split("# BEGIN SOLUTION", 1)[1].splitlines()
        if len(line.strip()) > 25 and "SOLUTION" not in line
    }


def percent_notebook(source: Path, target: Path) -> Path:
    """A notebook from a fixture in the percent format: `# %%` starts a code cell, `# %% [markdown]` a Markdown
    cell (its lines' leading '# ' removed); the text above the first marker is the fixture's header, not a cell."""
    import re

    import nbformat

    parts = re.split(r"^(# %%.*)$", source.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    cells = []
    for marker, body in zip(parts[::2], parts[1::2], strict=True):
        body = body.strip("\n")
        if "[markdown]" in marker:
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n"))
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cells.append(nbformat.v4.new_code_cell(body))
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(target))
    return target
