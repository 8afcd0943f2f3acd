"""Where the project's assignments, reference solutions and example submissions live."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# In a checkout (or an editable install) the data sits beside the package; an installed wheel carries it inside.
DATA_ROOT = PROJECT_ROOT if (PROJECT_ROOT / "assignments").is_dir() else Path(__file__).resolve().parent / "_data"
ASSIGNMENTS_DIR = DATA_ROOT / "assignments"
REFERENCE_DIR = DATA_ROOT / "reference_solutions"
EXAMPLES_DIR = DATA_ROOT / "examples" / "submissions"  # what `autograder demo` grades


def assignment_dir(name_or_path: str | Path) -> Path:
    """A built-in assignment's folder by name, or the folder a path points at. A bare built-in name always means
    the built-in, whatever folder of that name the current directory holds (a student's upload, say)."""
    builtin = ASSIGNMENTS_DIR / str(name_or_path)
    if isinstance(name_or_path, str) and "/" not in name_or_path and (builtin / "assignment.toml").is_file():
        return builtin
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate.resolve()
    return builtin


def is_builtin(folder: Path) -> bool:
    return folder.resolve().parent == ASSIGNMENTS_DIR.resolve()


def builtin_names() -> tuple[str, ...]:
    """The assignments shipped with the package, found on disk (the engine knows none by heart)."""
    return tuple(sorted(p.parent.name for p in ASSIGNMENTS_DIR.glob("*/assignment.toml")))
