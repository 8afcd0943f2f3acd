"""The spec loader reads the three assignments and rejects broken specs with a message naming file and field."""

import shutil
from pathlib import Path

import pytest

from autograder import SpecError, load_assignment
from autograder.paths import ASSIGNMENTS_DIR, PROJECT_ROOT

EXPECTED = {
    "mlp": (["approximate_function", "Net", "cross_entropy_loss", "shuffle_and_split"], 40),
    "decoding": (["DeepNetReLU", "train", "regularized_loss"], 40),
    "spiking": (["LIF", "LIFNet"], 100),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_specs_load(name):
    spec = load_assignment(name)
    ids, total = EXPECTED[name]
    assert list(spec.exercise_ids) == ids
    assert spec.max_score == total
    assert spec.reference_path == PROJECT_ROOT / "reference_solutions" / f"{name}.py"


def test_spec_details():
    lif = load_assignment("spiking").exercise("LIF")
    assert [(s.name, s.kind) for s in lif.symbols] == [("lif", "function"), ("LIF", "class")]
    assert lif.points == 50
    ce = load_assignment("mlp").exercise("cross_entropy_loss")
    assert "torch.nn.functional.cross_entropy" in ce.forbidden
    assert load_assignment("mlp").exercise("shuffle_and_split").reference == ("shuffle_and_split_data",)


GOOD = ASSIGNMENTS_DIR / "mlp" / "assignment.toml"


@pytest.fixture
def broken(tmp_path: Path):
    """Copy of the mlp spec, in the layout the loader expects, with one replacement applied."""

    def make(old: str, new: str) -> Path:
        folder = tmp_path / "assignments" / "mlp"
        folder.mkdir(parents=True)
        shutil.copytree(PROJECT_ROOT / "reference_solutions", tmp_path / "reference_solutions")
        text = GOOD.read_text()
        assert old in text, f"fixture replacement {old!r} not found"
        (folder / "assignment.toml").write_text(text.replace(old, new, 1))
        return folder / "assignment.toml"

    return make


@pytest.mark.parametrize(
    "old, new, field, problem",
    [
        ('name = "mlp"', 'name = "mlpp"', "name", "folder is named 'mlp'"),
        ('name = "mlp"', 'name = "mlp"\npreload = "scipy"', "preload", "array of module names; got 'scipy'"),
        ('name = "mlp"', 'name = "mlp"\npreload = ["scipy signal"]', "preload", "'scipy signal' is not a module name"),
        ("points = 10", "points = -5", "exercises[0].points", "positive number; got -5"),
        ("points = 10", 'points = "ten"', "exercises[0].points", "positive number; got 'ten'"),
        (
            'approximate_function = "function"',
            'approximate_function = "method"',
            "exercises[0].symbols.approximate_function",
            "kind must be one of function, class; got 'method'",
        ),
        ('id = "Net"', 'id = "approximate_function"', "exercises[1].id", "used by more than one exercise"),
        ('id = "Net"', 'id = "my net"', "exercises[1].id", "not a Python identifier"),
        (
            'reference = "../../reference_solutions/mlp.py"',
            'reference = "../../reference_solutions/nope.py"',
            "reference",
            "does not exist",
        ),
        (
            'symbols = { Net = "class" }',
            'symbols = { Net = "class" }\nreference = ["Nett"]',
            "exercises[1].reference",
            "'Nett' is not defined",
        ),
        ("points = 10", "points = 10\npoitns = 3", "exercises[0].poitns", "not a known field"),
        ('title = "Multi', 'titel = "Multi', "titel", "not a known field"),
        ('source = "Neuromatch', '# source = "Neuromatch', "source", "is required"),
        ('"torch.nn.NLLLoss",', '"torch.nn.NLL Loss",', "exercises[2].forbidden", "dotted names"),
    ],
)
def test_broken_spec_is_rejected_with_file_field_and_problem(broken, old, new, field, problem):
    path = broken(old, new)
    with pytest.raises(SpecError) as info:
        load_assignment(path.parent)
    message = str(info.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert problem in message


def test_toml_syntax_error_names_the_file_and_line(broken):
    path = broken("[[exercises]]", "[[exercises]")
    with pytest.raises(SpecError, match=r"assignment\.toml: cannot read the spec: .*line \d+"):
        load_assignment(path)


def test_empty_exercise_list_is_rejected(tmp_path):
    folder = tmp_path / "assignments" / "x"
    folder.mkdir(parents=True)
    (tmp_path / "reference_solutions").mkdir()
    (tmp_path / "reference_solutions" / "x.py").write_text("")
    (folder / "assignment.toml").write_text('name="x"\ntitle="t"\nsource="s"\nreference="reference_solutions/x.py"\n')
    with pytest.raises(SpecError, match=r"field 'exercises' must be a non-empty array"):
        load_assignment(folder)


def test_an_older_spec_s_reference_path_from_the_repository_root_still_works(broken):
    path = broken('reference = "../../reference_solutions/mlp.py"', 'reference = "reference_solutions/mlp.py"')
    assert load_assignment(path.parent).reference_path == path.parent.parent.parent / "reference_solutions" / "mlp.py"


def test_unknown_assignment_name():
    with pytest.raises(SpecError, match="no assignment.toml"):
        load_assignment("no_such_assignment")
