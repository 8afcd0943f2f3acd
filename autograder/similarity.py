"""Similarity of submissions, exercise by exercise: which pairs of a class look copied from each other.

Fingerprints are copydetect's: k-grams of Pygments tokens with names, strings, comments and whitespace normalised
away, so renamed variables, reordered functions and new comments change nothing. Two kinds of code never count:
the student template's (it is everyone's), and a fingerprint more than `common` submissions share, as MOSS's `-m`
(the course's published solution pasted by half a class is no evidence that two of them copied from each other).
Pairs are found through an inverted index of the remaining fingerprints, so only pairs that share one are compared.
"""

from __future__ import annotations

import ast
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autograder.csvfile import csv_text, text_cell
from autograder.options import DEFAULT_COMMON, DEFAULT_THRESHOLD
from autograder.pages import STYLE as PAGE_STYLE
from autograder.pages import html_text
from autograder.paths import EXAMPLES_DIR
from autograder.results import atomic_write
from autograder.spec import AssignmentSpec
from autograder.submission import Submission, from_bytes, load_path, load_submissions, parse_cell

if TYPE_CHECKING:
    from copydetect import CodeFingerprint

# copydetect's defaults (its import, which brings matplotlib's pyplot, waits until a comparison needs it): the
# shortest match counted, in normalised characters (`x = f(y)` is `V=V(V)`, 6), and a window of 1, which keeps
# every k-gram since its guarantee threshold equals the noise threshold.
_K = 25
_WINDOW = 1
# A pair whose shared code is shorter than this is not reported whatever its share: a line or two in common is
# what any two right answers to a small blank have.
MIN_SHARED_CHARS = 2 * _K
_DEF_LINE = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")
NO_TEMPLATE = (
    "no student template for '{name}': looked for {path}; pass --template NOTEBOOK (the notebook students start "
    "from), whose code never counts as copied"
)


@dataclass(frozen=True)
class Pair:
    """Two submissions whose code for one exercise looks alike; `marks_*` are (start, end) spans of shared code."""

    exercise: str
    a: str
    b: str
    similarity: float  # the mean of the two shares
    share_a: float  # of a's code (outside the template and common code), the part also found in b's
    share_b: float
    code_a: str
    code_b: str
    marks_a: tuple[tuple[int, int], ...]
    marks_b: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ClassSimilarity:
    assignment: str
    title: str
    threshold: float
    common: int
    submissions: tuple[str, ...]  # the names compared, in order
    unreadable: tuple[str, ...]  # the error of every file that could not be read
    compared: Mapping[str, int]  # exercise id -> how many submissions define it
    candidates: Mapping[str, int]  # exercise id -> how many pairs shared a fingerprint and were compared
    pairs: tuple[Pair, ...]  # above the threshold, by exercise in spec order, most similar first


# -- loading ------------------------------------------------------------------------------------------------------
def load_class(paths: Iterable[Path]) -> list[Submission]:
    """Submissions under the given paths; a results folder of `autograder grade` stands for the files it graded."""
    submissions: list[Submission] = []
    plain: list[Path] = []
    for path in paths:
        if path.is_dir() and (path / "grades.csv").is_file():
            submissions += _graded_submissions(path)
        else:
            plain.append(path)
    return load_submissions(plain) + submissions if plain else submissions


def _graded_submissions(results_dir: Path) -> list[Submission]:
    from autograder.lms import load_results

    found = []
    for result in load_results(results_dir).values():
        outer, _, inner = result.path.partition("!")  # a zip member is recorded as "archive.zip!inner/path"
        if not inner:
            found.append(load_path(Path(outer), result.submission))
            continue
        try:
            with zipfile.ZipFile(outer) as archive:
                found.append(from_bytes(result.submission, result.path, archive.read(inner)))
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            found.append(Submission(result.submission, result.path, error=f"{result.path}: cannot read ({exc})"))
    return found


def default_template(spec: AssignmentSpec) -> Path:
    """The bundled student notebook of a built-in assignment."""
    path = EXAMPLES_DIR / spec.name / "template.ipynb"
    if not path.is_file():
        raise ValueError(NO_TEMPLATE.format(name=spec.name, path=path))
    return path


def display_names(identities: Path) -> dict[str, str]:
    """Submission stem -> the student's name, from intake's identities.json or a roster CSV."""
    from autograder import lms

    people = lms.load_roster(identities) if identities.suffix.lower() == ".csv" else lms.load_identities(identities)
    return {person.key: person.name or person.key for person in people}


