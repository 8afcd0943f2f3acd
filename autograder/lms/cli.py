"""The command-line side of intake, exports, feedback pages, the class report and the Gradescope runner."""

from __future__ import annotations

import argparse

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
    request = lms.ExportRequest(
        results=results,
        out=args.out,
        identities=lms.load_identities(args.identities) if args.identities else (),
        roster=lms.load_roster(args.roster) if args.roster else (),
        column=args.column or "",
        key=args.key,
        missing=args.missing,
    )
    for line in lms.platform(args.format).export(request):
        console.print(line, markup=False, soft_wrap=True)


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
    from autograder.lms import gradescope

    spec = load_assignment(args.assignment)
    files = sorted(p.relative_to(args.submission_dir).as_posix() for p in args.submission_dir.rglob("*") if p.is_file())
    chosen, skipped = lms.choose_file(files, prefer=spec.name)
    if chosen is None:
        message = messages.GRADESCOPE_NOTHING_GRADABLE.format(files=", ".join(files) or "no files", expected=spec.name)
        gradescope.write_results(args.results_file, gradescope.failure_json(message))
        console.print(message, markup=False, soft_wrap=True)
        return
    note = messages.GRADESCOPE_SKIPPED.format(file=chosen, skipped=", ".join(skipped)) if skipped else ""
    submission = args.submission_dir / chosen
    try:
        [result] = grade(spec, [submission], out_dir=None, options=options_from_args(args), jobs=1).results
    except Exception as exc:  # the grader itself failed: still a results.json the student can act on
        message = messages.GRADESCOPE_NOT_GRADED.format(file=chosen, problem=f"{type(exc).__name__}: {exc}")
        gradescope.write_results(args.results_file, gradescope.failure_json(message))
        raise
    if not result.graded:  # the grader's own fault: the student is told so, not given a zero for it
        message = messages.GRADESCOPE_NOT_GRADED.format(file=chosen, problem=result.not_graded)
        gradescope.write_results(args.results_file, gradescope.failure_json(message))
        raise GradingError(message)
    gradescope.write_results(args.results_file, gradescope.results_json(result, note))
    console.print(f"{chosen}: {lms.summary_line(result)}", markup=False, soft_wrap=True)
    missing = missing_walls(result.walls)
    if missing:  # on the autograder's output, which Gradescope shows the instructor (not the student)
        console.print(messages.missing_walls_note(dict.fromkeys(missing, 1), 1), markup=False, soft_wrap=True)


def cmd_gradescope_zip(args: argparse.Namespace, console: Console) -> None:
    from autograder.lms import gradescope

    name = gradescope.write_autograder_zip(args.assignment, args.out)
    console.print(f"Gradescope autograder zip for {name} written to {args.out}.")


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
