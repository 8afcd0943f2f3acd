"""Command line: `autograder grade | check | demo | list | ...`. A thin layer over the library."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autograder import __version__, messages, phases, terminal
from autograder.errors import GradingError
from autograder.lms.platform import PLATFORMS, PUSHABLE
from autograder.options import (
    DEFAULT_COMMON,
    DEFAULT_THRESHOLD,
    GradingOptions,
    add_jobs_option,
    add_run_options,
    options_from_args,
    positive_int,
)
from autograder.paths import EXAMPLES_DIR, builtin_names
from autograder.results import SubmissionResult, one_assignment
from autograder.spec import AssignmentSpec, SpecError, load_assignment
from autograder.text import shown

if TYPE_CHECKING:  # the grading machinery (torch, pytest) is imported by the commands that grade, when they run
    from autograder.grader import Batch, Executor

EXIT_OK = 0
EXIT_INVALID = 1  # `validate` found problems
EXIT_TOOL_ERROR = 2
EXIT_NOT_GRADED = 3  # grading ended, but some submissions were not graded by a fault of the grader's
EXIT_INTERRUPTED = 130
ASSIGNMENT_HELP = "a built-in assignment's name or a path to an assignment folder"
RESULTS_HELP = "results folder written by `autograder grade`"
Handler = Callable[[argparse.Namespace, Console], "int | None"]


# -- the parser -----------------------------------------------------------------------------------------------------
def _out(parser: argparse.ArgumentParser, help: str, **kwargs: object) -> None:
    parser.add_argument("-o", "--out", type=Path, help=help, **kwargs)  # type: ignore[arg-type]


def _assignment(parser: argparse.ArgumentParser, default_help: str = "") -> None:
    parser.add_argument("-a", "--assignment", help=ASSIGNMENT_HELP + default_help)


def _takes_assignment(parser: argparse.ArgumentParser) -> None:
    """`CMD ASSIGNMENT` or `CMD --assignment ASSIGNMENT`: every command that needs one takes both spellings."""
    parser.add_argument("positional_assignment", nargs="?", metavar="ASSIGNMENT", help=ASSIGNMENT_HELP)
    _assignment(parser)
    parser.set_defaults(layout="assignment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade PyTorch coursework notebooks.")
    parser.add_argument("-V", "--version", action="version", version=f"autograder {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _grading_commands(commands)
    _lms_commands(commands)
    _authoring_commands(commands)
    return parser


def _grading_commands(commands: argparse._SubParsersAction) -> None:
    g = commands.add_parser(
        "grade", help="grade submissions of one assignment", usage="autograder grade [options] ASSIGNMENT PATH..."
    )
    g.add_argument("inputs", nargs="+", metavar="ASSIGNMENT PATH", help="the assignment, then notebooks, .py files, "
                   "folders or zips of them (with --assignment: PATH... only)")  # fmt: skip
    _assignment(g)
    _out(g, "results folder, one assignment's (default: results/)", default=Path("results"))
    add_jobs_option(g, os.cpu_count() or 1)
    g.add_argument(
        "--resume", action="store_true", help="keep the results already in --out and grade only what is missing"
    )
    g.add_argument("-q", "--quiet", action="store_true", help="print the table only, not why points were lost")
    g.add_argument("--executor", choices=("local", "dask"), default="local", help="where scoring processes run")
    g.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster)")
    add_run_options(g)
    g.set_defaults(handler=cmd_grade, layout="assignment paths")

    c = commands.add_parser(
        "check",
        help="run the public checks on your own notebook",
        usage="autograder check [options] [ASSIGNMENT] NOTEBOOK",
    )
    c.add_argument("inputs", nargs="+", metavar="[ASSIGNMENT] NOTEBOOK", help="your notebook (.ipynb) or .py file, "
                   "after the assignment if you name it here")  # fmt: skip
    _assignment(c, " (default: the student bundle beside the notebook, else the built-in it matches best)")
    c.add_argument(
        "-e", "--exercise", help="only this exercise's public checks (an exercise id, as `autograder list` names them)"
    )
    c.add_argument(
        "--bundle",
        type=Path,
        help="the student bundle (dist/<a>/student/ or the wheel in it) whose public checks to run "
        "(default: a bundle in the notebook's folder)",
    )
    add_run_options(c)
    c.set_defaults(handler=cmd_check, layout="assignment? notebook")

    d = commands.add_parser("demo", help="grade the bundled example submissions of every assignment")
    _out(d, "results folder (default: results/demo/)", default=Path("results") / "demo")
    add_jobs_option(d, 1)
    d.add_argument("-q", "--quiet", action="store_true", help="print the tables only, not why points were lost")
    add_run_options(d)
    d.set_defaults(handler=cmd_demo)

    ls = commands.add_parser("list", help="list the built-in assignments and their exercises")
    ls.set_defaults(handler=cmd_list)

    sim = commands.add_parser(
        "similarity",
        help="pairs of submissions whose code for an exercise looks copied",
        usage="autograder similarity [options] ASSIGNMENT PATH...",
    )
    sim.add_argument("inputs", nargs="+", metavar="ASSIGNMENT PATH", help="the assignment, then notebooks, folders "
                     "or zips of them, or a results folder (with --assignment: PATH... only)")  # fmt: skip
    _assignment(sim)
    _out(sim, "the HTML page; the CSV is written beside it", required=True)
    sim.add_argument("--template", type=Path, help="the student notebook (default: the built-in's template)")
    sim.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"0 to 1 ({DEFAULT_THRESHOLD})")
    sim.add_argument(
        "--common", type=int, default=DEFAULT_COMMON, help=f"code more submissions share is ignored ({DEFAULT_COMMON})"
    )
    sim.add_argument("--identities", type=Path, help="identities.json of `autograder intake`, or a roster CSV")
    sim.set_defaults(handler=cmd_similarity, layout="assignment paths")


def _lms_commands(commands: argparse._SubParsersAction) -> None:
    i = commands.add_parser("intake", help="unpack an LMS's submissions download: one notebook per student")
    i.add_argument("lms", choices=tuple(PLATFORMS))
    i.add_argument("download", type=Path, help="the LMS's submissions zip (Canvas, Moodle: all submissions)")
    _out(i, "folder for the notebooks and identities.json", required=True)
    i.add_argument("--roster", type=Path, help="roster CSV: names, emails, SIS ids")
    _assignment(i, ": its notebook is picked when a student uploaded several (default: a notebook before .py)")
    # lms/intake.py's DEFAULT_MAX_FILE_MB and DEFAULT_MAX_TOTAL_MB, spelled here for the help text
    i.add_argument(
        "--max-file-mb",
        type=positive_int,
        default=100,
        help="MiB one student's file may expand to; a larger one is not taken in, and said so "
        "(default: 100, as when a notebook is graded)",
    )
    i.add_argument(
        "--max-total-mb",
        type=positive_int,
        default=2048,
        help="MiB all the files taken in may expand to; a larger download is refused, nothing written (default: 2048)",
    )
    i.set_defaults(handler=_lms("cmd_intake"))

    e = commands.add_parser("export", help="grades for an LMS from a results folder")
    e.add_argument("format", choices=tuple(PLATFORMS), help="the LMS to write grades for")
    e.add_argument("results", type=Path, help=RESULTS_HELP)
    _assignment(e, " (default: the one the results name)")
    _out(e, "CSV file (canvas, moodle) or folder (gradescope)", required=True)
    e.add_argument("--identities", type=Path, help="identities.json written by `autograder intake`")
    e.add_argument("--roster", type=Path, help="roster CSV: names and ids joined, groups mapped, non-submitters added")
    e.add_argument("--column", help="grade column, for Canvas exactly as its export names it: 'Lab 1 (12345)'")
    e.add_argument(
        "--key",
        choices=("email", "username", "idnumber", "participant"),
        default="email",
        help="Moodle: match students by (participant: the assignment's grading worksheet, for blind marking)",
    )
    e.add_argument(
        "--missing",
        help="grade for students without a submission (default: Canvas blank, left untouched; Moodle left out, "
        "as a blank clears a Moodle grade)",
    )
    e.set_defaults(handler=_lms("cmd_export"))

    p = commands.add_parser(
        "push",
        help="post scores and feedback to a Canvas or Moodle course (its API)",
        description="Reads the gradebook, prints the plan, and posts after you confirm. The token comes from "
        "AUTOGRADER_CANVAS_TOKEN / AUTOGRADER_MOODLE_TOKEN or a prompt.",
    )
    p.add_argument("lms", choices=PUSHABLE, help="the LMS to post to")
    p.add_argument("results", type=Path, help=RESULTS_HELP)
    p.add_argument("--url", required=True, help="the LMS's address, https://... (e.g. https://canvas.example.edu)")
    p.add_argument("--course", required=True, help="the course's id (Canvas: /courses/<id>; Moodle: course id)")
    p.add_argument("--assignment", required=True, help="the assignment's id (Canvas: /assignments/<id>; Moodle: "
                   "the assignment id or its course module id, view.php?id=<id>)")  # fmt: skip
    p.add_argument("--identities", type=Path, help="identities.json written by `autograder intake`")
    p.add_argument("--roster", type=Path, help="roster CSV: names and ids joined, groups mapped")
    p.add_argument("--dry-run", action="store_true", help="print the plan; post nothing")
    p.add_argument("--yes", action="store_true", help="post without asking (scripts)")
    p.add_argument("--overwrite-changed", action="store_true",
                   help="also replace grades a person changed in the LMS after the last push")  # fmt: skip
    p.add_argument("--attach-feedback", type=Path, metavar="FOLDER",
                   help="Canvas: attach each student's page from this `autograder feedback` folder")  # fmt: skip
    p.add_argument("--bulk-from", type=positive_int, default=50,
                   help="Canvas: from this many posts on, send them in bulk updates (default: 50)")  # fmt: skip
    p.add_argument("--retry-wait", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(handler=_lms("cmd_push"))

    f = commands.add_parser("feedback", help="a Markdown and an HTML feedback page per submission")
    f.add_argument("results", type=Path, help=RESULTS_HELP)
    _assignment(f, " (default: the one the results name)")
    _out(f, "folder for <submission>.md and <submission>.html", required=True)
    f.add_argument("--identities", type=Path, help="identities.json of `autograder intake`: pages name the student")
    f.set_defaults(handler=_lms("cmd_feedback"))

    r = commands.add_parser("report", help="one HTML class report: score histogram, failure rate of every check")
    r.add_argument("results", type=Path, help=RESULTS_HELP)
    _assignment(r, " (default: the one the results name)")
    _out(r, "the HTML file to write", required=True)
    r.set_defaults(handler=_lms("cmd_report"))

    # `gradescope` is the old name, kept: Gradescope's run_autograder and existing autograder zips call it.
    gs = commands.add_parser(
        "gradescope-run", aliases=["gradescope"], help="run as Gradescope's run_autograder: grade one submission"
    )
    _takes_assignment(gs)
    gs.add_argument("--submission-dir", type=Path, default=Path("/autograder/submission"),
                    help="where Gradescope put the submission (default: /autograder/submission)")  # fmt: skip
    gs.add_argument("--results-file", type=Path, default=Path("/autograder/results/results.json"),
                    help="where Gradescope reads the results (default: /autograder/results/results.json)")  # fmt: skip
    add_run_options(gs)
    gs.set_defaults(handler=_lms("cmd_gradescope"))

    gz = commands.add_parser("gradescope-zip", help="an autograder zip that runs the native grader on Gradescope")
    _takes_assignment(gz)
    _out(gz, "the zip to write", required=True)
    gz.set_defaults(handler=_lms("cmd_gradescope_zip"))


def _authoring_commands(commands: argparse._SubParsersAction) -> None:
    b = commands.add_parser("build", help="otter packaging: student notebooks and autograder zips")
    b.add_argument(
        "assignments", nargs="*", default=list(builtin_names()), help="names or folders (default: every built-in)"
    )
    _out(b, "writes OUT/<a>/student/ and OUT/<a>/autograder/", required=True)
    b.add_argument(
        "--no-trusted-scores",
        action="store_true",
        help="leave out the NativeScores plugin (scores then come from the student's kernel; see README)",
    )
    b.set_defaults(handler=cmd_build)

    n = commands.add_parser("new", help="write a working one-exercise assignment folder to start from")
    n.add_argument("name", help="the assignment's name (a Python identifier); the folder is DIR/NAME")
    n.add_argument("--dir", type=Path, default=Path("."), help="where to create it (default: here)")
    n.add_argument("--from", dest="tutorial", type=Path, metavar="TUTORIAL",
                   help="a tutorial notebook: its NotImplementedError exercises become the exercises, its own calls "
                   "the checks")  # fmt: skip
    n.add_argument("--solution", type=Path, help="the tutorial's solution notebook (default: its `# to_remove "
                   "solution` cells)")  # fmt: skip
    n.set_defaults(handler=cmd_new)

    v = commands.add_parser("validate", help="prove an assignment: reference full marks, template zero, points")
    _takes_assignment(v)
    v.add_argument("--mutants", action="store_true",
                   help="also grade realistic wrong versions of the reference: how many the checks catch")  # fmt: skip
    v.add_argument("--min-score", type=float, default=0.0, metavar="FRACTION",
                   help="with --mutants: exit 1 below this share of mutants caught (e.g. 0.8)")  # fmt: skip
    v.add_argument("--max-mutants", type=positive_int, default=24, metavar="N",
                   help="with --mutants: mutants per exercise at most, spread over its code (default: 24)")  # fmt: skip
    add_jobs_option(v, default=2)
    v.set_defaults(handler=cmd_validate)


class _UsageError(ValueError):
    """A command line argparse accepts but that does not say what to do; reported as argparse reports its own."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse, then settle which positional is the assignment (`grade mlp subs/` = `grade -a mlp subs/`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    layout = getattr(args, "layout", "")
    try:
        if layout == "assignment":
            args.assignment = _one_assignment(args.positional_assignment, args.assignment)
        elif layout == "assignment paths":
            args.assignment, args.paths = _assignment_and_paths(args)
        elif layout == "assignment? notebook":
            args.assignment, args.notebook = _assignment_and_notebook(args)
    except _UsageError as exc:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(str(exc))  # usage of that command, exit status 2
    return args


