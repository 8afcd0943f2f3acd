"""Where the project's assignments and reference solutions live."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# In a checkout (or an editable install) the data sits beside the package; an installed wheel carries it inside.
DATA_ROOT = PROJECT_ROOT if (PROJECT_ROOT / "assignments").is_dir() else Path(__file__).resolve().parent / "_data"
ASSIGNMENTS_DIR = DATA_ROOT / "assignments"
REFERENCE_DIR = DATA_ROOT / "reference_solutions"
EXAMPLES_DIR = PROJECT_ROOT / "examples" / "submissions"
BUILTIN_ASSIGNMENTS = ("mlp", "decoding", "spiking")


def assignment_dir(name_or_path: str | Path) -> Path:
    """A built-in assignment's folder by name, or the folder a path points at."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate.resolve()
    return ASSIGNMENTS_DIR / str(name_or_path)
