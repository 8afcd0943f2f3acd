"""Auto-grader for PyTorch coursework: isolated workers run student code, pytest checks judge in the parent."""

from autograder.spec import AssignmentSpec, ExerciseSpec, SpecError, load_assignment

__all__ = ["AssignmentSpec", "ExerciseSpec", "SpecError", "load_assignment"]
__version__ = "0.1.0"
