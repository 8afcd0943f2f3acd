"""Otter's side: `build` writes master notebooks and runs `otter assign`; `bridge` is what their test cases call
and the `NativeScores` plugin that recomputes scores outside the student's kernel. (Not named `otter`, so that
nothing here could be mistaken for the otter-grader package it imports.)"""