def _one_assignment(positional: str | None, option: str | None) -> str:
    if positional and option and positional != option:
        raise _UsageError(messages.ASSIGNMENT_TWICE.format(first=positional, second=option))
    if not (positional or option):
        raise _UsageError("the assignment is missing: give ASSIGNMENT or --assignment A")
    return positional or option  # type: ignore[return-value]


def _assignment_and_paths(args: argparse.Namespace) -> tuple[str, list[Path]]:
    inputs: list[str] = args.inputs
    if args.assignment:
        return args.assignment, [Path(p) for p in inputs]
    if len(inputs) < 2:
        raise _UsageError(f"{args.command} needs the assignment, then at least one PATH: e.g. {args.command} mlp subs/")
    return inputs[0], [Path(p) for p in inputs[1:]]


def _assignment_and_notebook(args: argparse.Namespace) -> tuple[str | None, Path]:
    inputs: list[str] = args.inputs
    if len(inputs) > 2:
        usage = "one NOTEBOOK, optionally after its ASSIGNMENT"
        raise _UsageError(messages.TOO_MANY_INPUTS.format(command=args.command, usage=usage, count=len(inputs)))
    if len(inputs) == 2:
        return _one_assignment(inputs[0], args.assignment), Path(inputs[1])
    return args.assignment, Path(inputs[0])