# -- the code of an exercise --------------------------------------------------------------------------------------
def top_level_definitions(source: str) -> dict[str, tuple[str, set[str]]]:
    """Name -> (source, names it uses) of every top-level def and class; a cell that does not parse is split at
    its unindented `def`/`class` lines, so a broken copy is still compared."""
    tree = parse_cell(source)
    if tree is None:
        return _definitions_by_text(source)
    lines = source.splitlines()
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            text = "\n".join(lines[start - 1 : node.end_lineno])
            found[node.name] = (text, {n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
    return found


def _definitions_by_text(source: str) -> dict[str, tuple[str, set[str]]]:
    found: dict[str, tuple[str, set[str]]] = {}
    name: str | None = None
    block: list[str] = []
    for line in [*source.splitlines(), "<end>"]:
        starts_block = bool(line.strip()) and not line[0].isspace() and not line.startswith(("#", ")", "]", "}", "@"))
        if starts_block:
            if name:
                found[name] = ("\n".join(block).rstrip(), set())
            match = _DEF_LINE.match(line)
            name, block = (match.group(1), []) if match else (None, [])
        if name:
            block.append(line)
    return found


def exercise_code(spec: AssignmentSpec, submission: Submission, skip: set[str]) -> dict[str, str]:
    """Exercise id -> the student's code for it: its symbols' last definitions, then the top-level helpers they
    use (not another exercise's symbols, not the names in `skip`: the template's own helpers)."""
    definitions: dict[str, tuple[str, set[str]]] = {}
    for cell in submission.cells:
        definitions.update(top_level_definitions(cell.source))
    symbols = {name for exercise in spec.exercises for name in exercise.symbol_names}
    codes = {}
    for exercise in spec.exercises:
        wanted = [name for name in exercise.symbol_names if name in definitions]
        todo = list(wanted)
        while todo:
            for used in sorted(definitions[todo.pop()][1]):
                if used in definitions and used not in symbols | skip and used not in wanted:
                    wanted.append(used)
                    todo.append(used)
        if wanted:
            codes[exercise.id] = "\n\n".join(definitions[name][0] for name in wanted)
    return codes


# -- comparing ----------------------------------------------------------------------------------------------------
def _fingerprint(code: str, boilerplate: np.ndarray) -> CodeFingerprint:
    from copydetect import CodeFingerprint

    return CodeFingerprint("exercise.py", _K, _WINDOW, boilerplate, language="python", fp=io.StringIO(code))


def _without(first: CodeFingerprint, boilerplate: np.ndarray) -> CodeFingerprint:
    """`first` with more boilerplate, from its normalised text: Pygments, most of the cost, does not run again."""
    from copydetect import CodeFingerprint

    again = CodeFingerprint(first.filename, _K, _WINDOW, boilerplate, filter=False, fp=io.StringIO(first.filtered_code))
    again.raw_code, again.offsets = first.raw_code, first.offsets  # shared spans still map back to the code
    return again


def boilerplate_hashes(template_source: str) -> np.ndarray:
    """Every k-gram of the template (not only the winnowed ones), as copydetect treats boilerplate files."""
    from copydetect import CodeFingerprint

    whole = CodeFingerprint("template.py", _K, 1, language="python", fp=io.StringIO(template_source))
    return np.unique(np.array(sorted(whole.hashes), dtype=np.int64))


def similar_pairs(
    exercise: str,
    codes: Mapping[str, str],
    boilerplate: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    common: int = DEFAULT_COMMON,
) -> tuple[list[Pair], int]:
    """Every pair of `codes` (submission name -> code) at least `threshold` alike, most similar first; and how many
    pairs were compared."""
    from copydetect import compare_files

    names = list(codes)
    distinct = {code: _fingerprint(code, boilerplate) for code in set(codes.values())}
    prints = [distinct[codes[name]] for name in names]
    postings: dict[int, list[int]] = defaultdict(list)
    for index, fingerprint in enumerate(prints):
        for value in fingerprint.hashes:
            postings[value].append(index)
    candidates = {pair for where in postings.values() if len(where) <= common for pair in combinations(where, 2)}
    frequent = {value for value, where in postings.items() if len(where) > common}
    if frequent:  # what is compared is what remains without them
        ignored = np.union1d(boilerplate, np.fromiter(frequent, dtype=np.int64))
        again = {id(f): _without(f, ignored) for f in distinct.values() if not f.hashes.isdisjoint(frequent)}
        prints = [again.get(id(f), f) for f in prints]
    found = []
    for i, j in sorted(candidates):
        shared, (share_a, share_b), (slices_a, slices_b) = compare_files(prints[i], prints[j])
        similarity = (float(share_a) + float(share_b)) / 2
        if shared >= MIN_SHARED_CHARS and similarity >= threshold:
            a, b = names[i], names[j]
            marks_a, marks_b = _spans(slices_a), _spans(slices_b)
            found.append(
                Pair(exercise, a, b, similarity, float(share_a), float(share_b), codes[a], codes[b], marks_a, marks_b)
            )
    return sorted(found, key=lambda pair: -pair.similarity), len(candidates)


def _spans(slices: np.ndarray) -> tuple[tuple[int, int], ...]:
    """copydetect's 2xN (starts, ends) array as sorted (start, end) pairs."""
    if len(slices) == 0 or len(slices[0]) == 0:
        return ()
    return tuple(sorted((int(start), int(end)) for start, end in zip(slices[0], slices[1], strict=True)))


def compare_class(
    spec: AssignmentSpec,
    submissions: Sequence[Submission],
    template: Path,
    threshold: float = DEFAULT_THRESHOLD,
    common: int = DEFAULT_COMMON,
) -> ClassSimilarity:
    """Every pair of `submissions` whose code for an exercise is at least `threshold` alike."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"--threshold must be between 0 and 1; got {threshold:g}")
    if common < 2:
        raise ValueError(f"--common must be at least 2; got {common}")
    skip, boilerplate = _template(template)
    readable = [s for s in submissions if not s.error]
    by_exercise: dict[str, dict[str, str]] = {e.id: {} for e in spec.exercises}
    for submission in readable:
        for exercise_id, code in exercise_code(spec, submission, skip).items():
            by_exercise[exercise_id][submission.name] = code
    pairs: list[Pair] = []
    candidates = {}
    for exercise_id, codes in by_exercise.items():
        found, candidates[exercise_id] = similar_pairs(exercise_id, codes, boilerplate, threshold, common)
        pairs += found
    return ClassSimilarity(
        assignment=spec.name,
        title=spec.title,
        threshold=threshold,
        common=common,
        submissions=tuple(s.name for s in readable),
        unreadable=tuple(s.error or "" for s in submissions if s.error),
        compared={exercise_id: len(codes) for exercise_id, codes in by_exercise.items()},
        candidates=candidates,
        pairs=tuple(pairs),
    )


def _template(path: Path) -> tuple[set[str], np.ndarray]:
    """The names the template defines (never an exercise's helpers) and its fingerprints (never counted)."""
    template = load_path(path)
    if template.error:
        raise ValueError(f"the template: {template.error}")
    names = {name for cell in template.cells for name in top_level_definitions(cell.source)}
    return names, boilerplate_hashes(template.source)


# -- writing ------------------------------------------------------------------------------------------------------
MAX_SHOWN = 50  # pairs shown side by side per exercise; the CSV lists them all
_STYLE = """
body{max-width:96rem}.side{display:grid;grid-template-columns:1fr 1fr;gap:.8rem}
.side>div{min-width:0}pre.code{white-space:pre;overflow-x:auto;font-size:.8rem;border-left-color:#3b6ea5;margin:0}
mark{background:#ffd966}h4{margin:.2rem 0;font-weight:normal}section.pair{margin:1.5rem 0}
"""


def similarity_csv(found: ClassSimilarity, names: Mapping[str, str] | None = None) -> str:
    """`exercise,submission_a,submission_b,similarity`: every pair above the threshold."""
    rows = (
        [
            text_cell(pair.exercise),
            text_cell(_label(pair.a, names)),
            text_cell(_label(pair.b, names)),
            f"{pair.similarity:.3f}",
        ]
        for pair in found.pairs
    )
    return csv_text(["exercise", "submission_a", "submission_b", "similarity"], rows)


def similarity_html(found: ClassSimilarity, names: Mapping[str, str] | None = None) -> str:
    """One self-contained page: per exercise, the pairs and their code side by side, shared code marked."""
    parts = [f"<h1>{html_text(found.assignment)}: {html_text(found.title)}: similarity</h1>", _summary(found)]
    for exercise_id, compared in found.compared.items():
        pairs = [pair for pair in found.pairs if pair.exercise == exercise_id]
        parts.append(f"<section class='exercise' id='{html_text(exercise_id)}'><h2>{html_text(exercise_id)}</h2>")
        parts.append(
            f"<p>{_count(compared, 'submission')} define it; {_count(found.candidates[exercise_id], 'pair')} "
            f"share code outside the template and were compared; {len(pairs)} at or above the threshold.</p>"
        )
        if pairs:
            parts.append(_pair_table(pairs, names))
        parts += [_pair_section(pair, index, names) for index, pair in enumerate(pairs[:MAX_SHOWN])]
        if len(pairs) > MAX_SHOWN:
            parts.append(f"<p>{_count(len(pairs) - MAX_SHOWN, 'more pair')} in the CSV file beside this page.</p>")
        parts.append("</section>")
    title = f"{found.assignment}: similarity"
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html_text(title)}</title>"
        f"<style>{PAGE_STYLE}{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def _summary(found: ClassSimilarity) -> str:
    unreadable = f" {_count(len(found.unreadable), 'file')} could not be read:" if found.unreadable else ""
    errors = "".join(f"<li>{html_text(error)}</li>" for error in found.unreadable)
    return (
        f"<p id='summary'>{_count(len(found.submissions), 'submission')} compared; "
        f"{_count(len(found.pairs), 'pair')} at or above similarity {found.threshold:g}.{unreadable}</p>"
        + (f"<ul class='errors'>{errors}</ul>" if errors else "")
        + "<p>Similarity is the mean of two shares: of each one's code for the exercise, the part also found in the "
        "other's, after names, strings, comments and layout are set aside. The template's code never counts, nor "
        f"code that more than {found.common} submissions share. A high score is evidence to look at, not a "
        "verdict: read the two columns.</p>"
    )


def _pair_table(pairs: Sequence[Pair], names: Mapping[str, str] | None) -> str:
    rows = "".join(
        f"<tr><td class='num'>{pair.similarity:.2f}</td><td>{html_text(_label(pair.a, names))}</td>"
        f"<td>{html_text(_label(pair.b, names))}</td><td>{_anchor(pair, index)}</td></tr>"
        for index, pair in enumerate(pairs)
    )
    return (
        "<table class='pairs'><thead><tr><th>Similarity</th><th>Submission A</th><th>Submission B</th><th></th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _anchor(pair: Pair, index: int) -> str:
    return f"<a href='#{html_text(pair.exercise)}-{index}'>side by side</a>" if index < MAX_SHOWN else ""


def _pair_section(pair: Pair, index: int, names: Mapping[str, str] | None) -> str:
    columns = "".join(
        f"<div><h4>{html_text(_label(who, names))}: {100 * share:.0f}% of it shared</h4>"
        f"<pre class='code'>{_marked(code, marks)}</pre></div>"
        for who, share, code, marks in (
            (pair.a, pair.share_a, pair.code_a, pair.marks_a),
            (pair.b, pair.share_b, pair.code_b, pair.marks_b),
        )
    )
    return (
        f"<section class='pair' id='{html_text(pair.exercise)}-{index}'><h3>{html_text(_label(pair.a, names))} and "
        f"{html_text(_label(pair.b, names))}: {pair.similarity:.2f}</h3><div class='side'>{columns}</div></section>"
    )


def _marked(code: str, marks: Sequence[tuple[int, int]]) -> str:
    """The code, escaped, with the shared spans in <mark>."""
    out, position = [], 0
    for start, end in marks:
        start, end = max(start, position), min(end, len(code))
        if start >= end:
            continue
        out += [html_text(code[position:start]), f"<mark>{html_text(code[start:end])}</mark>"]
        position = end
    out.append(html_text(code[position:]))
    return "".join(out)


def write_similarity(found: ClassSimilarity, out: Path, names: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """The HTML page at `out` and the CSV beside it (same stem, .csv)."""
    page = atomic_write(out, similarity_html(found, names))
    table = atomic_write(out.with_suffix(".csv"), similarity_csv(found, names))
    return page, table


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _label(submission: str, names: Mapping[str, str] | None) -> str:
    """The student's name where identities are given (a submission's stem is its identity key), else the file."""
    if not names:
        return submission
    return names.get(_stem(submission), submission)


def _stem(submission: str) -> str:
    return Submission(submission, "").stem
