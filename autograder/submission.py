"""Loading submissions: notebooks, Python files, and folders or zips of them."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

from autograder import messages

SUFFIXES = (".ipynb", ".py")
# `%name`, `%%name`, `!cmd` at the start of a line; not `!=` or a `% x` continuation of a formatting expression.
_LINE_MAGIC = re.compile(r"^(\s*)(%%?[A-Za-z_]|![^=])")
_ASSIGNED_MAGIC = re.compile(r"^(\s*[\w.,\s\[\]]+?=\s*)(%[A-Za-z_]|![^=]).*$")
# Cell magics whose body is still Python; any other cell magic (%%bash, %%writefile, ...) drops the cell.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}


@dataclass(frozen=True)
class Cell:
    index: int  # position among the notebook's code cells, from 1
    source: str


@dataclass(frozen=True)
class Submission:
    """One student's code, as the cells the worker will run; `error` is set when the file could not be read."""

    name: str  # unique within a batch, e.g. "alice.ipynb" or "section1.zip/bob.ipynb"
    path: str
    cells: tuple[Cell, ...] = ()
    error: str | None = None

    @property
    def stem(self) -> str:
        """The result file's name: the submission name without extension, folders joined by '__'."""
        return str(PurePosixPath(self.name).with_suffix("")).replace("/", "__")

    @property
    def source(self) -> str:
        return "\n\n".join(cell.source for cell in self.cells)


def strip_magics(source: str) -> str | None:
    """The cell's Python with IPython magics and shell escapes blanked out; None for a non-Python cell magic."""
    lines = source.split("\n")
    first = lines[0].lstrip()
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if magic not in _PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    out = []
    for line in lines:
        if _LINE_MAGIC.match(line):
            # `pass` keeps an indented block valid and every other line where the student wrote it.
            line = _LINE_MAGIC.match(line).group(1) + "pass"  # type: ignore[union-attr]
        elif (match := _ASSIGNED_MAGIC.match(line)) and not line.lstrip().startswith("#"):
            line = match.group(1) + "None"
        out.append(line)
    return "\n".join(out)


def cells_from_notebook(text: str) -> tuple[Cell, ...]:
    """Code cells of a notebook of any nbformat version (upgraded to v4), magics stripped."""
    notebook = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    if notebook.get("nbformat", 4) != 4:
        notebook = nbformat.convert(notebook, 4)
    code = [cell for cell in notebook.cells if cell.get("cell_type") == "code"]
    cells = []
    for index, cell in enumerate(code, start=1):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        stripped = strip_magics(source)
        if stripped is not None and stripped.strip():
            cells.append(Cell(index=index, source=stripped))
    return tuple(cells)


def from_bytes(name: str, path: str, data: bytes) -> Submission:
    """A submission from a file's bytes; never raises: an unreadable file gives a submission with `error`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Submission(name, path, error=messages.NOT_TEXT.format(name=name))
    if name.endswith(".py"):
        stripped = strip_magics(text)
        return Submission(name, path, cells=(Cell(1, stripped),) if stripped else ())
    try:
        cells = cells_from_notebook(text)
    except Exception as exc:  # nbformat raises many kinds for a bad file; each is this file's problem only
        return Submission(name, path, error=messages.NOT_A_NOTEBOOK.format(name=name, problem=_one_line(exc)))
    return Submission(name, path, cells=cells)


def load_path(path: Path, name: str | None = None) -> Submission:
    name = name or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Submission(name, str(path), error=messages.UNREADABLE.format(name=name, problem=exc.strerror))
    return from_bytes(name, str(path), data)


def iter_zip(path: Path) -> Iterator[Submission]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Submission(path.name, str(path), error=messages.BAD_ZIP.format(name=path.name, problem=exc))
        return
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            inner = PurePosixPath(info.filename)
            if info.is_dir() or inner.suffix not in SUFFIXES or _leftover(inner.parts):
                continue
            name = f"{path.name}/{inner}"
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                yield Submission(name, str(path), error=messages.UNREADABLE.format(name=name, problem=exc))
                continue
            yield from_bytes(name, f"{path}!{inner}", data)


def iter_submissions(paths: Iterable[Path]) -> Iterator[Submission]:
    """Every submission under the given files, folders and zips, in a stable order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not _leftover(rel.parts):
                    if child.suffix in SUFFIXES:
                        yield load_path(child, rel.as_posix())
                    elif child.suffix == ".zip":
                        yield from iter_zip(child)
        elif path.suffix == ".zip" and path.is_file():
            yield from iter_zip(path)
        elif path.exists():
            yield load_path(path)
        else:
            yield Submission(path.name, str(path), error=messages.NO_SUCH_FILE.format(path=path))


def load_submissions(paths: Iterable[Path | str]) -> list[Submission]:
    """All submissions, with names made unique so that no result file overwrites another."""
    result: list[Submission] = []
    seen: set[str] = set()
    for sub in iter_submissions(Path(p) for p in paths):
        stem, n = sub.stem, 2
        while stem in seen:
            stem = f"{sub.stem}-{n}"
            n += 1
        if stem != sub.stem:
            suffix = PurePosixPath(sub.name).suffix
            sub = Submission(stem.replace("__", "/") + suffix, sub.path, sub.cells, sub.error)
        seen.add(sub.stem)
        result.append(sub)
    return result


def _leftover(parts: tuple[str, ...]) -> bool:
    # .ipynb_checkpoints, __MACOSX and dot-files are editor or archiver leftovers, not submissions.
    return any(part.startswith((".", "__MACOSX")) for part in parts)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def notebook_bytes(cells: list[str]) -> bytes:
    """A v4 notebook holding the given code cells (used by examples and tests)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    buf = io.StringIO()
    nbformat.write(nb, buf)
    return buf.getvalue().encode()
