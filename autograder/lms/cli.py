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


def cmd_push(args: argparse.Namespace, console: Console) -> int | None:
    """Scores and feedback into a live course: connect, read, plan, confirm, post (journalled), summarize."""
    import getpass
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from autograder.lms import push

    results = {stem: r for stem, r in lms.load_results(args.results).items() if r.graded}
    if not results:
        raise lms.LmsError(messages.EXPORT_NOTHING_GRADED.format(results=args.results))
    identities = lms.load_identities(args.identities) if args.identities else ()
    rows = [r for r in lms.grade_rows(results, identities, lms.load_roster(args.roster) if args.roster else ())
            if r.result is not None]  # fmt: skip
    token = push.read_token(args.lms, getpass.getpass if sys.stdin.isatty() else None)
    connection = push.Connection(push.checked_url(args.url), token, str(args.course), str(args.assignment),
                                 retry_wait=args.retry_wait, bulk_from=args.bulk_from)  # fmt: skip
    platform = lms.platform(args.lms)
    journal = push.Journal(push.journal_path(args.results, args.lms, connection))
    try:
        gradebook = platform.connect(connection)  # type: ignore[attr-defined]
        target, lines = push.prepare(gradebook, platform.title, rows, journal, args.attach_feedback,
                                     args.overwrite_changed)  # fmt: skip
        _print_plan(console, platform.title, target, lines)
        posts = [line.post for line in lines if line.post is not None]
        if args.dry_run or not posts:
            console.print("dry run: nothing was posted." if args.dry_run else "Nothing to post.")
            return None
        if not args.yes:
            if not sys.stdin.isatty():
                raise lms.LmsError(messages.PUSH_NOT_CONFIRMED)
            if input(f"Post {len(posts)} grades with feedback to {platform.title}? [y/N] ").strip().lower() != "y":
                console.print("Nothing was posted.")
                return None
        columns = (TextColumn("posting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        posted = 0
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("push", total=len(posts))

            def advance(post: push.Post) -> None:
                nonlocal posted
                posted += 1
                progress.advance(task)

            try:
                push.execute(gradebook, lines, journal, advance)
            except (lms.LmsError, KeyboardInterrupt) as stop:
                progress.stop()
                stopped = messages.PUSH_INTERRUPTED.format(done=posted, total=len(posts), journal=journal.path)
                if isinstance(stop, KeyboardInterrupt):
                    console.print(stopped, markup=False, soft_wrap=True)
                    return 130
                raise lms.LmsError(f"{push.scrub(str(stop), token)}\n{stopped}") from None
        console.print(f"{platform.title}: {push.summary(lines, posted)}.", markup=False, soft_wrap=True)
    except lms.LmsError as error:
        raise lms.LmsError(push.scrub(str(error), token)) from None
    return None


def _print_plan(console: Console, lms_title: str, target: object, lines: list) -> None:
    from autograder.lms.export import num

    console.print(f"Plan for {lms_title} assignment {target.title!r} ({num(target.points_possible)} points), "  # type: ignore[attr-defined]
                  f"{len(lines)} graded students:", markup=False, soft_wrap=True)  # fmt: skip
    for line in lines:
        if line.action == "unchanged":
            continue
        who = f"{line.key} ({line.name})" if line.name and line.name != line.key else line.key
        if line.action in ("new", "changed"):
            old = "" if line.old is None else f"{num(line.old)} -> "
            console.print(f"  {line.action:<10} {who}: {old}{num(line.new or 0)}", markup=False, soft_wrap=True)
        else:
            console.print(f"  {line.action:<10} {who}: {line.why}", markup=False, soft_wrap=True)
    unchanged = sum(line.action == "unchanged" for line in lines)
    if unchanged:
        console.print(f"  {unchanged} unchanged (already posted, same score and feedback)")


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


__all__ = ["cmd_export", "cmd_feedback", "cmd_gradescope", "cmd_gradescope_zip", "cmd_intake", "cmd_push", "cmd_report"]
