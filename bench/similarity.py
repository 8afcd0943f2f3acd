"""Seconds for the similarity page of 100 and 1000 generated mlp submissions, with planted copies.

    python -m bench.similarity [--sizes 100 1000]

The class is bench.generate's, with every student's code made textually distinct (a comment naming them on each
def line: nothing for the fingerprints, but Pygments then tokenises every submission, as in a real class). Into it
go one original solution per exercise, written for this bench so that nobody else's code resembles it, and a
disguised copy of each (variables renamed, helpers reordered, comments added, a constant changed). Printed: the
seconds, how many pairs were compared of all n(n-1)/2, the planted pairs found, and the other pairs reported (the
generator hands several students the very same variant, so each of those must be identical code).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.similarity import compare_class, default_template, load_class
from autograder.spec import load_assignment
from autograder.submission import notebook_bytes
from bench.generate import make_class
from tests.mutants import mlp


@dataclass(frozen=True)
class Original:
    code: str  # a helper first, then the exercise's symbol
    renames: Mapping[str, str]
    constant: tuple[str, str]  # (old, new), replaced once


ORIGINALS = {
    "approximate_function": Original(
        """
def _relu_basis(points, grid):
    starts = points[:-1].reshape(-1, 1)
    return torch.clamp(grid.reshape(1, -1) - starts, min=0.0)


def approximate_function(x_train, y_train):
    pts = x_train.reshape(-1)
    vals = y_train.reshape(-1)
    grid = torch.linspace(pts.min().item(), pts.max().item(), 1000)
    basis = _relu_basis(pts, grid)
    gradients = (vals[1:] - vals[:-1]) / (pts[1:] - pts[:-1])
    changes = torch.empty_like(gradients)
    changes[0] = gradients[0]
    changes[1:] = gradients[1:] - gradients[:-1]
    estimate = torch.einsum("r,rn->n", changes, basis)
    return estimate, basis, grid
""",
        {"pts": "xs", "vals": "ys", "grid": "x_dense", "basis": "acts", "changes": "w", "_relu_basis": "make_relus"},
        ("1000", "1200"),
    ),
    "Net": Original(
        """
def _hidden_stack(widths, activation):
    blocks = []
    for width_in, width_out in zip(widths, widths[1:]):
        blocks.append(nn.Linear(width_in, width_out))
        blocks.append(eval(f"nn.{activation}"))
    return blocks


class Net(nn.Module):
    def __init__(self, actv, input_feature_num, hidden_unit_nums, output_feature_num):
        super().__init__()
        self.width = input_feature_num
        widths = [input_feature_num] + [int(h) for h in hidden_unit_nums]
        body = _hidden_stack(widths, actv)
        body.append(nn.Linear(widths[-1], output_feature_num))
        self.mlp = nn.Sequential(*body)

    def forward(self, x):
        flat = torch.reshape(x, (-1, self.width))
        return self.mlp(flat)
""",
        {"widths": "sizes", "blocks": "layers", "body": "modules", "flat": "x2d", "width_in": "a", "width_out": "b"},
        ("-1, self.width", "-1, int(self.width)"),
    ),
    "cross_entropy_loss": Original(
        """
def _log_normaliser(scores):
    peak = torch.amax(scores, dim=1, keepdim=True)
    shifted = torch.exp(scores - peak)
    return (peak + torch.log(torch.sum(shifted, dim=1, keepdim=True))).squeeze(1)


def cross_entropy_loss(x, labels):
    rows = torch.arange(x.shape[0])
    correct = x[rows, labels]
    per_sample = _log_normaliser(x) - correct
    return per_sample.sum() / max(len(labels), 1)
""",
        {"peak": "top", "shifted": "e", "rows": "idx", "correct": "true_logit", "per_sample": "losses"},
        ("max(len(labels), 1)", "max(len(labels), 2)"),
    ),
    "shuffle_and_split": Original(
        """
def _split_point(count, fraction=0.2):
    return int(count * fraction)


def shuffle_and_split_data(X, y, seed):
    torch.manual_seed(seed)
    count = len(y)
    permutation = torch.randperm(count)
    X_mixed = torch.index_select(X, 0, permutation)
    y_mixed = torch.index_select(y, 0, permutation)
    cut = _split_point(count)
    return X_mixed[:cut], y_mixed[:cut], X_mixed[cut:], y_mixed[cut:]
