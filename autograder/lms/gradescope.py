"""Gradescope: its "Export Submissions" zip in; a `results.json` per submission out (Gradescope has no grade
import: its autograder writes that file, see `autograder gradescope-run`), and the autograder zip it runs.

The download holds `submission_<id>/` folders and `submission_metadata.yml`, which names each submission's
submitters (a group submission counts for every member) and when it was made.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from autograder import messages
from autograder.lms.export import summary_line
from autograder.lms.identity import Identity, LmsError, safe_key
from autograder.lms.intake import Limits, Student, read_member
from autograder.lms.platform import ExportRequest
from autograder.results import SubmissionResult, atomic_write
from autograder.runner import missing_walls

title = "Gradescope"
download = "'Export Submissions' zip"

METADATA = "submission_metadata.yml"
RUNNER_DIR = Path(__file__).with_name("gradescope_files")  # the scripts Gradescope runs: setup.sh, run_autograder
RUNNER_FILES = ("setup.sh", "run_autograder")
PROJECT_PARTS = ("pyproject.toml", "README.md", "autograder", "assignments", "reference_solutions", "examples")


def students(archive: zipfile.ZipFile, limits: Limits) -> list[Student]:
    import yaml  # type: ignore[import-untyped]

    names = archive.namelist()
    meta_name = next((n for n in names if PurePosixPath(n).name == METADATA), None)
    if meta_name is None:
        raise LmsError(f"{limits.download}: no {METADATA}; is this a Gradescope {download}?")
    try:
        metadata = yaml.safe_load(read_member(archive, archive.getinfo(meta_name), limits)) or {}
    except yaml.YAMLError as exc:
        raise LmsError(f"{limits.download}: {meta_name} is not valid YAML ({str(exc).splitlines()[0]})") from None
    root = str(PurePosixPath(meta_name).parent).removeprefix(".")
    latest: dict[str, Student] = {}
    for folder, info in metadata.items():
        prefix = f"{root}/{folder}/".lstrip("/")
        files = [(n[len(prefix) :], n) for n in names if n.startswith(prefix) and not n.endswith("/")]
        created = str(_field(info, "created_at"))
        for person in _submitters(info):  # a group submission counts for every member
            sid, email = str(_field(person, "sid")), str(_field(person, "email"))
            identity = Identity(
                key=safe_key(sid or email.split("@")[0] or str(folder)),
                name=str(_field(person, "name")),
                sis_id=sid,
                email=email,
                submitted_at=created,
                submission_id=str(folder).removeprefix("submission_"),
            )
            student = Student(identity, files, tuple(int(v) for v in re.findall(r"\d+", created)[:6]))
            if identity.key not in latest or student.order > latest[identity.key].order:
                latest[identity.key] = student
    return sorted(latest.values(), key=lambda s: s.identity.key)


def _submitters(info: object) -> list[object]:
    people = _field(info, "submitters")
    return list(people) if isinstance(people, list) and people else [{}]


def _field(info: object, name: str) -> object:
    # Gradescope writes Ruby-style symbol keys (":sid"); accept plain ones too
    if not isinstance(info, dict):
        return ""
    return info.get(f":{name}") or info.get(name) or ""


def results_json(result: SubmissionResult, note: str = "") -> dict[str, Any]:
    """Gradescope's autograder `results.json` for one submission: one test per check, public checks visible,
    hidden ones after the grades are published; messages only, never check code."""
    tests = []
    for exercise in result.exercises:
        for check in exercise.tests:
            tests.append(
                {
                    "name": f"{exercise.id}: {check.name}",
                    "score": check.score,
                    "max_score": check.max_score,
                    "visibility": "after_published" if check.hidden else "visible",
                    "output": check.message,
                }
            )
    output = "\n".join([*([note] if note else []), *result.errors]) or summary_line(result)
    return {
        "score": result.score,
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        # For the instructor (Gradescope keeps extra_data from students): the walls the code ran behind.
        "extra_data": {"walls": result.walls, "missing_walls": list(missing_walls(result.walls))},
    }


def failure_json(message: str) -> dict[str, Any]:
    """results.json for a submission that could not be graded: score 0 and what the student should do."""
    return {"score": 0, "output": message, "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def write_results(path: Path, content: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(content, indent=2) + "\n")


def export(request: ExportRequest) -> list[str]:
    for stem, result in request.results.items():
        write_results(request.out / stem / "results.json", results_json(result))
    return [messages.GRADESCOPE_EXPORT_NOTE.format(n=len(request.results), out=request.out)]


def write_autograder_zip(assignment: str, out: Path) -> str:
    """An autograder zip that runs the native grader on Gradescope: setup.sh and run_autograder at the top, the
    project beside them (installed by setup.sh), a course's own assignment folder with it. Returns the
    assignment's name."""
    from autograder.paths import PROJECT_ROOT, is_builtin
    from autograder.spec import load_assignment

    spec = load_assignment(assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in RUNNER_FILES:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            archive.writestr(info, (RUNNER_DIR / name).read_bytes())
        archive.writestr("assignment.env", f"ASSIGNMENT={spec.name}\n")
        if not is_builtin(spec.folder):  # a course's own folder travels as one more assignment of the project
            if spec.folder not in spec.reference_path.parents:
                raise ValueError(f"{spec.folder}: the reference must live inside the assignment folder to be shipped")
            for file in sorted(p for p in spec.folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                archive.write(file, f"assignments/{spec.name}/{file.relative_to(spec.folder).as_posix()}")
        for part in PROJECT_PARTS:
            path = PROJECT_ROOT / part
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if "__pycache__" not in file.parts:
                    archive.write(file, str(file.relative_to(PROJECT_ROOT)))
    return spec.name
