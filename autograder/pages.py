"""Pages people read: a feedback page per submission (Markdown and HTML) and a class report per assignment.

Feedback shows the score per exercise and the message of every failed check, public or hidden, but never a
check's code. The class report is one self-contained HTML file: the score histogram and the failure rate of
every check, drawn with matplotlib and embedded as PNG data.
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from autograder import messages
from autograder.results import NOT_GRADED, CheckResult, SubmissionResult, atomic_write

STATUS_WORDS = {
    "passed": "passed",
    "partial": "partly right",
    "failed": "not yet right",
    "missing": "not found in your notebook",
    "error": "could not be graded",
    "timeout": "ran out of time",
    NOT_GRADED: "not graded yet (a problem of the grading machine)",
}
STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
td.num{text-align:right}pre{white-space:pre-wrap;background:#f6f6f6;padding:.6rem;border-left:3px solid #c33}
.passed{color:#176317}.partial{color:#8a6100}.failed,.error,.timeout,.missing{color:#a11}
img{max-width:100%}
"""


# -- feedback -----------------------------------------------------------------------------------------------------
def feedback_markdown(result: SubmissionResult, title: str = "", student: str = "") -> str:
    lines = [f"# {title or result.assignment}: feedback for {student or result.submission}", ""]
    lines.append(f"**{_score_line(result)}**")
    lines += ["", "| Exercise | Score | Status |", "|---|---:|---|"]
    for e in result.exercises:
        lines.append(f"| {e.id} | {_num(e.score)} / {_num(e.max_score)} | {STATUS_WORDS.get(e.status, e.status)} |")
    if result.errors:
        lines += ["", "## Problems in your notebook", ""]
        lines += [f"- {_md_line(error)}" for error in result.errors]
    for e in result.exercises:
        failed = [t for t in e.tests if not t.passed]
        if not failed:
            continue
        lines += ["", f"## {e.id}", ""]
        for check in failed:
            lines += [f"**{check.name}** ({_check_label(check)})", ""]
            lines += ["```text", check.message.strip() or "This check did not pass.", "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _score_line(result: SubmissionResult) -> str:
    if not result.graded:
        return f"Not graded yet (out of {_num(result.max_score)}): a problem of the grading machine, not yours"
    return f"Score: {_num(result.score)} / {_num(result.max_score)}"


def feedback_html(result: SubmissionResult, title: str = "", student: str = "") -> str:
    heading = f"{title or result.assignment}: feedback for {student or result.submission}"
    parts = [
        f"<h1>{html_text(heading)}</h1>",
        f"<p><strong>{html_text(_score_line(result))}</strong></p>",
    ]
    rows = "".join(
        f"<tr><td>{html_text(e.id)}</td><td class='num'>{_num(e.score)} / {_num(e.max_score)}</td>"
        f"<td class='{html_text(e.status)}'>{html_text(STATUS_WORDS.get(e.status, e.status))}</td></tr>"
        for e in result.exercises
    )
    parts.append(
        f"<table><thead><tr><th>Exercise</th><th>Score</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    if result.errors:
        items = "".join(f"<li>{html_text(error)}</li>" for error in result.errors)
        parts.append(f"<h2>Problems in your notebook</h2><ul class='errors'>{items}</ul>")
    for e in result.exercises:
        failed = [t for t in e.tests if not t.passed]
        if not failed:
            continue
        parts.append(f"<section class='exercise' id='{html_text(e.id)}'><h2>{html_text(e.id)}</h2>")
        for check in failed:
            parts.append(
                f"<h3>{html_text(check.name)} <small>({html_text(_check_label(check))})</small></h3>"
                f"<pre class='message'>{html_text(check.message.strip() or 'This check did not pass.')}</pre>"
            )
        parts.append("</section>")
    return _page(heading, "".join(parts))


def _check_label(check: CheckResult) -> str:
    if check.advisory:
        return "advice, costs no points"
    kind = "hidden check" if check.hidden else "check"
    return f"{kind}, {_num(check.score)} / {_num(check.max_score)}"


def write_feedback(
    results: dict[str, SubmissionResult], out: Path, title: str = "", names: dict[str, str] | None = None
) -> list[Path]:
    """`<stem>.md` and `<stem>.html` for every result, titled by the student's name where `names` (stem ->
    name, from intake's identities) has it, else by the file; returns the written paths."""
    written = []
    for stem, result in results.items():
        student = (names or {}).get(stem, "")
        written.append(atomic_write(out / f"{stem}.md", feedback_markdown(result, title, student)))
        written.append(atomic_write(out / f"{stem}.html", feedback_html(result, title, student)))
    return written


# -- class report -------------------------------------------------------------------------------------------------
def check_failure_rates(results: Sequence[SubmissionResult]) -> list[tuple[str, str, int, int]]:
    """(exercise, check, failed, graded) for every check, most often failed first."""
    failed: Counter[tuple[str, str]] = Counter()
    graded: Counter[tuple[str, str]] = Counter()
    for result in results:
        for e in result.exercises:
            for check in e.tests:
                if check.name == "submission":  # the stand-in check of an unreadable file
                    continue
                name = f"{check.name} (advice)" if check.advisory else check.name
                graded[(e.id, name)] += 1
                failed[(e.id, name)] += not check.passed
    rows = [(ex, name, failed[(ex, name)], n) for (ex, name), n in graded.items()]
    return sorted(rows, key=lambda r: (-r[2] / r[3], r[0], r[1]))


def _instructor_notes(results: Sequence[SubmissionResult]) -> list[str]:
    """Load problems no lost point depended on, counted, and the modules this environment lacks."""
    from autograder.terminal import lacking_modules, note_counts

    parts = []
    if notes := note_counts(results):
        parts.append(f"<p id='notes'>{html_text(messages.NOTES_SUMMARY.format(lines=notes))}</p>")
    if lacking := lacking_modules(results):
        parts.append(f"<p id='modules'>{html_text(messages.MISSING_MODULES.format(modules=lacking))}</p>")
    return parts


def class_report_html(results: Sequence[SubmissionResult], title: str) -> str:
    if not results:
        raise ValueError("a class report needs at least one result")
    ungraded = sum(not r.graded for r in results)
    results = [r for r in results if r.graded] or list(results)  # a result with no score is no zero
    totals = [r.score for r in results]
    max_score = results[0].max_score
    by_exercise: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        for e in r.exercises:
            by_exercise[e.id].append(e.score)
            statuses[e.id][e.status] += 1
    rates = check_failure_rates(results)
    parts = [
        f"<h1>{html_text(title)}: class report</h1>",
        f"<p id='summary'>{len(results)} submissions; mean {_num(round(statistics.mean(totals), 2))}, median "
        f"{_num(statistics.median(totals))} of {_num(max_score)}; "
        f"{sum(t >= max_score for t in totals)} with full marks"
        + (f"; {ungraded} not graded (a problem of the grader; grade them again with --resume)" if ungraded else "")
        + ".</p>",
        *_instructor_notes(results),
        "<h2>Scores</h2>",
        _img("histogram", "histogram of total scores", _histogram(totals, max_score)),
        "<h2>Exercises</h2>",
    ]
    exercise_rows = "".join(
        f"<tr><td>{html_text(ex)}</td><td class='num'>{_num(round(statistics.mean(scores), 2))}</td>"
        f"<td>{html_text(', '.join(f'{s} {n}' for s, n in sorted(statuses[ex].items())))}</td></tr>"
        for ex, scores in by_exercise.items()
    )
    parts.append(
        f"<table id='exercises'><thead><tr><th>Exercise</th><th>Mean score</th><th>Statuses</th></tr></thead>"
        f"<tbody>{exercise_rows}</tbody></table>"
    )
    parts += [
        "<h2>Checks, most often failed first</h2>",
        _img("failure-rates", "failure rate of every check", _failure_plot(rates)),
    ]
    check_rows = "".join(
        f"<tr><td>{html_text(ex)}</td><td>{html_text(name)}</td><td class='num'>{100 * bad / n:.0f}%</td>"
        f"<td class='num'>{bad} / {n}</td></tr>"
        for ex, name, bad, n in rates
    )
    parts.append(
        f"<table id='checks'><thead><tr><th>Exercise</th><th>Check</th><th>Failure rate</th><th>Failed</th></tr>"
        f"</thead><tbody>{check_rows}</tbody></table>"
    )
    return _page(f"{title}: class report", "".join(parts))


def _histogram(totals: Sequence[float], max_score: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=100)
    bins = min(20, max(5, int(max_score) // 5 or 5))
    axes.hist(totals, bins=bins, range=(0, max_score), color="#3b6ea5", edgecolor="white")
    axes.set_xlabel("total score")
    axes.set_ylabel("submissions")
    return _png(figure)


def _failure_plot(rates: Sequence[tuple[str, str, int, int]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    shown = list(rates[:25])[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.25 * len(shown) + 1), dpi=100)
    axes.barh([f"{ex}: {name}" for ex, name, _, _ in shown], [100 * bad / n for _, _, bad, n in shown], color="#a33")
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of submissions failing")
    axes.tick_params(axis="y", labelsize=7)
    return _png(figure)


def _png(figure: object) -> str:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()  # type: ignore[attr-defined]
    figure.savefig(buffer, format="png")  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(id: str, alt: str, png_base64: str) -> str:
    return f"<img id='{id}' alt='{alt}' src='data:image/png;base64,{png_base64}'>"


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html_text(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def html_text(text: str) -> str:
    """Text as HTML: escaped, quotes included (it goes into attributes too)."""
    return html.escape(str(text), quote=True)


def _md_line(text: str) -> str:
    return text.replace("\n", " ")


def _num(value: float) -> str:
    return f"{value:g}"
