"""The namespace layers without root: what a worker sees when an ordinary user grades (nobody here), layer by layer,
probed past the audit hook (torch.from_file opens files in C), and how the view is planned."""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from autograder.paths import PROJECT_ROOT
from autograder.runner import namespaces, sandbox

from . import unprivileged

# Run by nobody: one worker per layer, each asked what it can see and do. Native reads and writes (torch.from_file)
# go past the audit hook, so what they find is the namespaces' doing.
PROBE = """
import json, os, sys
from autograder.paths import REFERENCE_DIR
from autograder.runner.proxy import Worker
from autograder.runner.worker import GlobalRef, WorkerConfig

CODE = '''
import os, torch
def attempt(what):
    try:
        return eval(what)
    except BaseException as e:
        return type(e).__name__ + ": " + str(e)
'''
PROBES = {
    "uid": "os.getuid()",
    "capabilities": "open('/proc/self/status').read().split('CapEff:')[1].split()[0]",
    "home": f"sorted(os.listdir({os.environ['HOME']!r}))",
    "tmp": "sorted(os.listdir('/tmp'))",
    "reference": f"torch.from_file({str(REFERENCE_DIR / 'mlp.py')!r}, size=16, dtype=torch.uint8).tolist()",
    "write_outside": "torch.from_file('/tmp/autograder-probe-escape', shared=True, size=4).tolist()",
    "interfaces": "[line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]]",
}
found = {}
for name, env in json.loads(sys.argv[1]).items():
    worker = Worker(WorkerConfig(env=env))
    try:
        layer = worker.request("load", [(0, CODE)], "all", timeout=120)["value"]["sandbox"]
        answers = {k: worker.request("call", GlobalRef("attempt"), (v,), {}, None, timeout=60)["value"]
                   for k, v in PROBES.items()}
        found[name] = {"layer": layer, **answers}
    finally:
        worker.stop()
print(json.dumps(found))
"""
RUNS = {
    "user-namespaces": {},
    "bubblewrap": {sandbox.LAYER_ENV: "bubblewrap"},  # as where user namespaces are refused
    "neither": {sandbox.LAYER_ENV: "bubblewrap", "PATH": "/nonexistent"},  # and bubblewrap is not installed
}


@pytest.fixture(scope="module")
def seen():
    """What nobody's workers saw, by run (one process, one fork server, three workers)."""
    arranged = unprivileged.arrange()
    yield _probed(arranged), arranged
    shutil.rmtree(arranged.root, ignore_errors=True)


def _probed(arranged: unprivileged.Unprivileged) -> dict:
    secret = arranged.home / "secret.txt"
    secret.write_text("the instructor's own file\n")
    os.chown(secret, arranged.uid, arranged.gid)
    marker = Path("/tmp/autograder-probe-escape")
    if marker.exists():
        marker.unlink()
    proc = arranged.run(PROBE.replace("sys.argv[1]", repr(json.dumps(RUNS))), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.splitlines()[-1])
    found["escaped"] = marker.exists()
    if marker.exists():
        marker.unlink()
    return found


@pytest.mark.slow
@pytest.mark.parametrize("run", ["user-namespaces", "bubblewrap"])
def test_an_unprivileged_workers_view_is_the_root_layers(seen, run):
    found, arranged = seen
    if run == "bubblewrap" and not namespaces.bubblewrap():
        pytest.skip("bubblewrap is not installed (Debian and Ubuntu: apt-get install bubblewrap)")
    expected = unprivileged.expected_layer(arranged) if run == "user-namespaces" else "bubblewrap"
    probes = found[run]
    assert probes["layer"] == expected
    assert probes["uid"] == arranged.uid  # mapped to itself: the same unprivileged user inside
    assert probes["capabilities"] == "0000000000000000"
    # The instructor's home folder: emptied, or gone with /tmp where (as here) it lies there; nothing of theirs.
    assert probes["home"] == [] or str(probes["home"]).startswith("FileNotFoundError"), probes["home"]
    # its own scratch folder and the way to the environment (which lies in /tmp here); no other worker's folder
    workers = [name for name in probes["tmp"] if name.startswith("autograder-worker-")]
    environment = ways_in_tmp(sysconfig.get_paths()["purelib"], PROJECT_ROOT)  # where a CI clones into /tmp
    assert len(workers) == 1 and set(probes["tmp"]) == {*workers, arranged.root.name, *environment}, probes["tmp"]
    assert str(probes["reference"]).startswith("RuntimeError"), probes["reference"]  # covered, even to C code
    assert "Read-only file system" in str(probes["write_outside"]), probes["write_outside"]
    assert probes["interfaces"] == ["lo"]  # a network namespace of its own: no way out


@pytest.mark.slow
def test_without_namespaces_or_bubblewrap_only_the_audit_hook_remains_and_the_result_says_so(seen):
    found, _ = seen
    probes = found["neither"]
    assert probes["layer"] == "audit-hook"
    assert "secret.txt" in probes["home"]  # the limit of this layer, as the README says
    assert found["escaped"]  # torch.from_file writes where it likes: why the namespace layers matter


