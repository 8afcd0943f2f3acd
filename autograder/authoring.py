"""Writing an assignment: `autograder new` scaffolds a working folder, `autograder validate` proves one.

A course keeps its assignments in its own repository; nothing here knows any assignment by name.
"""

from __future__ import annotations

import ast
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from autograder import messages
from autograder.spec import AssignmentSpec, load_assignment

TEMPLATE_BODY = "raise NotImplementedError('Student exercise')"


# -- autograder new -----------------------------------------------------------------------------------------------
def _files(name: str) -> dict[str, str]:
    """The files of a one-exercise assignment named `name` (row-wise softmax), each showing what a course needs."""
    return {
        "assignment.toml": f'''\
            # One exercise; add [[exercises]] tables for more. Points of an exercise = the points of its checks.
            name = "{name}"
            title = "Softmax by hand"
            source = "Your course, week N"
            reference = "reference.py"  # relative to this folder; students never see it
            intro = """
            You write the softmax function yourself. Every exercise is graded on exactly what its statement says."""

            [[exercises]]
            id = "softmax"
            title = "Exercise 1: a numerically stable softmax"
            symbols = {{ softmax = "function" }}  # what the student defines: "function" or "class"
            points = 10
            # Dotted names the student's code may not call for this exercise (the point of writing it yourself).
            forbidden = ["torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax"]
            statement = """
            `softmax(x)` returns `exp(x) / sum(exp(x))` along the last dimension of `x` (any shape), computed without
            overflow: subtract each row's maximum before `exp`."""
            ''',
        "reference.py": '''\
            """Reference solution: what a strong student would hand in (one signature per exercise)."""

            import torch


            def softmax(x):
                """Row-wise softmax over the last dimension, stable for large inputs."""
                shifted = x - x.amax(dim=-1, keepdim=True)  # (..., C): the largest entry of a row becomes 0
                e = torch.exp(shifted)
                return e / e.sum(dim=-1, keepdim=True)
            ''',
        "checks/test_softmax.py": '''\
            """softmax(x) = exp(x) / sum(exp(x)) over the last dimension, written without torch's softmax.

            Fixtures: `student` (calls run in the student's isolated worker), `reference` (reference.py, imported
            here only), `exercise` (its spec), `device`, `seed` and `gen` (a generator seeded per check, the same for
            every student). Markers: `points(n)` (required), `public` (students see it in `grader.check` and
            `autograder check`), `advisory` (advice only: reported, worth 0 points, written without `points`).
            """

            import pytest
            import torch

            from autograder.checklib import describe_inputs, expect, expect_tensor, forbidden_found


            @pytest.mark.public
            @pytest.mark.points(4)
            def test_matches_reference(student, reference, gen, seed):
                x = torch.randn(8, 5, generator=gen)
                # float32 sums of 5 terms: 1e-6 relative is far tighter than any real mistake
                expect_tensor(
                    student.softmax(x),
                    reference.softmax(x),
                    what="softmax(x)",
                    inputs=describe_inputs(seed, x=x),
                    rtol=1e-5,
                    atol=1e-6,
                    hint="divide exp(x) by its sum over the last dimension (dim=-1, keepdim=True).",
                )


            @pytest.mark.points(3)
            def test_large_inputs_do_not_overflow(student, reference):
                x = torch.tensor([[1000.0, 1001.0, 1002.0]])
                got = student.softmax(x)
                expect(
                    isinstance(got, torch.Tensor) and bool(torch.isfinite(got).all()),
                    "softmax(x) overflows for large inputs.",
                    inputs=f"x = {x.tolist()}",
                    hint="subtract each row's maximum before exp: the result does not change.",
                )
                expect_tensor(got, reference.softmax(x), what="softmax(x) for large x", rtol=1e-5, atol=1e-6)


            @pytest.mark.points(3)
            def test_written_by_hand(student, reference, exercise):
                # Points for writing it yourself go to a softmax that works and calls none of the forbidden names.
                x = torch.tensor([[0.0, 1.0, 2.0]])
                expect_tensor(student.softmax(x), reference.softmax(x), what="softmax(x)", rtol=1e-5, atol=1e-6)
                used = forbidden_found(student, "softmax", exercise.forbidden)
                expect(not used, f"softmax calls {', '.join(used)}, which this exercise asks you to write yourself.")


            @pytest.mark.advisory
            def test_keeps_float64(student, gen):
                x = torch.randn(4, 3, dtype=torch.float64, generator=gen)
                got = student.softmax(x)
                expect(
                    isinstance(got, torch.Tensor) and got.dtype == torch.float64,
                    "softmax(x) turned float64 input into another dtype.",
                    hint="use torch operations on x, not new float32 tensors.",
                )
            ''',
    }


