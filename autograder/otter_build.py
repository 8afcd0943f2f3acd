"""Otter packaging: master notebooks in otter-assign format, and `autograder build` (student notebook and
autograder zip per assignment).

The master notebook `assignments/<a>/<a>.ipynb` is written by `write_master` (python -m autograder.otter_build):
the exercise statements below, the reference solutions between `# BEGIN SOLUTION` / `# END SOLUTION`, and one
exception-based otter test case per native check (same points, public or hidden), each calling
`autograder.otter_bridge.check`. tests/test_otter.py fails when a master is out of date with the checks.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

import nbformat

from autograder.paths import ASSIGNMENTS_DIR, PROJECT_ROOT
from autograder.spec import AssignmentSpec, load_assignment

PLUGIN = "autograder.otter_bridge.NativeScores"

INTRO = {
    "mlp": "Multi-layer perceptrons (after Neuromatch Academy W1D3, Tutorial 1). You approximate a function with "
    "ReLUs, build a general MLP, write the cross-entropy loss yourself and split a dataset. Every exercise is "
    "graded on exactly what its statement says; nothing needs the internet.",
    "decoding": "Decoding neural responses (after Neuromatch Academy W2D1, Tutorial 1). You build a network with "
    "one hidden layer of ReLUs, train it by gradient descent and add L1/L2 regularization. The tutorial's "
    "recordings are replaced by small synthetic data of the same shape (orientation -> responses).",
    "spiking": "A spiking CNN (after the goal-driven deep learning tutorial). You write the smoothed leaky "
    "integrate-and-fire (LIF) rate function and its module, then a CNN that uses it after its first "
    "convolution. MNIST is replaced by small synthetic 28x28 images.",
}

STATEMENTS = {
    "approximate_function": """Approximate `y(x)` from training points `(x_train, y_train)` (each of shape
`(N, 1)`) by a weighted sum of `N - 1` ReLUs of slope 1, hinged at the training points but the last.
Return exactly `(y_hat, relu_acts, x)`: `x` is `torch.linspace(min(x_train), max(x_train), 1000)`,
`relu_acts` has shape `(N - 1, 1000)` with `relu_acts[i] = relu(x - x_train[i])`, and `y_hat = w @ relu_acts`
where `w[i]` is the change of slope of the piecewise-linear interpolation at `x_train[i]`.""",
    "Net": """`Net(actv, input_feature_num, hidden_unit_nums, output_feature_num)` is an `nn.Module`: for every
entry of `hidden_unit_nums` a `nn.Linear` followed by the activation `eval('nn.' + actv)` (e.g.
`'ReLU()'`, `'LeakyReLU(0.1)'`), then an output `nn.Linear` with no activation after it. `forward` flattens its
input to `(batch, input_feature_num)` first.""",
    "cross_entropy_loss": """`cross_entropy_loss(x, labels)` returns the **mean** over the batch of
`-x[i, labels[i]] + log(sum_j exp(x[i, j]))`, as a scalar tensor that gradients flow through. Write it with
tensor operations: `F.cross_entropy`, `nn.CrossEntropyLoss`, `nll_loss` and `log_softmax` are not allowed.""",
    "shuffle_and_split": """`shuffle_and_split_data(X, y, seed)` calls `torch.manual_seed(seed)`, then shuffles the
rows with `torch.randperm(N)` (X and y the same way), takes `test_size = int(0.2 * N)` and returns exactly
`(X_test, y_test, X_train, y_train)`: the **first** `test_size` shuffled rows are the test set. It must not
change its inputs.""",
    "DeepNetReLU": """`DeepNetReLU(n_inputs, n_hidden)`: one hidden `nn.Linear(n_inputs, n_hidden)` with ReLU, then
`nn.Linear(n_hidden, 1)` with no activation; `forward(r)` maps `(N, n_inputs)` to `(N, 1)`.""",
    "train": """`train(net, loss_fn, train_data, train_labels, n_iter=50, learning_rate=1e-4, test_data=None,
test_labels=None, L2_penalty=0, L1_penalty=0)` runs `n_iter` full-batch steps of `optim.SGD(net.parameters(),
lr=learning_rate)`: zero the gradients, compute the loss (passing `net.parameters()` and the penalties to a
loss that takes them), backpropagate, step. It returns the list of training losses (floats, one per step) or,
given test data, `(train_loss, test_loss)`.""",
    "regularized_loss": """`regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0)` is
`F.nll_loss(output, target)` plus `L2_penalty * sum(w ** 2)` plus `L1_penalty * sum(|w|)` over every tensor in
`weights` (sums, not means; L1 not squared).""",
    "LIF": """`lif(x)` is the smoothed LIF rate `1 / (TAU_REF + TAU_M * log(1 + V_THR / rho(x - V_THR)))` with
