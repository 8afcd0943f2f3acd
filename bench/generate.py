"""Classes of generated submissions of a built-in assignment: realistic mixes of right and wrong exercise code
made from the mutation suite, in one of two shapes: "synthetic" (the exercise code and its imports, nothing else)
or "realistic" (the same code inside a notebook shaped like the course's own, see bench/realistic.py)."""

from __future__ import annotations

import importlib
import random
from pathlib import Path

from autograder.spec import load_assignment
from autograder.submission import notebook_bytes
from bench.realistic import realistic_notebook

# Of every 20 students: 9 fully right (in one of the correct styles), 8 with one realistic mistake, 2 with an
# exercise left as the template (NotImplementedError), 1 whose notebook has a syntax error in one cell.
MIX = ["right"] * 9 + ["mistake"] * 8 + ["template"] * 2 + ["syntax"]
TEMPLATE = "def {name}(*args, **kwargs):\n    raise NotImplementedError('Student exercise')\n"
STYLES = ("synthetic", "realistic")


def make_class(folder: Path, n: int, seed: int = 0, assignment: str = "mlp", style: str = "synthetic") -> list[Path]:
    """Write `n` notebooks of `assignment` in `style` into `folder`; the same seed gives the same class."""
    if style not in STYLES:
        raise ValueError(f"unknown class style {style!r}; one of {', '.join(STYLES)}")
    mutants = importlib.import_module(f"tests.mutants.{assignment}")
    symbols = {e.id: e.symbol_names[0] for e in load_assignment(assignment).exercises}
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        kind = MIX[i % len(MIX)]
        cells = dict(mutants.BASE)
        if kind == "right":
            exercise, _, code = rng.choice(mutants.VARIANTS)
            cells[exercise] = code
        elif kind == "mistake":
            exercise, _, code = rng.choice(mutants.MUTANTS)
            cells[exercise] = code
        elif kind == "template":
            exercise = rng.choice(sorted(cells))
            cells[exercise] = TEMPLATE.format(name=symbols[exercise])
        else:
            exercise = rng.choice(sorted(cells))
            cells[exercise] = cells[exercise].replace("):", ")", 1)
        path = folder / f"student{i:05}.ipynb"
        if style == "realistic":
            path.write_bytes(realistic_notebook(assignment, mutants.HEADER, cells, seed=seed * 1_000_003 + i))
        else:
            path.write_bytes(notebook_bytes([mutants.HEADER, *cells.values()]))
        paths.append(path)
    return paths