def new_assignment(name: str, parent: Path) -> Path:
    """Write `parent/name/`: a working one-exercise assignment that `validate` passes as written."""
    if not name.isidentifier():
        raise ValueError(messages.NEW_BAD_NAME.format(name=name))
    folder = parent / name
    if folder.exists():
        raise ValueError(messages.NEW_EXISTS.format(folder=folder))
    for relative, text in _files(name).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


# -- autograder validate ------------------------------------------------------------------------------------------
@dataclass
class Validation:
    spec: AssignmentSpec
    problems: list[str] = field(default_factory=list)
    reference_score: float = 0.0
    template_score: float = 0.0
    reference_checks: dict[str, dict[str, bool]] = field(default_factory=dict)  # exercise -> check -> passed

    @property
    def ok(self) -> bool:
        return not self.problems


def template_source(spec: AssignmentSpec) -> str:
    """The reference module with the body of every exercise's function and method replaced by a raise: what a
    student starts from, which must score zero."""
    source = spec.reference_path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    names = {name for exercise in spec.exercises for name in exercise.symbol_names}
    lines = source.splitlines()
    cuts: list[tuple[int, int, int]] = []  # (first line, last line, indent) of each body, 1-based
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name not in names:
            continue
        functions = (
            [node] if isinstance(node, ast.FunctionDef) else [n for n in node.body if isinstance(n, ast.FunctionDef)]
        )
        for fn in functions:
            cuts.append((_body_start(fn, lines), fn.end_lineno or fn.lineno, fn.body[0].col_offset))
    for first, last, indent in sorted(cuts, reverse=True):
        lines[first - 1 : last] = [" " * indent + TEMPLATE_BODY]
    return "\n".join(lines) + "\n"


def _body_start(fn: ast.FunctionDef, lines: list[str]) -> int:
    """The first line after the signature and docstring, so that comments in the body go too."""
    if ast.get_docstring(fn) is not None and len(fn.body) > 1:
        return (fn.body[0].end_lineno or fn.body[0].lineno) + 1
    arguments = [*fn.args.posonlyargs, *fn.args.args, fn.args.vararg, *fn.args.kwonlyargs, fn.args.kwarg]
    ends = [fn.lineno] + [node.end_lineno or node.lineno for node in (*arguments, fn.returns) if node is not None]
    ends += [default.end_lineno or default.lineno for default in (*fn.args.defaults, *fn.args.kw_defaults) if default]
    line = max(ends)  # the signature's last argument; its closing `):` may be on a later line
    while line < len(lines) and not lines[line - 1].split("#")[0].rstrip().endswith(":"):
        line += 1
    return line + 1


def validate(assignment: str | Path) -> Validation:
    """The reference gets full marks, the template zero on every exercise, points add up, every exercise has a
    public check."""
    from autograder.grader import GradingError, grade_chunk
    from autograder.options import GradingOptions
    from autograder.submission import load_submissions

    spec = load_assignment(assignment)
    validation = Validation(spec)
    with tempfile.TemporaryDirectory(prefix="autograder-validate-") as tmp:
        reference = Path(tmp) / "reference.py"
        template = Path(tmp) / "template.py"
        reference.write_text(spec.reference_path.read_text(encoding="utf-8"), encoding="utf-8")
        template.write_text(template_source(spec), encoding="utf-8")
        try:
            ref_result, tpl_result = grade_chunk(spec, load_submissions([reference, template]), GradingOptions())
        except GradingError as exc:
            validation.problems.append(str(exc))
            return validation
    validation.reference_score, validation.template_score = ref_result.score, tpl_result.score
    validation.reference_checks = {e.id: {t.name: t.passed for t in e.tests} for e in ref_result.exercises}
    for error in ref_result.errors:
        validation.problems.append(messages.VALIDATE_REFERENCE_ERROR.format(error=error))
    for exercise, empty in zip(ref_result.exercises, tpl_result.exercises, strict=True):
        lost = [
            f"{t.name}: {t.message.splitlines()[0] if t.message else t.outcome}"
            for t in exercise.tests
            if not t.passed and t.counts
        ]
        if exercise.score < exercise.max_score:
            validation.problems.append(
                messages.VALIDATE_REFERENCE.format(
                    exercise=exercise.id, score=exercise.score, max=exercise.max_score, lost="; ".join(lost)
                )
            )
        if empty.score > 0:
            passed = [t.name for t in empty.tests if t.passed and t.counts]
            validation.problems.append(
                messages.VALIDATE_TEMPLATE.format(exercise=empty.id, score=empty.score, passed=", ".join(passed))
            )
        if not any(not t.hidden for t in exercise.tests):
            validation.problems.append(messages.VALIDATE_NO_PUBLIC.format(exercise=exercise.id))
    return validation
