"""Errors every front end catches, importable without the grading machinery (torch, pytest)."""


class GradingError(RuntimeError):
    """The grader itself cannot run (bad checks, bad options); distinct from a submission's failure."""
