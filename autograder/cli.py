"""Command line: `autograder grade | check | demo | list`. A thin layer over the library."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autograder import messages, terminal
from autograder.grader import DaskExecutor, Executor, GradingError, grade
from autograder.options import GradingOptions, add_run_options, options_from_args
from autograder.paths import EXAMPLES_DIR, builtin_names
from autograder.results import SubmissionResult
from autograder.similarity import DEFAULT_COMMON, DEFAULT_THRESHOLD
from autograder.spec import SpecError, load_assignment

EXIT_OK = 0
EXIT_INVALID = 1  # `validate` found problems
EXIT_TOOL_ERROR = 2
ASSIGNMENT_HELP = "a built-in assignment's name or a path to an assignment folder"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade PyTorch coursework notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)

    g = commands.add_parser("grade", help="grade submissions of one assignment")
    g.add_argument("assignment", help=ASSIGNMENT_HELP)
    g.add_argument("paths", nargs="+", type=Path, help="notebooks, .py files, folders or zips of them")
    g.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results/)")
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="scoring processes (default: cores)")
    g.add_argument(
        "--resume", action="store_true", help="keep the results already in --out and grade only what is missing"
    )
    g.add_argument("--executor", choices=("local", "dask"), default="local", help="where scoring processes run")
    g.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster)")
    add_run_options(g)

    c = commands.add_parser("check", help="run the public checks on your own notebook")
    c.add_argument("notebook", type=Path)
    c.add_argument("--assignment", help=ASSIGNMENT_HELP + " (default: the built-in the notebook matches best)")
    add_run_options(c)

    d = commands.add_parser("demo", help="grade the bundled example submissions of every assignment")
    d.add_argument("--out", type=Path, default=Path("results") / "demo")
    d.add_argument("--jobs", type=int, default=1)
    add_run_options(d)

    commands.add_parser("list", help="list the built-in assignments and their exercises")

    i = commands.add_parser("intake", help="unpack a Canvas or Gradescope download: one notebook per student")
    i.add_argument("lms", choices=("canvas", "gradescope"))
    i.add_argument("download", type=Path, help="the LMS's submissions zip")
    i.add_argument("--out", type=Path, required=True, help="folder for the notebooks and identities.json")
    i.add_argument("--roster", type=Path, help="roster CSV: names, emails, SIS ids")

    e = commands.add_parser("export", help="grades for an LMS from a results folder")
    e.add_argument("format", choices=("gradescope", "canvas", "moodle"))
    e.add_argument("results", type=Path, help="results folder written by `autograder grade`")
    e.add_argument("--assignment", help=ASSIGNMENT_HELP + " (default: the one the results name)")
    e.add_argument("--out", type=Path, required=True, help="CSV file (canvas, moodle) or folder (gradescope)")
    e.add_argument("--identities", type=Path, help="identities.json written by `autograder intake`")
    e.add_argument("--roster", type=Path, help="roster CSV; its students without a submission are listed too")
    e.add_argument("--column", help="grade column, for Canvas exactly as its export names it: 'Lab 1 (12345)'")
    e.add_argument("--key", choices=("email", "username"), default="email", help="Moodle: match students by")
    e.add_argument("--missing", default="", help="grade for roster students without a submission (default: blank)")

    f = commands.add_parser("feedback", help="a Markdown and an HTML feedback page per submission")
    f.add_argument("results", type=Path)
    f.add_argument("--assignment", help=ASSIGNMENT_HELP + " (default: the one the results name)")
    f.add_argument("--out", type=Path, required=True)

    r = commands.add_parser("report", help="one HTML class report: score histogram, failure rate of every check")
    r.add_argument("results", type=Path)
    r.add_argument("--assignment", help=ASSIGNMENT_HELP + " (default: the one the results name)")
    r.add_argument("--out", type=Path, required=True, help="the HTML file to write")

    gs = commands.add_parser("gradescope", help="run as Gradescope's run_autograder: grade one submission")
    gs.add_argument("assignment", help=ASSIGNMENT_HELP)
    gs.add_argument("--submission-dir", type=Path, default=Path("/autograder/submission"))
    gs.add_argument("--results-file", type=Path, default=Path("/autograder/results/results.json"))
    add_run_options(gs)

    b = commands.add_parser("build", help="otter packaging: student notebooks and autograder zips")
    b.add_argument(
        "assignments", nargs="*", default=list(builtin_names()), help="names or folders (default: every built-in)"
    )
    b.add_argument("--out", type=Path, required=True, help="writes OUT/<a>/student/ and OUT/<a>/autograder/")
    b.add_argument(
        "--no-trusted-scores",
        action="store_true",
        help="leave out the NativeScores plugin (scores then come from the student's kernel; see README)",
    )

    gz = commands.add_parser("gradescope-zip", help="an autograder zip that runs the native grader on Gradescope")
    gz.add_argument("assignment", help=ASSIGNMENT_HELP)
    gz.add_argument("--out", type=Path, required=True, help="the zip to write")
    sim = commands.add_parser("similarity", help="pairs of submissions whose code for an exercise looks copied")
    sim.add_argument("assignment")
    sim.add_argument("paths", nargs="+", type=Path, help="notebooks, folders or zips of them, or a results folder")
    sim.add_argument("--out", type=Path, required=True, help="the HTML page; the CSV is written beside it")
    sim.add_argument("--template", type=Path, help="the student notebook (default: the built-in's template)")
    sim.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"0 to 1 ({DEFAULT_THRESHOLD})")
    sim.add_argument(
        "--common", type=int, default=DEFAULT_COMMON, help=f"code more submissions share is ignored ({DEFAULT_COMMON})"
    )
    sim.add_argument("--identities", type=Path, help="identities.json of `autograder intake`, or a roster CSV")
    n = commands.add_parser("new", help="write a working one-exercise assignment folder to start from")
    n.add_argument("name", help="the assignment's name (a Python identifier); the folder is DIR/NAME")
    n.add_argument("--dir", type=Path, default=Path("."), help="where to create it (default: here)")

    v = commands.add_parser("validate", help="prove an assignment: reference full marks, template zero, points")
    v.add_argument("assignment", help=ASSIGNMENT_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        if args.command == "grade":
            cmd_grade(args, console)
        elif args.command == "check":
            cmd_check(args, console)
        elif args.command == "demo":
            cmd_demo(args, console)
        elif args.command == "build":
            from autograder.otterkit.build import build

            for name, (student, bundle) in build(args.assignments, args.out, not args.no_trusted_scores).items():
                console.print(f"{name}: student notebook {student}, autograder zip {bundle}")
        elif args.command == "new":
            cmd_new(args, console)
        elif args.command == "validate":
            return cmd_validate(args, console)
        elif args.command == "similarity":
            cmd_similarity(args, console)
        elif args.command in ("intake", "export", "feedback", "report", "gradescope", "gradescope-zip"):
            from autograder.lms import cli as lms_cli

            getattr(lms_cli, f"cmd_{args.command.replace('-', '_')}")(args, console)
        else:
            cmd_list(console)
    except (SpecError, GradingError, ValueError) as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {exc}", markup=True)
        return EXIT_TOOL_ERROR
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; the results written so far are kept")
        return 130
    return EXIT_OK


def run_with_progress(
    console: Console,
    assignment: str | Path,
    paths: list[Path],
    out: Path | None,
    options: GradingOptions,
    jobs: int,
    resume: bool = False,
    executor: Executor | None = None,
) -> list[SubmissionResult]:
    spec = load_assignment(assignment)
    columns = (
        TextColumn(f"grading {spec.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("grade", total=None, last="")

        def started(total: int) -> None:
            progress.update(task, total=total)

        def graded(result: SubmissionResult) -> None:
            progress.update(task, advance=1, last=result.submission)

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
    if batch.resumed:
        console.print(f"{len(batch.resumed)} submission(s) already graded in {out}/ were kept (--resume).")
    levels = {r.isolation for r in batch.results if r.isolation}
    if "audit-hook" in levels:
        console.print(messages.WEAK_SANDBOX, style="yellow")
    return batch.results


def cmd_grade(args: argparse.Namespace, console: Console) -> None:
    options = options_from_args(args)
    spec = load_assignment(args.assignment)
    executor: Executor | None = None
    if args.executor == "dask":
        executor = DaskExecutor(args.scheduler, args.jobs)
    elif args.scheduler:
        raise ValueError("--scheduler needs --executor dask")
    results = run_with_progress(
        console, args.assignment, args.paths, args.out, options, args.jobs, args.resume, executor
    )
    console.print(summary_table(spec.exercise_ids, results, title=f"{spec.name}: {spec.title}"))
    console.print(f"Results written to {args.out}/ (grades.csv and one JSON per submission).")


def cmd_demo(args: argparse.Namespace, console: Console) -> None:
    options = options_from_args(args)
    for name in builtin_names():
        spec = load_assignment(name)
        results = run_with_progress(console, name, [EXAMPLES_DIR / name], args.out / name, options, args.jobs)
        console.print(summary_table(spec.exercise_ids, results, title=f"{spec.name}: {spec.title}"))
        for line in terminal.feedback_lines(results):
            console.print(line, markup=False, soft_wrap=True)
        console.print()
    console.print(f"Results written to {args.out}/<assignment>/.")


def cmd_check(args: argparse.Namespace, console: Console) -> None:
    from autograder.grader import grade_chunk
    from autograder.submission import load_submissions

    submissions = load_submissions([args.notebook])
    assignment = args.assignment or terminal.guess_assignment(submissions[0])
    spec = load_assignment(assignment)
    console.print(f"Public checks of '{spec.name}' on {args.notebook}:")
    results = grade_chunk(spec, submissions, options_from_args(args), public_only=True)
    for line in terminal.check_lines(results[0]):
        console.print(line, markup=False, soft_wrap=True)


def cmd_new(args: argparse.Namespace, console: Console) -> None:
    from autograder.authoring import new_assignment

    folder = new_assignment(args.name, args.dir)
    console.print(
        f"Wrote {folder}/: assignment.toml, reference.py, checks/test_softmax.py.", markup=False, soft_wrap=True
    )
    console.print(f"Next: autograder validate {folder}", markup=False, soft_wrap=True)


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
        return EXIT_OK
    console.print(f"{name}: {len(validation.problems)} problem(s):", markup=False, soft_wrap=True)
    for problem in validation.problems:
        console.print(f"- {problem}", markup=False, soft_wrap=True)
    return EXIT_INVALID


def cmd_similarity(args: argparse.Namespace, console: Console) -> None:
    from autograder import similarity

    spec = load_assignment(args.assignment)
    template = args.template or similarity.default_template(spec)
    found = similarity.compare_class(spec, similarity.load_class(args.paths), template, args.threshold, args.common)
    names = similarity.display_names(args.identities) if args.identities else None
    page, table = similarity.write_similarity(found, args.out, names)
    summary = f"{len(found.pairs)} pairs at or above {found.threshold:g}: {page}, {table}"
    console.print(summary, markup=False, soft_wrap=True)


def cmd_list(console: Console) -> None:
    for name in builtin_names():
        spec = load_assignment(name)
        exercises = ", ".join(f"{e.id} ({e.points:g})" for e in spec.exercises)
        console.print(f"{spec.name:10} {spec.title}\n{'':10} {exercises}", markup=False)


STATUS_STYLE = {
    "passed": "green",
    "partial": "yellow",
    "failed": "red",
    "missing": "magenta",
    "error": "red",
    "timeout": "red",
}
MAX_TABLE_ROWS = 60
LEGEND = "[green]passed[/] [yellow]partial[/] [red]failed[/]; missing, error and timeout are named"


def summary_table(exercise_ids: Sequence[str], results: list[SubmissionResult], title: str) -> Table:
    """One row per submission: each exercise's score coloured by status (the status named unless plain)."""
    table = Table(title=title, title_justify="left", caption=LEGEND, caption_justify="left")
    table.add_column("submission", no_wrap=True)
    maxima = {e.id: e.max_score for e in results[0].exercises} if results else {}
    for exercise_id in exercise_ids:
        table.add_column(f"{exercise_id}\n/{maxima.get(exercise_id, 0):g}", justify="right", overflow="fold")
    table.add_column(f"total\n/{results[0].max_score:g}" if results else "total", justify="right")
    if len(results) > MAX_TABLE_ROWS:
        return terminal.aggregate_table(table, exercise_ids, results)
    for result in results:
        cells = []
        for exercise in result.exercises:
            style = STATUS_STYLE.get(exercise.status, "")
            note = "" if exercise.status in ("passed", "partial", "failed") else f" {exercise.status}"
            cells.append(f"[{style}]{exercise.score:.4g}{note}[/]")
        table.add_row(result.submission, *cells, f"{result.score:.4g}")
    return table
