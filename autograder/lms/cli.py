"""The command-line side of intake, exports, feedback pages, the class report and the Gradescope runner."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from autograder import lms, messages, pages
from autograder.options import options_from_args
from autograder.results import atomic_write
from autograder.runner import missing_walls
from autograder.spec import load_assignment


def cmd_intake(args: argparse.Namespace, console: Console) -> None:
    prefer = load_assignment(args.assignment).name if getattr(args, "assignment", None) else ""
    refused: dict[str, str] = {}  # key -> why the student's file was not taken in (over --max-file-mb)
    identities = lms.intake(args.lms, args.download, args.out, args.roster, prefer, max_file_mb=args.max_file_mb,
                            max_total_mb=args.max_total_mb, report=refused.__setitem__)  # fmt: skip
    graded = [i for i in identities if i.file]
    late = sum(i.late for i in graded)
    console.print(
        f"{len(graded)} students' submissions unpacked into {args.out}/ ({late} late); "
        f"identities in {args.out / lms.IDENTITIES_FILE}.",
        markup=False,
        soft_wrap=True,
    )
    for i in identities:
        if i.key in refused:
            line = refused[i.key]
        elif not i.file:
            line = messages.NO_GRADABLE_FILE.format(key=i.key, files=", ".join(i.skipped) or "no files")
        elif i.skipped:
            line = messages.SKIPPED_FILES.format(key=i.key, file=i.file, skipped=", ".join(i.skipped))
        else:
            continue
        console.print(line, markup=False, soft_wrap=True)


def cmd_export(args: argparse.Namespace, console: Console) -> None:
    results = lms.load_results(args.results)
    _title(results, args.assignment)  # refuses results of another assignment than the one named
    ungraded = sorted(stem for stem, result in results.items() if not result.graded)
    if ungraded:  # no grade at all rather than a zero: the grader, not the student, failed them
        console.print(messages.EXPORT_NOT_GRADED.format(n=len(ungraded), names=", ".join(ungraded[:10])),
                      markup=False, soft_wrap=True)  # fmt: skip
        results = {stem: result for stem, result in results.items() if result.graded}
        if not results:
            raise lms.LmsError(messages.EXPORT_NOTHING_GRADED.format(results=args.results))
    if args.format == "gradescope":
        for stem, result in results.items():
            atomic_write(args.out / stem / "results.json", json.dumps(lms.gradescope_results(result), indent=2) + "\n")
        console.print(
            messages.GRADESCOPE_EXPORT_NOTE.format(n=len(results), out=args.out), markup=False, soft_wrap=True
        )
        return
    identities = lms.load_identities(args.identities) if args.identities else []
    roster = lms.load_roster(args.roster) if args.roster else []
    rows = lms.grade_rows(results, identities, roster)
    first = next(iter(results.values()))
    column = args.column or first.assignment
    if args.format == "canvas":
        text = lms.canvas_csv(rows, column, first.max_score, args.missing or "")
    else:
        text = lms.moodle_csv(rows, column, args.key, args.missing)
    atomic_write(args.out, text)
    missing = sum(row.result is None for row in rows)
    console.print(
        f"{args.format} grades for {len(rows)} students ({missing} without a submission) in {args.out}.",
        markup=False,
        soft_wrap=True,
    )
    if args.format == "moodle" and (n := lms.left_out(rows, args.missing)):
        console.print(messages.MOODLE_BLANK_LEFT_OUT.format(n=n), markup=False, soft_wrap=True)


def cmd_feedback(args: argparse.Namespace, console: Console) -> None:
    results = lms.load_results(args.results)
    ids = getattr(args, "identities", None)
    names = {i.key: i.name for i in lms.load_identities(ids) if i.name} if ids else {}
    written = pages.write_feedback(results, args.out, _title(results, args.assignment), names)
    console.print(f"{len(written) // 2} feedback pages (Markdown and HTML) written to {args.out}/.")


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    results = lms.load_results(args.results)
    atomic_write(args.out, pages.class_report_html(list(results.values()), _title(results, args.assignment)))
    console.print(f"Class report of {len(results)} submissions written to {args.out}.")


def cmd_gradescope(args: argparse.Namespace, console: Console) -> None:
    """Grade the one submission Gradescope put in --submission-dir; write its results.json, whatever happens:
    Gradescope shows a missing results.json as an autograder failure, not as a message to the student."""
    from autograder.grader import GradingError, grade

    spec = load_assignment(args.assignment)
    files = sorted(p.relative_to(args.submission_dir).as_posix() for p in args.submission_dir.rglob("*") if p.is_file())
    chosen, skipped = lms.choose_file(files, prefer=spec.name)
    if chosen is None:
        message = messages.GRADESCOPE_NOTHING_GRADABLE.format(files=", ".join(files) or "no files", expected=spec.name)
        atomic_write(args.results_file, json.dumps(lms.gradescope_failure(message), indent=2) + "\n")
        console.print(message, markup=False, soft_wrap=True)
        return
    note = messages.GRADESCOPE_SKIPPED.format(file=chosen, skipped=", ".join(skipped)) if skipped else ""
    submission = args.submission_dir / chosen
    try:
        [result] = grade(spec, [submission], out_dir=None, options=options_from_args(args), jobs=1).results
    except Exception as exc:  # the grader itself failed: still a results.json the student can act on
        message = messages.GRADESCOPE_NOT_GRADED.format(file=chosen, problem=f"{type(exc).__name__}: {exc}")
        atomic_write(args.results_file, json.dumps(lms.gradescope_failure(message), indent=2) + "\n")
        raise
    if not result.graded:  # the grader's own fault: the student is told so, not given a zero for it
        message = messages.GRADESCOPE_NOT_GRADED.format(file=chosen, problem=result.not_graded)
        atomic_write(args.results_file, json.dumps(lms.gradescope_failure(message), indent=2) + "\n")
        raise GradingError(message)
    atomic_write(args.results_file, json.dumps(lms.gradescope_results(result, note), indent=2) + "\n")
    console.print(f"{chosen}: {lms.summary_line(result)}", markup=False, soft_wrap=True)
    missing = missing_walls(result.walls)
    if missing:  # on the autograder's output, which Gradescope shows the instructor (not the student)
        console.print(messages.missing_walls_note(dict.fromkeys(missing, 1), 1), markup=False, soft_wrap=True)


GRADESCOPE_DIR = Path(__file__).with_name("gradescope")  # the scripts Gradescope runs, beside this module
GRADESCOPE_FILES = ("setup.sh", "run_autograder")
PROJECT_PARTS = ("pyproject.toml", "README.md", "autograder", "assignments", "reference_solutions")


def cmd_gradescope_zip(args: argparse.Namespace, console: Console) -> None:
    """setup.sh and run_autograder at the top, the project beside them (installed by setup.sh)."""
    import zipfile

    from autograder.paths import PROJECT_ROOT, is_builtin

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in GRADESCOPE_FILES:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            archive.writestr(info, (GRADESCOPE_DIR / name).read_bytes())
        spec = load_assignment(args.assignment)
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
    console.print(f"Gradescope autograder zip for {spec.name} written to {args.out}.")


def _title(results: dict, assignment: str | None = None) -> str:
    """'<name>: <title>' of the assignment given (a name or a folder), else of the one the results name."""
    name = next(iter(results.values())).assignment
    try:
        spec = load_assignment(assignment or name)
    except ValueError:
        return str(name)
    if spec.name != name:
        raise ValueError(f"{assignment}: the results are of assignment {name!r}, not {spec.name!r}")
    return f"{name}: {spec.title}"


__all__ = ["cmd_export", "cmd_feedback", "cmd_gradescope", "cmd_gradescope_zip", "cmd_intake", "cmd_report"]
