"""Otter packaging: master notebooks in otter-assign format, and `autograder build` (student notebook and
autograder zip per assignment).

The master notebook `<assignment folder>/<name>.ipynb` is written by `write_master` (python -m autograder.otterkit.build
[NAME or FOLDER...]): the assignment's intro and exercise statements (from its assignment.toml), the reference
solutions between `# BEGIN SOLUTION` / `# END SOLUTION`, and one
exception-based otter test case per native check (same points, public or hidden), each calling
`autograder.otterkit.bridge.check`. tests/test_otter.py fails when a master is out of date with the checks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections.abc import Sequence
from pathlib import Path

import nbformat

from autograder.paths import PROJECT_ROOT, builtin_names, is_builtin
from autograder.solutions import solution_cells, solution_sources, unmarked
from autograder.spec import AssignmentSpec, load_assignment
from autograder.student.bundle import build_bundle

Assignment = str | Path | AssignmentSpec

PLUGIN = "autograder.otterkit.bridge.NativeScores"


# -- master notebooks ---------------------------------------------------------------------------------------------
def native_checks(spec: AssignmentSpec) -> dict[str, list[tuple[str, float, bool]]]:
    """(name, points, hidden) of every native check, by exercise, in grading order (from grading the solution)."""
    from autograder.otterkit.bridge import grade_cells

    result = grade_cells(solution_sources(spec), spec)
    found = {e.id: [(t.name, t.max_score, t.hidden) for t in e.tests] for e in result.exercises}
    failed = [f"{e.id}: {t.name}" for e in result.exercises for t in e.tests if not t.passed]
    if failed:
        raise RuntimeError(f"{spec.name}: the reference solutions fail native checks: {failed}")
    return found


def _test_cell(assignment: str, exercise: str, index: int, name: str, points: float, hidden: bool) -> str:
    function = f"test_{exercise}_" + re.sub(r"\W+", "_", name).strip("_") + f"_{index}"
    return textwrap.dedent(
        f'''\
        """ # BEGIN TEST CONFIG
        points: {points!r}
        hidden: {str(hidden).lower()}
        """ # END TEST CONFIG
        def {function}(env):
            from autograder.otterkit.bridge import check
            check(env, {assignment!r}, {exercise!r}, {name!r}, hidden={hidden})
        '''
    ).rstrip()


def _spec(assignment: Assignment) -> AssignmentSpec:
    return assignment if isinstance(assignment, AssignmentSpec) else load_assignment(assignment)


def master_notebook(assignment: Assignment) -> nbformat.NotebookNode:
    spec = _spec(assignment)
    header, cells = solution_cells(spec)
    checks = native_checks(spec)
    config = textwrap.dedent(
        f"""\
        # ASSIGNMENT CONFIG
        requirements: requirements.txt
        run_tests: false
        export_cell: false
        tests:
          ok_format: false
        plugins:
          - {PLUGIN}:
              assignment: {spec.name}
        """
    )
    nb = nbformat.v4.new_notebook()
    new_raw, new_md, new_code = nbformat.v4.new_raw_cell, nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb.cells = [
        new_raw(config),
        new_md(f"# {spec.title}\n\n{spec.intro}\n\nSource: {spec.source}".replace("\n\n\n", "\n\n")),
        new_code(header),
    ]
    for exercise in spec.exercises:
        forbidden = (
            "\n\nNot allowed here: " + ", ".join(f"`{f}`" for f in exercise.forbidden) if exercise.forbidden else ""
        )
        nb.cells += [
            new_raw(f"# BEGIN QUESTION\nname: {exercise.id}"),
            new_md(f"## {exercise.title} ({exercise.points:g} points)\n\n{exercise.statement}{forbidden}".rstrip()),
            new_raw("# BEGIN SOLUTION"),
            new_code(cells[exercise.id]),
            new_raw("# END SOLUTION"),
            new_raw("# BEGIN TESTS"),
            *(
                new_code(_test_cell(spec.name, exercise.id, i, name, points, hidden))
                for i, (name, points, hidden) in enumerate(checks[exercise.id], start=1)
            ),
            new_raw("# END TESTS"),
            new_raw("# END QUESTION"),
        ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def master_path(assignment: Assignment) -> Path:
    spec = _spec(assignment)
    return spec.folder / f"{spec.name}.ipynb"


def write_master(assignment: Assignment) -> Path:
    spec = _spec(assignment)
    path = master_path(spec)
    nb = master_notebook(spec)
    for index, cell in enumerate(nb.cells):  # stable ids: regenerating a master changes only what changed
        cell.id = f"{spec.name}-{index:03d}"
    nbformat.write(nb, str(path))
    return path


# -- build --------------------------------------------------------------------------------------------------------
class BuildError(ValueError):
    pass


def build_wheel(out: Path) -> Path:
    """The project as a wheel (assignments and references inside), for the autograder zip to install."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(PROJECT_ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    wheels = sorted(out.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise BuildError(f"building the project's wheel failed:\n{done.stderr[-2000:]}")
    return wheels[-1]


TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def add_to_wheel(wheel: Path, spec: AssignmentSpec) -> None:
    """Ship a course's own assignment folder inside the project wheel, where `load_assignment(name)` finds it in
    the autograder's environment (`autograder/_data/assignments/<name>/`), as it finds the built-ins."""
    if spec.folder not in spec.reference_path.parents:
        raise BuildError(
            f"{spec.folder / 'assignment.toml'}: for `build`, the reference ({spec.reference_path}) must live "
            "inside the assignment folder, which is what the autograder zip carries"
        )
    import base64
    import hashlib
    import zipfile

    prefix = f"autograder/_data/assignments/{spec.name}"
    added: dict[str, bytes] = {}
    for path in sorted(spec.folder.rglob("*")):
        relative = path.relative_to(spec.folder)
        if path.is_file() and "__pycache__" not in relative.parts and relative.suffix != ".ipynb":
            added[f"{prefix}/{relative.as_posix()}"] = path.read_bytes()
    rebuilt = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as old, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as new:
        if any(name.startswith(prefix + "/") for name in old.namelist()):
            raise BuildError(f"{spec.name}: a built-in assignment has that name; rename the course's assignment")
        record = next(n for n in old.namelist() if n.endswith(".dist-info/RECORD"))
        for item in old.infolist():
            if item.filename != record:
                new.writestr(item, old.read(item))
        lines = old.read(record).decode().splitlines()
        for name, data in added.items():
            new.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            lines.append(f"{name},sha256={digest},{len(data)}")
        new.writestr(record, "\n".join(lines) + "\n")
    rebuilt.replace(wheel)


# Before otter's runner reads it: `otter grade` leaves the file empty, and a zip that names plugins (ours does)
# then fails every submission on json.load; Gradescope's real file is left alone.
EMPTY_METADATA_FIX = "[ -s /autograder/submission_metadata.json ] || echo '{}' > /autograder/submission_metadata.json"
# otter's setup.sh asks `cat otter_config.json | jq -e '[.pdf, .token] | any'` whether to install LaTeX (about
# 3 GB); under `otter grade` the file is added after setup, and jq 1.6 answers an empty input with success: every
# image got texlive. Asked of the file itself, a missing file means no (and our zips make no PDFs).
PDF_QUESTION = re.compile(r"cat (\S+otter_config\.json) \| jq -e '([^']*)'")


def fix_setup(script: str) -> str:
    return PDF_QUESTION.sub(lambda m: f"jq -e '{m.group(2)}' {m.group(1)} 2>/dev/null", script)


def finish_zip(path: Path, wheel: Path) -> None:
    """Make otter's zip installable wherever it is graded. The environment installs the project wheel while the
    image is set up, before `otter grade`'s Dockerfile adds `files/`: so the wheel also lies at the zip's top
    level (Gradescope unpacks the whole zip into /autograder/source/) and in `requirements.d/` (whose contents
    otter's Dockerfile copies into /autograder/source/ with the requirements, before setup). run_autograder
    gives an empty submission_metadata.json the `{}` otter's plugins expect, and setup.sh installs no LaTeX."""
    rebuilt = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "run_autograder":
                lines = data.decode().splitlines()
                last = next(i for i, line in enumerate(lines) if "run_otter.py" in line)
                data = "\n".join([*lines[:last], EMPTY_METADATA_FIX, *lines[last:]]).encode() + b"\n"
            elif item.filename == "setup.sh":
                data = fix_setup(data.decode()).encode()
            new.writestr(item, data)
        new.write(wheel, wheel.name)
        new.write(wheel, f"requirements.d/{wheel.name}")
    rebuilt.replace(path)