def test_root_workers_run_as_nobody_and_see_neither_homes_nor_other_temporary_files(tmp_path):
    from autograder.runner.proxy import Worker
    from autograder.runner.worker import GlobalRef, WorkerConfig

    if os.geteuid() != 0:
        pytest.skip("the root layer needs root")
    (tmp_path / "grader-only.txt").write_text("not for workers\n")
    worker = Worker(WorkerConfig())
    try:
        code = "import os\ndef look(path):\n    return os.getuid(), sorted(os.listdir(path))\n"
        assert worker.request("load", [(0, code)], "all", timeout=60)["value"]["sandbox"] == "namespaces"
        home = os.path.realpath(os.path.expanduser("~"))
        uid, shown = worker.request("call", GlobalRef("look"), (home,), {}, None, timeout=60)["value"]
        assert uid == namespaces.unprivileged_ids()[0]
        kept = sandbox.kept_paths()
        assert all(any(k.startswith(os.path.join(home, name)) for k in kept) for name in shown), shown
        _, shown = worker.request("call", GlobalRef("look"), (os.path.dirname(worker.scratch),), {}, None, timeout=60)[
            "value"
        ]
        assert set(shown) == {os.path.basename(worker.scratch), *ways_in_tmp(*kept)}, shown
    finally:
        worker.stop()


def ways_in_tmp(*paths: str | Path) -> set[str]:
    """The first folder under /tmp of each path that lies there (the environment, or a checkout cloned into /tmp):
    the one thing of /tmp besides its own scratch folder that a worker may see."""
    tmp = os.path.realpath("/tmp")
    real = [os.path.realpath(p) for p in paths]
    return {os.path.relpath(r, tmp).split(os.sep)[0] for r in real if r.startswith(tmp + os.sep)}


# -- the plan, without any process ------------------------------------------------------------------------------
def test_a_home_folder_is_emptied_but_for_the_environment_inside_it(tmp_path):
    home, venv, scratch = tmp_path / "home", tmp_path / "home" / "course" / ".venv", tmp_path / "tmp" / "w1"
    for folder in (venv / "lib", scratch):
        folder.mkdir(parents=True)
    view = namespaces.make_view([], str(scratch), [str(venv), str(venv / "lib")], [str(home)])
    assert view.hidden == (str(home), str(tmp_path / "tmp"))
    assert namespaces._holes(view, str(home)) == [str(venv)]  # the outermost kept path only
    assert namespaces._holes(view, str(tmp_path / "tmp")) == [str(scratch)]


def test_a_folder_that_holds_the_environment_itself_or_the_root_is_never_hidden(tmp_path):
    scratch = tmp_path / "w1"
    scratch.mkdir()
    view = namespaces.make_view([], str(scratch), [str(tmp_path / "env")], ["/", str(tmp_path / "env" / "home")])
    assert view.hidden == (str(tmp_path),)


def test_bubblewrap_gets_the_same_view_in_an_order_it_can_apply(tmp_path):
    home, kept, scratch = tmp_path / "home", tmp_path / "home" / "env", tmp_path / "tmp" / "w1"
    sealed_inside, sealed_file = home / "course" / "checks", tmp_path / "reference.py"
    for folder in (kept, scratch, sealed_inside):
        folder.mkdir(parents=True)
    sealed_file.write_text("")
    view = namespaces.make_view([str(sealed_inside), str(sealed_file)], str(scratch), [str(kept)], [str(home)])
    arguments = " ".join(namespaces._bwrap_arguments(view))
    assert "--unshare-user --unshare-net" in arguments
    assert f"--tmpfs {home} --ro-bind {kept} {kept} --remount-ro {home}" in arguments
    assert f"--tmpfs {tmp_path / 'tmp'} --bind {scratch} {scratch} --remount-ro {tmp_path / 'tmp'}" in arguments
    assert f"--ro-bind /dev/null {sealed_file}" in arguments
    assert str(sealed_inside) not in arguments  # already gone with the home folder: no mount point to make


@pytest.mark.parametrize(
    "euid, env, expected",
    [
        (0, {}, ("namespaces",)),
        (1000, {}, ("user-namespaces", "bubblewrap")),
        (1000, {sandbox.LAYER_ENV: "bubblewrap"}, ("bubblewrap",)),
        (1000, {sandbox.LAYER_ENV: "audit-hook"}, ()),
        (0, {sandbox.NO_NAMESPACES_ENV: "1"}, ()),
    ],
)
def test_the_layers_tried_depend_on_who_grades(monkeypatch, euid, env, expected):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.delenv(sandbox.LAYER_ENV, raising=False)
    monkeypatch.delenv(sandbox.NO_NAMESPACES_ENV, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert sandbox._layers_to_try() == expected