# -- running a command ----------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    phases.mark("cli")
    args = parse_args(argv)
    console = terminal.make_console()
    try:
        return args.handler(args, console) or EXIT_OK
    except (SpecError, GradingError, ValueError, OSError) as exc:
        error = terminal.make_console(stderr=True)
        error.print("[bold red]error:[/] ", end="", markup=True)
        error.print(str(exc), markup=False, soft_wrap=True)
        return EXIT_TOOL_ERROR
    except KeyboardInterrupt:
        terminal.make_console(stderr=True).print("interrupted; the results written so far are kept")
        return EXIT_INTERRUPTED


def entry() -> None:
    """The `autograder` command and `python -m autograder`: `main`, then a quick exit."""
    exit_now(main())


def exit_now(code: int) -> None:
    """End this process without tearing the interpreter down: freeing torch's modules and memory one object at a
    time took ~0.6 s after every grading command (bench.startup), and nothing needs it. What must run at exit runs
    first: atexit's handlers (workers stopped, scratch and socket folders removed, multiprocessing's finalizers,
    the fork server told to end) and the output flushed. Where a thread that is not a daemon still runs (a
    library's), the normal exit waits for it instead."""
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _lms(name: str) -> Handler:
    """A command of autograder.lms.cli, imported when run. Those that read a results folder first make sure it
    holds one assignment's results: a report or an export never mixes two."""

    def run(args: argparse.Namespace, console: Console) -> int | None:
        from autograder.lms import cli as lms_cli

        if isinstance(getattr(args, "results", None), Path) and args.results.is_dir():
            one_assignment(args.results)
        return getattr(lms_cli, name)(args, console)  # type: ignore[no-any-return]

    return run


