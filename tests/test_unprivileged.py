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
from autograder.runner import namespaces, policy, sandbox

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
    "processes": "sorted(p for p in os.listdir('/proc') if p.isdigit())",
}
RAW = '''
import ctypes, errno, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
def raw(number, *args):
    result = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return errno.errorcode.get(ctypes.get_errno(), "?") if result < 0 else "allowed"
'''
NUMBERS = json.loads(sys.argv[2])
found = {}
for name, env in json.loads(sys.argv[1]).items():
    worker = Worker(WorkerConfig(env=env))
    try:
        loaded = worker.request("load", [(0, CODE)], "all", timeout=120)["value"]
        answers = {k: worker.request("call", GlobalRef("attempt"), (v,), {}, None, timeout=60)["value"]
                   for k, v in PROBES.items()}
        found[name] = {"layer": loaded["sandbox"], "walls": loaded["walls"], **answers}
    finally:
        worker.stop()
    worker = Worker(WorkerConfig(env=env, audit_hook=False))  # the kernel's walls alone
    try:
        worker.request("load", [(0, RAW)], "all", timeout=120)
        found[name]["kernel"] = {call: worker.request("call", GlobalRef("raw"), (number, *args), {}, None,
                                                      timeout=60)["value"] for call, (number, args) in NUMBERS.items()}
    finally:
        worker.stop()