""",
        {"count": "n", "permutation": "perm", "X_mixed": "Xs", "y_mixed": "ys", "cut": "k"},
        ("fraction=0.2", "fraction=0.20"),
    ),
}


# -- disguises: each keeps a copy a copy ------------------------------------------------------------------------
def rename(code: str, renames: Mapping[str, str]) -> str:
    for old, new in renames.items():
        code = re.sub(rf"\b{re.escape(old)}\b", new, code)
    return code


def reorder(code: str) -> str:
    """The helper moved below the function that uses it."""
    blocks = code.strip().split("\n\n\n")
    return "\n" + "\n\n\n".join(blocks[1:] + blocks[:1]) + "\n"


def add_comments(code: str) -> str:
    """A comment above every other statement and one at the end of every def line."""
    out = []
    for number, line in enumerate(code.split("\n")):
        indent = line[: len(line) - len(line.lstrip())]
        if line.lstrip().startswith(("def ", "class ")):
            line += "  # my own solution"
        elif indent and number % 2:
            out.append(f"{indent}# next step, as explained in the lecture")
        out.append(line)
    return "\n".join(out)


def change_constant(code: str, constant: tuple[str, str]) -> str:
    old, new = constant
    assert old in code, old
    return code.replace(old, new, 1)


def disguise(original: Original) -> str:
    return change_constant(add_comments(reorder(rename(original.code, original.renames))), original.constant)


# -- the class ----------------------------------------------------------------------------------------------------
def write_notebook(path: Path, exercise: str, code: str) -> Path:
    """A notebook of the mutation suite's right answers with `exercise` replaced by `code`."""
    cells = {**mlp.BASE, exercise: code}
    path.write_bytes(notebook_bytes([mlp.HEADER, *cells.values()]))
    return path


def planted_class(folder: Path, n: int) -> list[tuple[str, str]]:
    """A generated class of `n` with a planted pair per exercise; returns the planted (a, b) names."""
    paths = make_class(folder, n, seed=3, assignment="mlp")
    for index, path in enumerate(paths):
        _sign(path, f"student {index}")
    planted = []
    step = max(1, n // (2 * len(ORIGINALS) + 1))
    for number, (exercise, original) in enumerate(ORIGINALS.items()):
        a, b = paths[(2 * number + 1) * step], paths[(2 * number + 2) * step]
        write_notebook(a, exercise, original.code)
        write_notebook(b, exercise, disguise(original))
        planted.append((exercise, a.name, b.name))
    return [(f"{e}:{a}", f"{e}:{b}") for e, a, b in planted]


def _sign(path: Path, who: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.source = re.sub(r"^((?:def|class) .*)$", rf"\1  # {who}", cell.source, flags=re.MULTILINE)
    nbformat.write(notebook, path)


def _unsigned(code: str) -> str:
    return re.sub(r"  # student \d+$", "", code, flags=re.MULTILINE)


def measure(n: int, tmp: Path) -> dict[str, object]:
    folder = tmp / f"class{n}"
    planted = planted_class(folder, n)
    spec = load_assignment("mlp")
    started = time.perf_counter()
    found = compare_class(spec, load_class([folder]), default_template(spec))
    seconds = time.perf_counter() - started
    reported = {(f"{p.exercise}:{p.a}", f"{p.exercise}:{p.b}") for p in found.pairs}
    others = [p for p in found.pairs if (f"{p.exercise}:{p.a}", f"{p.exercise}:{p.b}") not in planted]
    return {
        "n": n,
        "seconds": seconds,
        "compared": sum(found.candidates.values()),
        "all": len(spec.exercises) * n * (n - 1) // 2,
        "reported": len(found.pairs),
        "planted": sum(pair in reported for pair in planted),
        "planted_of": len(planted),
        "others": len(others),
        "others_identical": sum(_unsigned(p.code_a) == _unsigned(p.code_b) for p in others),
        "lowest_planted": min((p.similarity for p in found.pairs if p not in others), default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        measure(20, Path(tmp))  # imports (copydetect, Pygments' lexer) are not what is measured
        rows = [measure(n, Path(tmp)) for n in args.sizes]
    print("bench.similarity: generated mlp classes, 4 exercises, a disguised copy planted per exercise")
    print(f"{'submissions':>12} {'seconds':>8} {'pairs compared / all':>24} {'planted found':>14} "
          f"{'lowest planted':>15} {'other pairs (identical code)':>29}")  # fmt: skip
    for r in rows:
        print(f"{r['n']:>12} {r['seconds']:>8.2f} {str(r['compared']) + ' / ' + str(r['all']):>24} "
              f"{str(r['planted']) + ' of ' + str(r['planted_of']):>14} {r['lowest_planted']:>15.2f} "
              f"{str(r['others']) + ' (' + str(r['others_identical']) + ')':>29}")  # fmt: skip
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        ratio = (last["seconds"] / last["n"]) / (first["seconds"] / first["n"])  # type: ignore[operator]
        print(f"seconds per submission at {last['n']} / at {first['n']}: {ratio:.2f}x")
    missed = any(r["planted"] != r["planted_of"] or r["others"] != r["others_identical"] for r in rows)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