def build(
    assignments: Sequence[str | Path], out: Path, trusted_scores: bool = True, student_bundle: bool = True
) -> dict[str, tuple[Path, Path]]:
    """`otter assign` every master notebook: OUT/<a>/student/<a>.ipynb with the student bundle beside it (the wheel
    `grader.check` runs the public checks from; see autograder.student.bundle) and OUT/<a>/autograder/<one zip>. A
    built-in is named; a course's own assignment is a folder path (its master notebook is written into it first)."""
    built = {}
    specs = [load_assignment(a) for a in assignments]
    with tempfile.TemporaryDirectory(prefix="autograder-build-") as tmp:
        wheel = build_wheel(Path(tmp) / "wheel")
        for spec in specs:
            if not is_builtin(spec.folder):
                add_to_wheel(wheel, spec)
                write_master(spec)
        for spec in specs:
            assignment = spec.name
            master = master_path(spec)
            if not master.exists():
                raise BuildError(f"{master}: no master notebook (python -m autograder.otterkit.build {spec.folder})")
            work = Path(tmp) / assignment
            work.mkdir()
            nb = nbformat.read(str(master), as_version=4)
            config = nb.cells[0].source
            if not trusted_scores:
                config = config.split("plugins:")[0]
            nb.cells[0].source = config.replace(
                "requirements: requirements.txt", f"requirements: requirements.txt\nautograder_files:\n  - {wheel.name}"
            )
            nbformat.write(nb, str(work / master.name))
            shutil.copy(wheel, work / wheel.name)
            # Gradescope/otter's setup installs the requirements (after otter's own, pinned to this otter's
            # version) from /autograder/source, where `files` land; torch from the CPU index, as graders have
            # no GPU and the default wheels pull gigabytes of CUDA libraries.
            (work / "requirements.txt").write_text(f"{TORCH_CPU_INDEX}\n/autograder/source/{wheel.name}\n")
            done = subprocess.run(
                [sys.executable, "-m", "otter", "assign", master.name, "dist", "--no-pdfs"],
                cwd=work,
                capture_output=True,
                text=True,
            )
            zips = sorted((work / "dist" / "autograder").glob("*.zip"))
            student = work / "dist" / "student" / master.name
            if done.returncode != 0 or len(zips) != 1 or not student.exists():
                raise BuildError(f"otter assign failed for {assignment}:\n{(done.stdout + done.stderr)[-3000:]}")
            target = out / assignment
            shutil.rmtree(target, ignore_errors=True)
            (target / "autograder").mkdir(parents=True)
            shutil.copytree(work / "dist" / "student", target / "student", dirs_exist_ok=True)  # with public tests
            shutil.copy(zips[0], target / "autograder" / zips[0].name)
            finish_zip(target / "autograder" / zips[0].name, wheel)
            if student_bundle:
                build_bundle(spec, target / "student" / master.name)
            built[assignment] = (target / "student" / master.name, target / "autograder" / zips[0].name)
    return built


def fill_in_solutions(student: nbformat.NotebookNode, assignment: Assignment) -> nbformat.NotebookNode:
    """A copy of a student notebook with every exercise cell replaced by the reference solution (to check a build)."""
    spec = _spec(assignment)
    _, cells = solution_cells(spec)
    by_first_line = {unmarked(code).splitlines()[0]: unmarked(code) for code in cells.values()}
    filled = nbformat.from_dict(student)
    for cell in filled.cells:
        if cell.cell_type == "code" and cell.source.splitlines() and cell.source.splitlines()[0] in by_first_line:
            cell.source = by_first_line[cell.source.splitlines()[0]]
    return filled


if __name__ == "__main__":  # maintainers: rewrite the master notebooks after the checks change
    for name in sys.argv[1:] or builtin_names():
        print(write_master(name))
