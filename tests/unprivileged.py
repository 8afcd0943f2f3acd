"""Running the grader as an unprivileged user from tests that run as root (as CI does).

The arrangement is cheap: a folder owned by `nobody` holding a virtual environment made from a Python that user
can read (Debian's /usr/bin/python3.X, the same minor version as ours), whose site-packages is a link to ours (so
torch is not copied, and the worker's audit hook counts it as installed), and a copy of the project's own files
(a few hundred KiB). Our interpreter may live where `nobody` cannot read (here, under /root); our site-packages
must be readable by it, else the tests that need this arrangement skip and say why.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.paths import PROJECT_ROOT

USER = "nobody"
# What a grader run needs from the project: the engine, the built-in assignments, and the test helpers that
# build the hostile corpus.
PROJECT_PARTS = ("autograder", "assignments", "reference_solutions", "examples", "tests")


@dataclass(frozen=True)
class Unprivileged:
    """A place where `nobody` can run the grader: `python` its interpreter, `home` its $HOME, `root` the folder."""

    root: Path
    python: Path
    home: Path
    project: Path
    uid: int
    gid: int

    def environment(self, **extra: str) -> dict[str, str]:
        """A clean environment for nobody's grader: the project copy on the import path."""
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "PYTHONPATH": str(self.project),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": "/tmp",
            **extra,
        }

    def run(self, code: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run `python -c code` as nobody, in the project copy, with a clean environment."""
        variables = self.environment(**(env or {}))
        command = [*as_user(self.uid, self.gid), str(self.python), "-c", code]
        return subprocess.run(command, cwd=self.project, env=variables, capture_output=True, text=True, timeout=timeout)


def as_user(uid: int, gid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all", "--"]


def _python_for_nobody() -> Path | None:
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path("/usr/bin") / minor, Path("/usr/local/bin") / minor):
        if candidate.is_file():
            return candidate
    return None


def _traversable_by_others(folder: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (folder, *folder.parents))


def arrange() -> Unprivileged:
    """Build the arrangement in a new folder of the system's temporary folder (pytest's own is root's alone), or skip
    the test with the reason; the caller removes `root` when done."""
    if os.geteuid() != 0:
        pytest.skip(
            "switching to an unprivileged user needs root (as a non-root user the other tests run unprivileged)"
        )
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    python = _python_for_nobody()
    if python is None:
        pytest.skip(f"no system python{sys.version_info.major}.{sys.version_info.minor} that {USER} could run")
    if not _traversable_by_others(Path(tempfile.gettempdir())):
        pytest.skip(f"{USER} cannot reach the temporary folder {tempfile.gettempdir()}")
    entry = pwd.getpwnam(USER)
    folder = Path(tempfile.mkdtemp(prefix="autograder-unprivileged-"))
    folder.chmod(0o755)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    home = folder / "home"
    home.mkdir()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    venv = folder / "venv"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    ours = Path(sysconfig.get_paths()["purelib"]).resolve()
    theirs = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    shutil.rmtree(theirs)
    theirs.symlink_to(ours)
    project = folder / "project"
    for part in PROJECT_PARTS:
        shutil.copytree(PROJECT_ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    arranged = Unprivileged(folder, venv / "bin" / "python", home, project, entry.pw_uid, entry.pw_gid)
    probe = arranged.run("import torch, autograder; print(autograder.__file__)", timeout=120)
    if probe.returncode != 0 or not probe.stdout.startswith(str(project)):
        pytest.skip(f"{USER} cannot import torch and the project from {ours}: {probe.stderr.strip()[-300:]}")
    return arranged


def expected_layer(arranged: Unprivileged | None = None) -> str:
    """The layer an unprivileged grader should reach on this machine, found without the grader: user namespaces
    if `unshare` may make them, else bubblewrap if installed, else the audit hook."""
    prefix = as_user(arranged.uid, arranged.gid) if arranged else []
    if shutil.which("unshare"):
        probe = subprocess.run([*prefix, "unshare", "-U", "-m", "-n", "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return "user-namespaces"
    return "bubblewrap" if shutil.which("bwrap") else "audit-hook"