`TAU_M = 0.02`, `TAU_REF = 0.004`, `V_THR = 1.0` and the soft maximum `rho(v) = GAMMA * log(1 + exp(v / GAMMA))`,
`GAMMA = 0.15`; it must give finite values and gradients for every input. `LIF` is an `nn.Module` whose
`forward` applies `lif` elementwise (output shape = input shape).""",
    "LIFNet": """`LIFNet()`: the tutorial's CNN on `(N, 1, 28, 28)` images with the LIF module as the activation
after the **first** convolution only (ReLU elsewhere), ending in 10 outputs: `(N, 1, 28, 28) -> (N, 10)`.""",
}


# -- master notebooks ---------------------------------------------------------------------------------------------
def _with_solution_markers(source: str, names: Sequence[str]) -> tuple[str, str]:
    """(header, exercise code) of a reference module: the exercise's definitions with each function body (after
    its docstring) between BEGIN/END SOLUTION, so that the student version keeps signatures and docstrings."""
    tree = ast.parse(source)
    lines = source.splitlines()
    blocks = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            blocks.append((start, node.end_lineno or node.lineno, node))
    marked = []
    for start, end, node in blocks:
        chunk = lines[start:end]
        functions = (
            [node] if isinstance(node, ast.FunctionDef) else [n for n in node.body if isinstance(n, ast.FunctionDef)]
        )
        inserts: list[tuple[int, int, str]] = []
        for fn in functions:
            body = fn.body[1:] if ast.get_docstring(fn) is not None and len(fn.body) > 1 else fn.body
            first, last = body[0].lineno - 1 - start, (fn.end_lineno or fn.lineno) - start
            indent = " " * body[0].col_offset
            inserts.append((first, last, indent))
        for first, last, indent in sorted(inserts, reverse=True):
            chunk = [
                *chunk[:first],
                f"{indent}# BEGIN SOLUTION",
                *chunk[first:last],
                f"{indent}# END SOLUTION",
                *chunk[last:],
            ]
        marked.append("\n".join(chunk))
    header = [
        ast.get_source_segment(source, n) or ""
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign))
    ]
    return "\n".join(header), "\n\n\n".join(marked)


def solution_cells(spec: AssignmentSpec) -> tuple[str, dict[str, str]]:
    """The reference solutions as notebook code: a header cell and one cell per exercise (with markers)."""
    source = spec.reference_path.read_text(encoding="utf-8")
    header = ""
    cells = {}
    for exercise in spec.exercises:
        header, code = _with_solution_markers(source, exercise.symbol_names)
        cells[exercise.id] = code
    return header, cells


def _unmarked(code: str) -> str:
    return "\n".join(line for line in code.splitlines() if line.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION"))


def native_checks(spec: AssignmentSpec) -> dict[str, list[tuple[str, float, bool]]]:
    """(name, points, hidden) of every native check, by exercise, in grading order (from grading the solution)."""
    from autograder.otter_bridge import grade_cells

    header, cells = solution_cells(spec)
    result = grade_cells([header, *(_unmarked(c) for c in cells.values())], spec.name)
    found = {e.id: [(t.name, t.max_score, t.hidden) for t in e.tests] for e in result.exercises}
    failed = [f"{e.id}: {t.name}" for e in result.exercises for t in e.tests if not t.passed]
    if failed:
        raise RuntimeError(f"{spec.name}: the reference solutions fail native checks: {failed}")
    return found


def _test_cell(assignment: str, exercise: str, index: int, name: str, points: float, hidden: bool) -> str:
    function = f"test_{exercise}_" + re.sub(r"\W+", "_", name).strip("_") + f"_{index}"
    return textwrap.dedent(
        f'''\
        """ # BEGIN TEST CONFIG
        points: {points!r}
        hidden: {str(hidden).lower()}
        """ # END TEST CONFIG
        def {function}(env):
            from autograder.otter_bridge import check
            check(env, {assignment!r}, {exercise!r}, {name!r}, hidden={hidden})
        '''
    ).rstrip()


def master_notebook(assignment: str) -> nbformat.NotebookNode:
    spec = load_assignment(assignment)
    header, cells = solution_cells(spec)
    checks = native_checks(spec)
    config = textwrap.dedent(
        f"""\
        # ASSIGNMENT CONFIG
        requirements: requirements.txt
        run_tests: false
        export_cell: false
        tests:
          ok_format: false
        plugins:
          - {PLUGIN}:
              assignment: {spec.name}
        """
    )
    nb = nbformat.v4.new_notebook()
    new_raw, new_md, new_code = nbformat.v4.new_raw_cell, nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb.cells = [
        new_raw(config),
        new_md(f"# {spec.title}\n\n{INTRO[spec.name]}\n\nSource: {spec.source}"),
        new_code(header),
    ]
    for exercise in spec.exercises:
        forbidden = (
            "\n\nNot allowed here: " + ", ".join(f"`{f}`" for f in exercise.forbidden) if exercise.forbidden else ""
        )
        nb.cells += [
            new_raw(f"# BEGIN QUESTION\nname: {exercise.id}"),
            new_md(f"## {exercise.title} ({exercise.points:g} points)\n\n{STATEMENTS[exercise.id]}{forbidden}"),
            new_raw("# BEGIN SOLUTION"),
            new_code(cells[exercise.id]),
            new_raw("# END SOLUTION"),
            new_raw("# BEGIN TESTS"),
            *(
                new_code(_test_cell(spec.name, exercise.id, i, name, points, hidden))
                for i, (name, points, hidden) in enumerate(checks[exercise.id], start=1)
            ),
            new_raw("# END TESTS"),
            new_raw("# END QUESTION"),
        ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def master_path(assignment: str) -> Path:
    return ASSIGNMENTS_DIR / assignment / f"{assignment}.ipynb"


def write_master(assignment: str) -> Path:
    path = master_path(assignment)
    nb = master_notebook(assignment)
    for index, cell in enumerate(nb.cells):  # stable ids: regenerating a master changes only what changed
        cell.id = f"{assignment}-{index:03d}"
    nbformat.write(nb, str(path))
    return path


# -- build --------------------------------------------------------------------------------------------------------
class BuildError(ValueError):
    pass


def build_wheel(out: Path) -> Path:
    """The project as a wheel (assignments and references inside), for the autograder zip to install."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(PROJECT_ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    wheels = sorted(out.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise BuildError(f"building the project's wheel failed:\n{done.stderr[-2000:]}")
    return wheels[-1]


TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def build(assignments: Sequence[str], out: Path, trusted_scores: bool = True) -> dict[str, tuple[Path, Path]]:
    """`otter assign` every master notebook: OUT/<a>/student/<a>.ipynb and OUT/<a>/autograder/<one zip>."""
    built = {}
    with tempfile.TemporaryDirectory(prefix="autograder-build-") as tmp:
        wheel = build_wheel(Path(tmp) / "wheel")
        for assignment in assignments:
            master = master_path(assignment)
            if not master.exists():
                raise BuildError(f"{master}: no master notebook (python -m autograder.otter_build writes it)")
            work = Path(tmp) / assignment
            work.mkdir()
            nb = nbformat.read(str(master), as_version=4)
            config = nb.cells[0].source
            if not trusted_scores:
                config = config.split("plugins:")[0]
            nb.cells[0].source = config.replace(
                "requirements: requirements.txt", f"requirements: requirements.txt\nautograder_files:\n  - {wheel.name}"
            )
            nbformat.write(nb, str(work / master.name))
            shutil.copy(wheel, work / wheel.name)
            # Gradescope/otter's setup installs the requirements (after otter's own, pinned to this otter's
            # version) from /autograder/source, where `files` land; torch from the CPU index, as graders have
            # no GPU and the default wheels pull gigabytes of CUDA libraries.
            (work / "requirements.txt").write_text(f"{TORCH_CPU_INDEX}\n/autograder/source/files/{wheel.name}\n")
            done = subprocess.run(
                [sys.executable, "-m", "otter", "assign", master.name, "dist", "--no-pdfs"],
                cwd=work,
                capture_output=True,
                text=True,
            )
            zips = sorted((work / "dist" / "autograder").glob("*.zip"))
            student = work / "dist" / "student" / master.name
            if done.returncode != 0 or len(zips) != 1 or not student.exists():
                raise BuildError(f"otter assign failed for {assignment}:\n{(done.stdout + done.stderr)[-3000:]}")
            target = out / assignment
            shutil.rmtree(target, ignore_errors=True)
            (target / "autograder").mkdir(parents=True)
            shutil.copytree(work / "dist" / "student", target / "student", dirs_exist_ok=True)  # with public tests
            shutil.copy(zips[0], target / "autograder" / zips[0].name)
            built[assignment] = (target / "student" / master.name, target / "autograder" / zips[0].name)
    return built


if __name__ == "__main__":  # maintainers: rewrite the master notebooks after the checks change
    for name in sys.argv[1:] or ["mlp", "decoding", "spiking"]:
        print(write_master(name))


def fill_in_solutions(student: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """A copy of a student notebook with every exercise cell replaced by the reference solution (to check a build)."""
    spec = load_assignment(assignment)
    _, cells = solution_cells(spec)
    by_first_line = {_unmarked(code).splitlines()[0]: _unmarked(code) for code in cells.values()}
    filled = nbformat.from_dict(student)
    for cell in filled.cells:
        if cell.cell_type == "code" and cell.source.splitlines() and cell.source.splitlines()[0] in by_first_line:
            cell.source = by_first_line[cell.source.splitlines()[0]]
    return filled