print(json.dumps(found))
"""
RUNS = {
    "user-namespaces": {},
    "bubblewrap": {sandbox.LAYER_ENV: "bubblewrap"},  # as where user namespaces are refused
    "neither": {sandbox.LAYER_ENV: "bubblewrap", "PATH": "/nonexistent"},  # and bubblewrap is not installed
}


# What a grader never needs, reached past the audit hook: refused by the kernel in every namespace layer.
KERNEL_CALLS = {"execve": (0, 0, 0), "fork": (), "unshare": (0x10000000,), "memfd_create": (0, 0),
                "io_uring_setup": (8, 0), "ptrace": (16, 1, 0, 0)}  # fmt: skip


def _calls() -> dict[str, tuple[int, tuple[int, ...]]]:
    pyseccomp = pytest.importorskip("pyseccomp", reason="libseccomp is not installed")
    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in KERNEL_CALLS}
    return {name: (number, KERNEL_CALLS[name]) for name, number in numbers.items() if number >= 0}


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
    probe = PROBE.replace("sys.argv[1]", repr(json.dumps(RUNS))).replace("sys.argv[2]", repr(json.dumps(_calls())))
    proc = arranged.run(probe, timeout=300)
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
    workers = [name for name in probes["tmp"] if name[len("autograder-") :][:1].isdigit()]  # its scratch's folder
    environment = ways_in_tmp(sysconfig.get_paths()["purelib"], PROJECT_ROOT)  # where a CI clones into /tmp
    assert len(workers) == 1 and set(probes["tmp"]) == {*workers, arranged.root.name, *environment}, probes["tmp"]
    assert str(probes["reference"]).startswith("RuntimeError"), probes["reference"]  # covered, even to C code
    assert "Read-only file system" in str(probes["write_outside"]), probes["write_outside"]
    assert probes["interfaces"] == ["lo"]  # a network namespace of its own: no way out
    assert len(probes["processes"]) <= 3, probes["processes"]  # its own tree: itself, its process 1 (and bwrap's)
    walls = probes["walls"]
    assert walls["quota"] and walls["seccomp"] and walls["unprivileged"] and walls["tasks"], walls
    assert set(probes["kernel"].values()) == {"EPERM"}, probes["kernel"]


@pytest.mark.slow
def test_without_namespaces_or_bubblewrap_only_the_audit_hook_remains_and_the_result_says_so(seen):
    found, _ = seen
    probes = found["neither"]
    assert probes["layer"] == "audit-hook"
    assert "secret.txt" in probes["home"]  # the limit of this layer, as the README says
    assert found["escaped"]  # torch.from_file writes where it likes: why the namespace layers matter
    assert len(probes["processes"]) > 3  # the machine's processes are in sight (seccomp keeps it from signalling them)
    assert sandbox.missing_walls(probes["walls"]) == ("namespaces", "quota", "tasks")
    assert set(probes["kernel"].values()) == {"EPERM"}, probes["kernel"]  # seccomp holds without namespaces


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
        granted = granted_paths()
        assert all(any(policy.within(g, os.path.join(home, name)) for g in granted) for name in shown), shown
        parent = os.path.dirname(worker.scratch)  # its grader process's folder of scratch folders: only its own
        _, shown = worker.request("call", GlobalRef("look"), (parent,), {}, None, timeout=60)["value"]
        assert set(shown) == {os.path.basename(worker.scratch)}, shown
        _, shown = worker.request("call", GlobalRef("look"), (os.path.dirname(parent),), {}, None, timeout=60)["value"]
        assert set(shown) == {os.path.basename(parent), *ways_in_tmp(*granted)}, shown
    finally:
        worker.stop()


def granted_paths() -> tuple[str, ...]:
    """What this process's workers are granted, the view's top-level folders (as the grader grants them)."""
    from autograder.runner.proxy import sealed_sys_path

    grants = policy.grant(scratch="/tmp/x", sealed=(), excluded=sealed_sys_path(), holders=(), cuda=False)
    return (*grants.read_only, *(a for a, _ in grants.aliases))


def ways_in_tmp(*paths: str | Path) -> set[str]:
    """The first folder under /tmp of each path that lies there (the environment, or a checkout cloned into /tmp):
    the one thing of /tmp besides its own scratch folder that a worker may see."""
    tmp = os.path.realpath("/tmp")
    real = [os.path.realpath(p) for p in paths]
    return {os.path.relpath(r, tmp).split(os.sep)[0] for r in real if r.startswith(tmp + os.sep)}


# -- the grant, without any process ---------------------------------------------------------------------------
def test_the_grant_holds_the_environment_and_system_and_nothing_of_the_grader(tmp_path, monkeypatch):
    home, course = tmp_path / "home", tmp_path / "home" / "course"
    for folder in (course / "checks", course / "tools", tmp_path / "scratch"):
        folder.mkdir(parents=True)
    # The instructor put the whole course folder and their home on the import path: neither may be granted.
    monkeypatch.setattr("sys.path", [*__import__("sys").path, str(course), str(home), str(course / "tools")])
    from autograder.runner.proxy import sealed_sys_path

    grants = policy.grant(
        scratch=str(tmp_path / "scratch"),
        sealed=[str(course / "checks")],
        excluded=sealed_sys_path(),
        holders=[str(home)],
        cuda=False,
    )
    granted = (*grants.read_only, *(a for a, _ in grants.aliases))
    assert str(home) not in granted and str(course) not in granted  # they hold the home or a sealed folder
    assert str(course / "tools") in granted  # an import folder inside a home folder is fine
    assert any(policy.within(sysconfig.get_paths()["purelib"], g) for g in granted)
    assert any(policy.within(os.path.realpath(p), g) for p in ("/usr/lib",) for g in granted)
    assert policy.package_root() in granted and str(PROJECT_ROOT) not in granted  # the package, not the checkout
    assert not any(policy.within(str(tmp_path / "scratch"), g) for g in granted)  # made in the view, not bound
    assert grants.devices == tuple(d for d in policy.STANDARD_DEVICES if os.path.exists(d))


def test_a_sealed_path_inside_something_granted_is_covered(tmp_path, monkeypatch):
    # An installed grader: its built-in assignments and references live in site-packages, which is granted.
    site = tmp_path / "site-packages"
    data = site / "autograder" / "_data" / "reference_solutions"
    data.mkdir(parents=True)
    environment = policy.environment_roots()
    monkeypatch.setattr(policy, "environment_roots", lambda: (*environment, str(site)))
    grants = policy.grant(scratch=str(tmp_path / "w"), sealed=[str(data)], excluded=[], holders=[], cuda=False)
    assert str(site) in grants.read_only
    assert grants.sealed == (str(data),)


def test_a_gpu_worker_is_granted_the_nvidia_nodes_and_only_those(tmp_path):
    for name in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia1", "nvidia-modeset", "kvm",
                 "nvme0", "dri/card0", "nvidia-caps/nvidia-cap1", "nvidia-caps/nvidia-cap2"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    found = {os.path.relpath(p, tmp_path) for p in policy.cuda_devices(str(tmp_path))}
    assert found == {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia0", "nvidia1",
                     "nvidia-caps/nvidia-cap1", "nvidia-caps/nvidia-cap2"}  # fmt: skip


def test_the_loader_configuration_names_library_folders(tmp_path, monkeypatch):
    (tmp_path / "cuda" / "lib").mkdir(parents=True)
    conf = tmp_path / "ld.so.conf.d"
    conf.mkdir()
    (conf / "cuda.conf").write_text(f"# CUDA\n{tmp_path / 'cuda' / 'lib'}\n/does/not/exist\n")
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    assert policy.loader_folders(str(conf)) == (str(tmp_path / "cuda" / "lib"),)


def test_a_worker_inherits_no_variable_of_the_grader_but_those_it_needs(monkeypatch):
    inherited = {"CANVAS_TOKEN": "secret", "AWS_SECRET_ACCESS_KEY": "x", "HOME": "/root", "LANG": "de_DE.UTF-8",
                 "CUDA_VISIBLE_DEVICES": "1", "PYTHONPATH": "/course"}  # fmt: skip
    env = policy.environment("/tmp/w", 2, {"EXTRA": "1"}, inherited)
    assert "CANVAS_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env and "PYTHONPATH" not in env
    assert env["HOME"] == env["TMPDIR"] == env["TORCHINDUCTOR_CACHE_DIR"] == "/tmp/w"
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["OMP_NUM_THREADS"] == "2" and env["EXTRA"] == "1"


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
    assert sandbox.layers_to_try() == expected
