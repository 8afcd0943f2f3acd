"""`otter grade` (Docker) against `autograder grade` on the same notebooks: per-exercise scores compared, and the
seconds per submission of each, measured side by side in one run.

    python -m bench.otter_grade [--image autograder-otter-base] [--containers 2] [--out DIR]

Zips are built as shipped (`autograder build`, trusted scores on) for every built-in and for an assignment made
with `autograder new` (which the grading host does not have: its zip carries it). The notebooks: each built-in's
bundled examples (correct, partly wrong, the unfilled template, and one that is not JSON) and the new assignment's
solution and template. Otter runs every cell: the examples' final long-training cell and their `!pip` lines are
left out of the copies both graders get (the same definitions; otter's real cost on the examples is higher).
The base image comes from autograder.otterkit.image (built on first use: about 5 minutes). Exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.authoring import new_assignment
from autograder.otterkit.build import build, fill_in_solutions
from autograder.otterkit.image import DEFAULT_TAG, build_base_image
from autograder.paths import PROJECT_ROOT, builtin_names

EXAMPLES = PROJECT_ROOT / "examples" / "submissions"
LONG_CELL = "Train for a long time"  # the examples' last cell: minutes of training the native grader never runs


@dataclass
class Comparison:
    assignment: str
    notebooks: int
    otter_s: float
    native_s: float
    differences: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.otter_s / self.native_s


def for_otter(source: Path, target: Path) -> None:
    """A copy without the long-training cell and `!` lines (a notebook that is not JSON is copied as it is)."""
    try:
        nb = nbformat.read(str(source), as_version=4)
    except Exception:  # noqa: BLE001 - a broken example stays broken: both graders must score it 0
        shutil.copy(source, target)
        return
    nb.cells = [c for c in nb.cells if LONG_CELL not in c.source]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.split("\n") if not line.lstrip().startswith("!"))
    nbformat.write(nb, str(target))


def submissions(root: Path, assignment: str, folder: Path | None, student: Path) -> Path:
    """The notebooks both graders get for one assignment, in root/<assignment>/."""
    target = root / assignment
    target.mkdir(parents=True)
    if folder is None:
        for example in sorted((EXAMPLES / assignment).glob("*.ipynb")):
            for_otter(example, target / example.name)
    else:
        template = nbformat.read(str(student), as_version=4)
        nbformat.write(template, str(target / "template.ipynb"))
        nbformat.write(fill_in_solutions(template, folder), str(target / "solution.ipynb"))
    return target


def otter_grade(assignment: str, zipped: Path, notebooks: Path, out: Path, image: str, containers: int) -> float:
    out.mkdir(parents=True)
    command = [sys.executable, "-m", "otter", "grade", "-n", assignment, "-a", str(zipped), "-o", str(out),
               "--image", image, "--containers", str(containers), "--timeout", "1800", str(notebooks)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if not (out / "final_grades.csv").exists():
        said = done.stdout[-3000:] + done.stderr[-3000:]
        raise RuntimeError(f"otter grade {assignment} wrote no final_grades.csv:\n{said}")
    return seconds


def native_grade(assignment: str, notebooks: Path, out: Path, jobs: int) -> float:
    command = [sys.executable, "-m", "autograder", "grade", assignment, str(notebooks), "--out", str(out),
               "-j", str(jobs)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or not (out / "grades.csv").exists():
        raise RuntimeError(f"autograder grade {assignment} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def otter_scores(out: Path) -> dict[str, dict[str, float]]:
    """{notebook stem: {column: points}} from otter's final_grades.csv (its points-per-question row left out)."""
    scores = {}
    with (out / "final_grades.csv").open() as f:
        for row in csv.DictReader(f):
            stem = Path(row.pop("file")).stem
            if stem != "points-per-question":
                scores[stem] = {k: float(v) for k, v in row.items() if re.fullmatch(r"-?[0-9.]+", v or "")}
    return scores


def native_scores(out: Path) -> dict[str, dict[str, float]]:
    scores = {}
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "exercises" in data:
            scores[Path(data["submission"]).stem] = {e["id"]: float(e["score"]) for e in data["exercises"]}
    return scores


def differences(otter: dict[str, dict[str, float]], native: dict[str, dict[str, float]], stems: list[str]) -> list[str]:
    """Every (notebook, exercise) whose points differ; an exercise a grader has no score for counts 0 (a notebook
    that is not JSON has none natively; otter reports a failed container)."""
    exercises = sorted({e for scores in native.values() for e in scores})
    found = []
    for stem in stems:
        if stem not in native or stem not in otter:
            found.append(f"{stem}: missing from {'native results' if stem not in native else 'final_grades.csv'}")
            continue
        for exercise in exercises:
            mine, theirs = native[stem].get(exercise, 0.0), otter[stem].get(exercise, 0.0)
            if abs(mine - theirs) > 1e-6:
                found.append(f"{stem}: {exercise} native {mine:g}, otter {theirs:g}")
    return found


def compare(work: Path, image: str, containers: int, say=print) -> list[Comparison]:  # type: ignore[no-untyped-def]
    build_base_image(image, say=say)
    course = new_assignment("week3", work / "course")
    names = [*builtin_names(), course]
    say("building the zips (autograder build, trusted scores on)")
    built = build(names, work / "dist", student_bundle=False)
    comparisons = []
    for name in names:
        assignment = name if isinstance(name, str) else name.name
        student, zipped = built[assignment]
        notebooks = submissions(work / "notebooks", assignment, None if isinstance(name, str) else name, student)
        stems = sorted(p.stem for p in notebooks.glob("*.ipynb"))
        say(f"{assignment}: otter grade of {len(stems)} notebooks")
        otter_s = otter_grade(assignment, zipped, notebooks, work / "otter" / assignment, image, containers)
        say(f"{assignment}: autograder grade of the same")
        native_s = native_grade(str(name), notebooks, work / "native" / assignment, containers)
        otter, native = otter_scores(work / "otter" / assignment), native_scores(work / "native" / assignment)
        found = differences(otter, native, stems)
        comparisons.append(Comparison(assignment, len(stems), otter_s, native_s, found))
    return comparisons


def report(comparisons: list[Comparison]) -> str:
    lines = ["assignment  notebooks  otter grade s/nb  autograder grade s/nb  ratio  per-exercise scores"]
    for c in comparisons:
        scores = "same" if not c.differences else "; ".join(c.differences)
        lines.append(f"{c.assignment:<11} {c.notebooks:>9}  {c.otter_s / c.notebooks:>16.1f}  "
                     f"{c.native_s / c.notebooks:>21.1f}  {c.ratio:>5.1f}  {scores}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default=DEFAULT_TAG)
    parser.add_argument("--containers", type=int, default=2, help="otter's containers, and the native grader's -j")
    parser.add_argument("--out", type=Path, help="keep the work here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otter-grade-") as tmp:
        work = args.out or Path(tmp)
        comparisons = compare(work, args.image, args.containers)
    print(report(comparisons))
    return 1 if any(c.differences for c in comparisons) else 0


if __name__ == "__main__":
    sys.exit(main())
