"""Reference implementations of every exercise; imported by the grader only, never by student code."""
