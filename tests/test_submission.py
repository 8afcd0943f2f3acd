"""Loading submissions: notebooks of any version, .py files, folders, zips, and files that are not notebooks."""

import json
import zipfile

import nbformat
import pytest

from autograder import messages
from autograder.runner.definitions import split_statements
from autograder.submission import load_submissions, strip_magics

from .conftest import write_notebook


@pytest.mark.parametrize(
    "source, expected",
    [
        ("%matplotlib inline\nimport torch", "pass\nimport torch"),
        ("!pip install torch --quiet\nx = 1", "pass\nx = 1"),
        ("files = !ls\nout = %timeit f()", "files = None\nout = None"),
        ("def f():\n    %time g()\n    return 1", "def f():\n    pass\n    return 1"),
        ("if a\\\n  != b:\n    pass", "if a\\\n  != b:\n    pass"),  # `!=` is not a shell escape
        ('msg = ("%d"\n       % 3)', 'msg = ("%d"\n       % 3)'),  # nor is a formatting continuation
        ("%%time\nx = 1", "\nx = 1"),
    ],
)
def test_magics_and_shell_escapes_are_removed(source, expected):
    assert strip_magics(source) == expected


def test_non_python_cell_magics_drop_the_cell():
    assert strip_magics("%%bash\nrm -rf /") is None
    assert strip_magics("%%writefile x.py\nprint(1)") is None


def test_notebook_cells_keep_their_index_and_skip_markdown(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# hi"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(""),
        nbformat.v4.new_code_cell("%%bash\nls"),
        nbformat.v4.new_code_cell("y = 2"),
    ]
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, str(path))
    [sub] = load_submissions([path])
    assert sub.error is None
    assert [(c.index, c.source) for c in sub.cells] == [(1, "x = 1"), (4, "y = 2")]


def test_an_old_notebook_format_is_upgraded(tmp_path):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "def f(x):\n    return x",
                        "language": "python",
                        "outputs": [],
                        "metadata": {},
                    }
                ],
                "metadata": {},
            }
        ],
    }
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(v3))
    [sub] = load_submissions([path])
    assert sub.error is None and sub.cells[0].source == "def f(x):\n    return x"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", messages.NOT_TEXT.format(name="bad.ipynb")),
        (b"print('I am Python, not JSON')", "bad.ipynb could not be read as a Jupyter notebook"),
        (b'{"cells": 5}', "bad.ipynb could not be read as a Jupyter notebook"),
    ],
)
def test_a_file_that_is_not_a_notebook_is_an_error_result(tmp_path, content, problem):
    (tmp_path / "bad.ipynb").write_bytes(content)
    [sub] = load_submissions([tmp_path / "bad.ipynb"])
    assert sub.cells == () and problem in (sub.error or "")


def test_folders_and_zips_are_expanded_and_names_stay_unique(tmp_path):
    write_notebook(tmp_path / "in" / "alice.ipynb", ["x = 1"])
    (tmp_path / "in" / "alice.py").write_text("x = 2")
    write_notebook(tmp_path / "in" / ".ipynb_checkpoints" / "alice-checkpoint.ipynb", ["x = 3"])
    (tmp_path / "in" / "notes.txt").write_text("not a submission")
    with zipfile.ZipFile(tmp_path / "in" / "section.zip", "w") as archive:
        archive.writestr("bob.ipynb", (tmp_path / "in" / "alice.ipynb").read_text())
        archive.writestr("__MACOSX/._bob.ipynb", "junk")
    subs = load_submissions([tmp_path / "in"])
    assert [s.name for s in subs] == ["alice.ipynb", "alice-2.py", "section.zip/bob.ipynb"]
    assert len({s.stem for s in subs}) == 3
    assert subs[2].stem == "section.zip__bob"


def test_missing_path_and_bad_zip_become_error_results(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    subs = load_submissions([tmp_path / "nope.ipynb", tmp_path / "x.zip"])
    assert "does not exist" in subs[0].error
    assert "is not a readable zip archive" in subs[1].error


@pytest.mark.parametrize(
    "source, kinds",
    [
        ("import torch; train()", ["import", "other"]),
        ("SEED = 2021\nDEVICE = 'cuda' if ok else 'cpu'\nx = torch.zeros(3)", ["assign", "assign", "other"]),
        ("@torch.no_grad()\ndef f():\n    pass\nclass A:\n    pass", ["def", "class"]),
        ("try:\n    import foo\nexcept ImportError:\n    foo = None", ["try"]),
        ("for i in range(3):\n    pass\nplt.show()\nf = lambda x: x + 1", ["other", "other", "assign"]),
        ("try:\n    train()\nexcept Exception:\n    pass", ["other"]),
    ],
)
def test_statement_kinds(source, kinds):
    assert [s.kind for s in split_statements(source, "<cell 1>")] == kinds