def run_with_progress(
    console: Console,
    assignment: str | Path,
    paths: list[Path],
    out: Path | None,
    options: GradingOptions,
    jobs: int,
    resume: bool = False,
    executor: Executor | None = None,
) -> Batch:
    from autograder.grader import grade

    phases.mark("imported")
    spec = load_assignment(assignment)
    columns = (
        TextColumn(f"grading {spec.name}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}", markup=False),  # a file name: data, never markup
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("grade", total=None, last="")

        def started(total: int) -> None:
            progress.update(task, total=total)

        def graded(result: SubmissionResult) -> None:
            phases.mark("result")
            progress.update(task, advance=1, last=shown(result.submission))

        batch = grade(
            spec,
            paths,
            out_dir=out,
            options=options,
            jobs=jobs,
            on_result=graded,
            on_start=started,
            resume=resume,
            executor=executor,
        )
    phases.mark("written")
    if batch.reused:
        console.print(f"{len(batch.reused)} submission(s) already graded in {out}/ were kept (--resume).")
    note = walls_note(batch.results)
    if note:
        console.print(note, style="yellow", markup=False, soft_wrap=True)
    return batch


def walls_note(results: Sequence[SubmissionResult]) -> str:
    """The note naming the walls that some of `results` ran without ("" where all had them all)."""
    from autograder.runner import missing_walls

    missing: dict[str, int] = {}
    for result in results:
        for wall in missing_walls(result.walls):
            missing[wall] = missing.get(wall, 0) + 1
    return messages.missing_walls_note(missing, len(results)) if missing else ""


def print_batch(console: Console, batch: Batch, quiet: bool) -> None:
    """The table, then (unless quiet) one line per exercise that lost points, saying why; then, for the
    instructor, the load problems no lost point depended on, as counts, and the modules this environment lacks."""
    spec = batch.spec
    table = terminal.summary_table(
        spec.exercise_ids, batch.results, title=f"{spec.name}: {spec.title}", plain=terminal.is_plain(console)
    )
    terminal.print_table(console, table)
    lines = [] if quiet else terminal.feedback_lines(batch.results)
    if lines:
        console.print(messages.LOST_POINTS, markup=False, soft_wrap=True)
    for line in lines:
        console.print(f"  {line}", markup=False, soft_wrap=True)
    notes = terminal.note_counts(batch.results)
    if notes:
        console.print(messages.NOTES_SUMMARY.format(lines=notes), markup=False, soft_wrap=True)
    lacking = terminal.lacking_modules(batch.results)
    if lacking:
        console.print(messages.MISSING_MODULES.format(modules=lacking), style="yellow", markup=False, soft_wrap=True)


def not_graded_note(console: Console, results: Sequence[SubmissionResult], out: Path | None) -> int | None:
    """Say which submissions the grader failed (never a student's zero) and how to grade them; the exit status."""
    ungraded = [r for r in results if not r.graded]
    if not ungraded:
        return None
    names = ", ".join(shown(r.submission) for r in ungraded[:10]) + (", ..." if len(ungraded) > 10 else "")
    text = messages.BATCH_NOT_GRADED.format(n=len(ungraded), names=names, problem=ungraded[0].not_graded or "")
    console.print(text + (f" {messages.RESUME_HINT.format(out=out)}" if out else ""), style="yellow",
                  markup=False, soft_wrap=True)  # fmt: skip
    return EXIT_NOT_GRADED


def start_fork_server(specs: Sequence[AssignmentSpec], jobs: int, workers: int | None = None) -> None:
    """The fork server starts first thing, importing torch and the course's libraries for the workers (and, with
    --jobs N, the grader for the scoring processes) while this process imports the grader itself: on two cores
    the two overlap instead of following each other (bench.startup shows the phases)."""
    from autograder.runner import FORK_SERVER_PRELOAD, SCORING_PRELOAD, preload_modules, start_early

    for spec in specs:
        preload_modules(spec.preload)
    start_early([FORK_SERVER_PRELOAD, *([SCORING_PRELOAD] if jobs > 1 else [])], workers)


def cmd_grade(args: argparse.Namespace, console: Console) -> int | None:
    if args.executor != "dask":  # a cluster's scoring processes start their own, where they run
        from autograder.submission import load_submissions

        with contextlib.suppress(Exception):  # a listing that fails is grade()'s to report, with its message
            workers = len(load_submissions([p for p in args.paths if Path(p).exists()], read=False))
            start_fork_server([load_assignment(args.assignment)], min(args.jobs, workers), workers)
    from autograder.grader import DaskExecutor

    options = options_from_args(args)
    executor: Executor | None = None
    if args.executor == "dask":
        executor = DaskExecutor(args.scheduler, args.jobs)
    elif args.scheduler:
        raise ValueError("--scheduler needs --executor dask")
    batch = run_with_progress(console, args.assignment, args.paths, args.out, options, args.jobs, args.resume, executor)
    print_batch(console, batch, args.quiet)
    if batch.overwritten:
        names = ", ".join(batch.overwritten)
        console.print(messages.REPLACED_RESULTS.format(names=names), markup=False, soft_wrap=True)
    if batch.untouched:
        n = len(batch.untouched)
        console.print(messages.EARLIER_RESULTS.format(n=n, out=args.out), markup=False, soft_wrap=True)
    console.print(f"Results written to {args.out}/ (grades.csv and one JSON per submission).", markup=False)
    return not_graded_note(console, batch.results, args.out)


def cmd_demo(args: argparse.Namespace, console: Console) -> int | None:
    start_fork_server([load_assignment(name) for name in builtin_names()], args.jobs, workers=20)
    options = options_from_args(args)
    status = None
    for name in builtin_names():
        batch = run_with_progress(console, name, [EXAMPLES_DIR / name], args.out / name, options, args.jobs)
        print_batch(console, batch, args.quiet)
        status = not_graded_note(console, batch.results, None) or status
        console.print()
    console.print(f"Results written to {args.out}/<assignment>/.", markup=False)
    return status


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    """A student's self-check. Reading the notebook and naming the assignment are library calls that raise one
    clear ValueError (exit 2), so that other front ends (a student bundle) can reuse them."""
    from autograder.student.runtime import BundleNotFound, bundle_beside, check_lines, check_notebook

    submission = terminal.self_check_submission(args.notebook)
    bundle = args.bundle or (None if args.assignment else bundle_beside(args.notebook))
    if bundle is None:
        spec = load_assignment(terminal.self_check_assignment(submission, args.assignment))
        start_fork_server([spec], jobs=1, workers=1)
    from autograder.grader import grade_chunk

    phases.mark("imported")
    if bundle is not None:  # what the student received: public checks and recorded answers, nothing hidden
        try:
            result = check_notebook(args.notebook, bundle, args.exercise, options_from_args(args))
        except BundleNotFound as exc:
            raise ValueError(str(exc)) from exc
        console.print(f"Public checks of the bundle {bundle} on {args.notebook}:", markup=False, soft_wrap=True)
    else:
        spec = load_assignment(terminal.self_check_assignment(submission, args.assignment))
        exercises = [terminal.self_check_exercise(spec, args.exercise)] if args.exercise else None
        console.print(f"Public checks of '{spec.name}' on {args.notebook}:", markup=False, soft_wrap=True)
        [result] = grade_chunk(spec, [submission], options_from_args(args), public_only=True, exercises=exercises)
    for line in check_lines(result):
        console.print(line, markup=False, soft_wrap=True)
    return 0 if result.graded else EXIT_NOT_GRADED


def cmd_build(args: argparse.Namespace, console: Console) -> None:
    from autograder.otterkit.build import build

    for name in args.assignments:  # every name first: a typo in the last must not cost the first's build
        load_assignment(name)
    for name, (student, bundle) in build(args.assignments, args.out, not args.no_trusted_scores).items():
        console.print(f"{name}: student notebook {student}, autograder zip {bundle}", markup=False, soft_wrap=True)


def cmd_new(args: argparse.Namespace, console: Console) -> None:
    from autograder.authoring import new_assignment

    if args.tutorial is not None:
        return _new_from_tutorial(args, console)
    if args.solution is not None:
        raise _UsageError("--solution goes with --from TUTORIAL.ipynb")
    folder = new_assignment(args.name, args.dir)
    console.print(
        f"Wrote {folder}/: assignment.toml, reference.py, checks/test_softmax.py.", markup=False, soft_wrap=True
    )
    console.print(f"Next: autograder validate {folder}", markup=False, soft_wrap=True)


def _new_from_tutorial(args: argparse.Namespace, console: Console) -> None:
    from autograder.tutorial import generate

    console.print(f"Reading {args.tutorial} and running its solution to record its calls...", markup=False)
    made = generate(args.name, args.tutorial, args.dir, args.solution)
    console.print(f"Wrote {made.folder}/ with {len(made.exercises)} exercises:", markup=False, soft_wrap=True)
    for exercise in made.exercises:
        console.print(f"  {exercise.name} ({exercise.kind}): {len(exercise.calls)} checks from the tutorial's calls",
                      markup=False, soft_wrap=True)  # fmt: skip
    for note in made.notes:
        console.print(f"  note: {note}", markup=False, soft_wrap=True)
    console.print(f"Next: edit the checks, then autograder validate {made.folder}", markup=False, soft_wrap=True)


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from autograder.authoring import validate

    validation = validate(args.assignment)
    name = f"{validation.spec.name} ({validation.spec.folder})"
    if validation.ok:
        console.print(
            f"{name}: valid. The reference scores {validation.reference_score:g} of {validation.spec.max_score:g}, "
            "the template 0, and every exercise has a public check.",
            markup=False,
            soft_wrap=True,
        )
        return _mutants(args, console) if args.mutants else EXIT_OK
    console.print(f"{name}: {len(validation.problems)} problem(s):", markup=False, soft_wrap=True)
    for problem in validation.problems:
        console.print(f"- {problem}", markup=False, soft_wrap=True)
    return EXIT_INVALID


def _mutants(args: argparse.Namespace, console: Console) -> int:
    """The mutation score of a valid assignment: per exercise, and the survivors as one-line diffs."""
    from autograder.mutants import mutation_scores

    console.print("Grading mutants of the reference (one realistic mistake each)...", markup=False)
    scores = mutation_scores(args.assignment, args.max_mutants, jobs=args.jobs)
    caught = sum(len(s.caught) for s in scores)
    real = caught + sum(len(s.survived) for s in scores)
    for s in scores:
        counted = len(s.caught) + len(s.survived)
        console.print(f"  {s.exercise}: {len(s.caught)} of {counted} caught ({s.score:.0%}), "
                      f"{len(s.equivalent)} equivalent", markup=False, soft_wrap=True)  # fmt: skip
        for mutant in s.survived:
            console.print(f"    survived: {mutant.diff}", markup=False, soft_wrap=True)
        for mutant in s.equivalent:
            console.print(f"    equivalent: {mutant.diff}", markup=False, soft_wrap=True)
    total = caught / real if real else 1.0
    console.print(f"Mutation score: {caught} of {real} caught ({total:.0%}); equivalent mutants (same answers on "
                  "every call the checks made) are not counted.", markup=False, soft_wrap=True)  # fmt: skip
    if total < args.min_score:
        console.print(f"Below --min-score {args.min_score:g}: add checks for the survivors above.", markup=False)
        return EXIT_INVALID
    return EXIT_OK


def cmd_similarity(args: argparse.Namespace, console: Console) -> None:
    from autograder import similarity

    spec = load_assignment(args.assignment)
    template = args.template or similarity.default_template(spec)
    found = similarity.compare_class(spec, similarity.load_class(args.paths), template, args.threshold, args.common)
    names = similarity.display_names(args.identities) if args.identities else None
    page, table = similarity.write_similarity(found, args.out, names)
    summary = f"{len(found.pairs)} pairs at or above {found.threshold:g}: {page}, {table}"
    console.print(summary, markup=False, soft_wrap=True)


def cmd_list(args: argparse.Namespace, console: Console) -> None:
    for name in builtin_names():
        spec = load_assignment(name)
        exercises = ", ".join(f"{e.id} ({e.points:g})" for e in spec.exercises)
        console.print(f"{spec.name:10} {spec.title}\n{'':10} {exercises}", markup=False)
