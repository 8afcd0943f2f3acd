"""Wrong implementations a student could plausibly write, and correct ones written differently from the reference.

Each module defines BASE (exercise id -> correct code), MUTANTS and VARIANTS (lists of (exercise id, name, code)).
A submission is BASE with one exercise's code replaced, so a mutant may cost points on its exercise only.
"""
