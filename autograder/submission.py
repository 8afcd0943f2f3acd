"""Loading submissions: notebooks, Python files, and folders or zips of them."""

from __future__ import annotations

import ast
import dataclasses
import io
import os
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
MAX_SUBMISSION_BYTES = 100 * 2**20  # a notebook larger than this is refused with a result saying so

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
    # Not read yet (`listed`): a batch carries names and places, and each scoring process reads its submissions
    # as it grades them, so that memory does not grow with the class. `file` and `member` say where it lies.
    pending: bool = False
    file: str = ""
    member: str = ""  # the name inside the zip `file`, if it came from one

    def read(self) -> Submission:
        """This submission with its cells (itself if it was read already); never raises."""
        if not self.pending:
            return self
        if self.member:
            read = _read_member(Path(self.file), self.member, self.name)
        else:
            read = load_path(Path(self.file), self.name)
        return dataclasses.replace(read, name=self.name, path=self.path)

    @property
    def stem(self) -> str:
        """The result file's name: the submission name without extension, folders joined by '__'."""
        return str(PurePosixPath(self.name).with_suffix("")).replace("/", "__")

    @property
    def source(self) -> str:
        return "\n\n".join(cell.source for cell in self.cells)


def parse_cell(source: str) -> ast.Module | None:
    """A cell's syntax tree, or None for code Python cannot parse: a syntax error, an expression too deep for the
    parser (RecursionError: `1 + 1 + ...` 4,000 times), too big (MemoryError), null bytes (ValueError). Each of
    these costs that cell only, wherever student code is parsed outside a worker."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


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
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_SUBMISSION_BYTES:  # refused before it is read: a class of these must not fill memory
                return Submission(name, str(path), error=_too_big(name, size))
            data = f.read(MAX_SUBMISSION_BYTES + 1)
    except OSError as exc:
        return Submission(name, str(path), error=messages.UNREADABLE.format(name=name, problem=exc.strerror))
    if len(data) > MAX_SUBMISSION_BYTES:  # it grew while being read
        return Submission(name, str(path), error=_too_big(name, len(data)))
    return from_bytes(name, str(path), data)


def _too_big(name: str, size: int) -> str:
    return messages.SUBMISSION_TOO_BIG.format(name=name, mb=size / 2**20, limit=MAX_SUBMISSION_BYTES // 2**20)


def _read_member(path: Path, member: str, name: str) -> Submission:
    """One file of a zip, read within the size limit whatever the zip says of its size."""
    where = f"{path}!{member}"
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
            if info.file_size > MAX_SUBMISSION_BYTES:
                return Submission(name, where, error=_too_big(name, info.file_size))
            with archive.open(info) as f:
                data = f.read(MAX_SUBMISSION_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, KeyError, ValueError) as exc:
        return Submission(name, where, error=messages.UNREADABLE.format(name=name, problem=exc))
    if len(data) > MAX_SUBMISSION_BYTES:  # the zip understated it
        return Submission(name, where, error=_too_big(name, len(data)))
    return from_bytes(name, where, data)


def iter_zip(path: Path, read: bool = True) -> Iterator[Submission]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Submission(path.name, str(path), error=messages.BAD_ZIP.format(name=path.name, problem=exc))
        return
    with archive:
        members = [info.filename for info in sorted(archive.infolist(), key=lambda i: i.filename)
                   if not info.is_dir()]  # fmt: skip
    for member in members:
        inner = PurePosixPath(member)
        if inner.suffix not in SUFFIXES or _leftover(inner.parts):
            continue
        listed = Submission(f"{path.name}/{inner}", f"{path}!{inner}", pending=True, file=str(path), member=member)
        yield listed.read() if read else listed


def iter_submissions(paths: Iterable[Path], read: bool = True) -> Iterator[Submission]:
    """Every submission under the given files, folders and zips, in a stable order; with `read` False, listed
    only (`Submission.read` reads each)."""

    def one(path: Path, name: str | None = None) -> Submission:
        listed = Submission(name or path.name, str(path), pending=True, file=str(path))
        return listed.read() if read else listed

    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not _leftover(rel.parts):
                    if child.suffix in SUFFIXES:
                        yield one(child, rel.as_posix())
                    elif child.suffix == ".zip":
                        yield from iter_zip(child, read)
        elif path.suffix == ".zip" and path.is_file():
            yield from iter_zip(path, read)
        elif path.exists():
            yield one(path)
        else:
            yield Submission(path.name, str(path), error=messages.NO_SUCH_FILE.format(path=path))


def load_submissions(paths: Iterable[Path | str], read: bool = True) -> list[Submission]:
    """All submissions, with names made unique so that no result file overwrites another. With `read` False
    they are only listed: a batch reads each where it is graded (`Submission.read`)."""
    result: list[Submission] = []
    seen: set[str] = set()
    for sub in iter_submissions((Path(p) for p in paths), read):
        stem, n = sub.stem, 2
        while stem in seen:
            stem = f"{sub.stem}-{n}"
            n += 1
        if stem != sub.stem:
            suffix = PurePosixPath(sub.name).suffix
            sub = dataclasses.replace(sub, name=stem.replace("__", "/") + suffix)
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
