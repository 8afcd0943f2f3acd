"""The CSV files the grader writes (grades.csv, the LMS exports, the similarity table), safe to open in a
spreadsheet whatever a class names its files or itself.

Two things make a student's text dangerous there. A line break splits its row unless its field is quoted, and
the csv module quotes a field only when it holds the delimiter, the quote character or a character of the line
terminator: under "\\n" line endings a lone "\\r" went out bare, and readers end the row there. And a cell that
begins with "=", "+", "-", "@", a tab or a carriage return is run as a formula by Excel, LibreOffice and Google
Sheets; `text_cell` prefixes such text with "'", as OWASP advises, which spreadsheets show as text. Only text a
student controls goes through `text_cell`: the numbers the grader formats itself stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(text: str) -> str:
    """`text` as a spreadsheet shows it and never runs it: prefixed with "'" where it begins like a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The file: `header`, then `rows`, cells as given, one line each ("\\n"), any field holding a comma, a
    quote, "\\r" or "\\n" quoted."""
    return "".join(_line(row) for row in (header, *rows))


def _line(row: Sequence[str]) -> str:
    # With "\r\n" as its terminator the writer quotes a field holding either character; the files keep "\n".
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(row)
    return buffer.getvalue().removesuffix("\r\n") + "\n"
