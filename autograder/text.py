"""Text a student controls, made safe once, where it enters the grader: what a worker sends back (messages,
reprs, returned strings), what it printed, the names of submitted files.

Control characters other than newline and tab (C0, DEL, C1, so ESC and every terminal escape sequence with it)
and the Unicode controls that reorder or hide text (bidirectional overrides and isolates, zero-width and
invisible format characters) are shown escaped, as `\\x1b` or `\\u202e`; invalid Unicode (a lone surrogate) becomes
U+FFFD. The terminal, HTML and JSON writers then take the text as it is; the CSV writers also keep a cell that
begins like a formula from running in a spreadsheet (`csvfile.py`).
"""

from __future__ import annotations

import re

# C0 but \t and \n, DEL, C1; bidirectional embeddings, overrides, isolates and marks; zero-width and invisible
# format characters; the BOM; line and paragraph separators (new lines to some viewers, not to others).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
CUT = " [...]"


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, line_limit: int | None = None) -> str:
    """`text` as it may be shown anywhere (see the module docstring); with `line_limit`, longer lines are cut."""
    if _SURROGATE.search(text):
        text = _SURROGATE.sub(REPLACEMENT, text)
    if _UNSAFE.search(text):
        text = _UNSAFE.sub(_escaped, text)
    if line_limit is not None and len(text) > line_limit:
        text = "\n".join(line if len(line) <= line_limit else line[:line_limit] + CUT for line in text.split("\n"))
    return text


def decoded(data: bytes, line_limit: int | None = None) -> str:
    """Bytes a student's code wrote, as text that may be shown (invalid UTF-8 replaced)."""
    return shown(data.decode("utf-8", "replace"), line_limit)
