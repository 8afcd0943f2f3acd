"""Synthetic classes: realistic mixes of right and wrong `mlp` submissions, made from the mutation suite."""

from __future__ import annotations

import random
from pathlib import Path

from autograder.submission import notebook_bytes
from tests.mutants import mlp

# Of every 20 students: 9 fully right (in one of the correct styles), 8 with one realistic mistake, 2 with an
# exercise left as the template (NotImplementedError), 1 whose notebook has a syntax error in one cell.
MIX = ["right"] * 9 + ["mistake"] * 8 + ["template"] * 2 + ["syntax"]
TEMPLATE = "def {name}(*args, **kwargs):\n    raise NotImplementedError('Student exercise')\n"
SYMBOLS = {"approximate_function": "approximate_function", "cross_entropy_loss": "cross_entropy_loss",
           "shuffle_and_split": "shuffle_and_split_data", "Net": "Net"}  # fmt: skip


def make_class(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """Write `n` notebooks into `folder`; the same seed gives the same class."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        kind = MIX[i % len(MIX)]
        cells = dict(mlp.BASE)
        if kind == "right":
            exercise, _, code = rng.choice(mlp.VARIANTS)
            cells[exercise] = code
        elif kind == "mistake":
            exercise, _, code = rng.choice(mlp.MUTANTS)
            cells[exercise] = code
        elif kind == "template":
            exercise = rng.choice(sorted(cells))
            cells[exercise] = TEMPLATE.format(name=SYMBOLS[exercise])
        else:
            exercise = rng.choice(sorted(cells))
            cells[exercise] = cells[exercise].replace("):", ")", 1)
        path = folder / f"student{i:05}.ipynb"
        path.write_bytes(notebook_bytes([mlp.HEADER, *cells.values()]))
        paths.append(path)
    return paths
