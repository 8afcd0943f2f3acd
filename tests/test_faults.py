"""The grader's own faults are never a student's zero, and lose nothing already graded: a worker that cannot
start, a Dask worker that may not fork, a lost scheduler, scratch folders of a killed grader, two runs into one
folder, a results folder that cannot be written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder import cli, messages
from autograder.grader import LOCAL_CLUSTER, DaskExecutor, GradingError, _hold_out_dir, _release_out_dir, grade
from autograder.options import GradingOptions
from autograder.paths import PROJECT_ROOT
from autograder.results import NOT_GRADED, read_result
from autograder.runner import proxy
from autograder.runner.scratch import _PARENT, SHORT_BASES, start_time, sweep_stale

from .conftest import EXAMPLES

CORRECT = EXAMPLES / "mlp" / "correct.ipynb"
OPTIONS = GradingOptions(timeout=60)


def _break_worker_starts(monkeypatch, times: int | None = None) -> list[str]:
    """Every worker's scratch folder removed under it, as a cleaner of /tmp would: its keeper cannot set it up
    (`times` of them; all when None). Returns the folders it took."""
    taken: list[str] = []
    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        path = real(*args, **kwargs)
        if kwargs.get("prefix") == "worker-" and (times is None or len(taken) < times):
            os.rmdir(path)
            taken.append(path)
        return path

    monkeypatch.setattr(proxy.tempfile, "mkdtemp", mkdtemp)
    return taken


def test_a_worker_that_cannot_start_is_tried_again_then_written_as_not_graded_never_as_zero(
    monkeypatch, tmp_path, capsys
):
    out = tmp_path / "out"
    taken = _break_worker_starts(monkeypatch)
    [result] = grade("mlp", [CORRECT], out_dir=out, options=OPTIONS).results
    assert len(taken) == 2  # tried once more, then given up
    assert not result.graded and result.not_graded.startswith("Not graded: the grader could not start")
    assert "No such file or directory" in result.not_graded  # what failed, for the instructor
    assert {e.status for e in result.exercises} == {NOT_GRADED}
    assert (out / "grades.csv").read_text().splitlines()[1] == "correct.ipynb,,,,,,40"  # no score, not a zero

    # The command says so and exits 3; --resume grades it once the machine is fixed.
    monkeypatch.undo()
    exported = tmp_path / "canvas.csv"
    assert cli.main(["export", "canvas", str(out), "-o", str(exported)]) == 2  # nothing graded to export
    assert "no result there was graded" in capsys.readouterr().err
    [again] = grade("mlp", [CORRECT], out_dir=out, options=OPTIONS, resume=True).results
    assert again.graded and again.score == 40
    assert (out / "grades.csv").read_text().splitlines()[1] == "correct.ipynb,10,10,10,10,40,40"


def test_a_self_check_that_could_not_run_says_so_marks_no_check_failed_and_exits_3(monkeypatch, capsys):
    _break_worker_starts(monkeypatch)
    assert cli.main(["check", "mlp", str(CORRECT)]) == 3
    shown = capsys.readouterr().out
    assert "No check was run: the grader could not run code on this machine" in shown
    assert "could not start the process that runs this code" in shown  # the reason, for the staff
    assert "[FAIL]" not in shown and "public checks passed" not in shown


def test_one_failed_start_is_retried_and_costs_nothing(monkeypatch):
    taken = _break_worker_starts(monkeypatch, times=1)
    [result] = grade("mlp", [CORRECT], out_dir=None, options=OPTIONS).results
    assert len(taken) == 1 and result.graded and result.score == 40


def test_grade_exits_3_naming_what_was_not_graded_and_the_export_leaves_it_out(tmp_path):
    """As an instructor sees it: the table says "not graded", the command exits 3 and says to --resume."""
    out, script = tmp_path / "out", tmp_path / "broken_machine.py"
    script.write_text(
        "import os, sys, tempfile\n"
        "import autograder.runner.proxy as proxy\n"
        "real, started = tempfile.mkdtemp, []\n"
        "def mkdtemp(*a, **k):\n"
        "    p = real(*a, **k)\n"
        "    if k.get('prefix') == 'worker-':\n"
        "        started.append(p)\n"
        "        if len(started) > 1:  # the first submission's worker starts; then the machine breaks\n"
        "            os.rmdir(p)\n"
        "    return p\n"
        "proxy.tempfile.mkdtemp = mkdtemp\n"
        "from autograder.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(CORRECT, folder / "correct.ipynb")
    shutil.copy(EXAMPLES / "mlp" / "partly_wrong.ipynb", folder / "partly_wrong.ipynb")
    graded = subprocess.run(
        [sys.executable, str(script), "grade", "mlp", str(folder), "-o", str(out), "--timeout", "60", "-j", "1"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert graded.returncode == 3, graded.stdout + graded.stderr
    assert "1 submission(s) were not graded, by a fault of the grader" in graded.stdout
    assert "partly_wrong.ipynb" in graded.stdout and "--resume" in graded.stdout
    assert "- not graded" in graded.stdout and "Traceback" not in graded.stderr
    exported = tmp_path / "canvas.csv"
    listed = subprocess.run(
        [sys.executable, "-m", "autograder", "export", "canvas", str(out), "-o", str(exported)],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert listed.returncode == 0 and "1 result(s) were not graded" in listed.stdout
    assert "partly_wrong" not in exported.read_text() and "correct" in exported.read_text()


def test_building_the_student_bundle_on_a_machine_that_cannot_start_workers_blames_the_machine(monkeypatch, tmp_path):
    from autograder.student.bundle import BundleError, build_bundle

    notebook = tmp_path / "mlp.ipynb"
    shutil.copy(EXAMPLES / "mlp" / "template.ipynb", notebook)
    _break_worker_starts(monkeypatch)
    with pytest.raises(BundleError) as raised:
        build_bundle("mlp", notebook)
    assert "could not be run on this machine" in str(raised.value)
    assert "fail public checks" not in str(raised.value)


# -- the scratch folders of a grader that was killed ------------------------------------------------------------
def _folders_of(pid: int, tmp: Path) -> list[Path]:
    """The scratch folders' folder and socket folder of grader process `pid`: under `tmp` or a short base."""
    return [
        path for base in dict.fromkeys((tmp, *map(Path, SHORT_BASES))) if base.is_dir() for path in base.iterdir()
        if (match := _PARENT.match(path.name)) and match.group(2) == str(pid)
    ]  # fmt: skip


def test_the_scratch_folders_of_a_killed_grader_are_swept_by_the_next_one_and_a_live_ones_kept(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    hanging = tmp_path / "hang.py"
    hanging.write_text("def cross_entropy_loss(x, labels):\n    while True:\n        pass\n")
    env = {**os.environ, "TMPDIR": str(tmp)}
    run = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", "mlp", str(hanging), "-o", str(tmp_path / "o"), "--timeout",
         "120", "-j", "1"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # a start can take minutes while the suite's otter runs load both cores
        # its workers' scratch folders' folder, and its fork server's socket folder (under /tmp where tmp's path
        # is too long for a socket's)
        while len(_folders_of(run.pid, tmp)) < 2:
            assert time.monotonic() < deadline, f"no scratch or socket folder made: {run.poll()=}"
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        run.send_signal(signal.SIGKILL)  # no handler runs: its folders stay
        run.wait()
    stale = _folders_of(run.pid, tmp)
    assert len(stale) == 2, stale
    for folder in stale:
        (folder / "left.bin").write_bytes(b"x" * 1000)
    live = Path(tempfile.mkdtemp(prefix=f"autograder-{os.stat('/proc/self/ns/pid').st_ino}-{os.getpid()}-"
                                        f"{start_time(os.getpid())}-", dir=tmp))  # fmt: skip
    assert sweep_stale(str(tmp)) == [str(p) for p in stale if p.parent == tmp]  # only the folder it is given
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    sweep_stale()  # TMPDIR and the short bases
    assert not any(p.exists() for p in stale) and live.exists()


def test_a_long_tmpdir_still_grades_and_leaves_no_socket_folder(tmp_path):
    """A cluster job's or CI runner's TMPDIR can be too long for a socket's path (107 bytes): the fork server's
    socket goes to a short folder instead, and every worker starts."""
    tmp = tmp_path / ("t" * max(1, 110 - len(str(tmp_path))))
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", "mlp", str(CORRECT), "-o", str(tmp_path / "o"), "-j", "2"],
        env={**os.environ, "TMPDIR": str(tmp)}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert read_result(tmp_path / "o" / "correct.json").score == 40
    assert "AF_UNIX" not in out + err
    left = [p.name for p in tmp.iterdir() if p.name.startswith(("autograder-", "pymp-"))]
    assert left == [] and _folders_of(proc.pid, tmp) == []  # its folders went with it


# -- one results folder, one writer --------------------------------------------------------------------------
def test_a_second_run_into_a_folder_being_graded_into_stops_at_once_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    held = _hold_out_dir(out)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "autograder", "grade", "mlp", str(CORRECT), "-o", str(out)],
            capture_output=True, text=True, cwd=PROJECT_ROOT,
        )  # fmt: skip
        assert proc.returncode == 2 and "is being graded into by another run" in proc.stderr, proc.stderr
        assert f"pid {os.getpid()}" in proc.stderr and "Traceback" not in proc.stderr
        assert time.monotonic() - started < 30  # before any grading
        assert sorted(p.name for p in out.iterdir()) == [".autograder-lock"]
    finally:
        _release_out_dir(out, held)
    assert list(out.iterdir()) == []
    [result] = grade("mlp", [CORRECT], out_dir=out, options=OPTIONS).results  # free again
    assert result.score == 40 and sorted(p.name for p in out.iterdir()) == ["correct.json", "grades.csv"]


def test_grades_csv_is_rebuilt_from_every_result_file_in_the_folder(tmp_path):
    """A result written into the folder while a batch ran (by a grader without the lock) is in grades.csv."""
    out = tmp_path / "out"
    first = grade("mlp", [CORRECT], out_dir=out, options=OPTIONS).results[0]

    def another_writer(result):
        if not (out / "late.json").exists():
            (out / "late.json").write_text(json.dumps({**first.to_dict(), "submission": "late.ipynb", "score": 7}))

    grade("mlp", [EXAMPLES / "mlp" / "template.ipynb"], out_dir=out, options=OPTIONS, on_result=another_writer)
    rows = [line.split(",")[0] for line in (out / "grades.csv").read_text().splitlines()[1:]]
    assert rows == ["correct.ipynb", "late.ipynb", "template.ipynb"]


def test_an_unwritable_results_folder_is_refused_before_grading(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "mlp", str(CORRECT), "-o", str(blocker / "out")],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert proc.returncode == 2 and f"Cannot write results into {blocker / 'out'}/" in proc.stderr, proc.stderr
    assert "nothing was graded" in proc.stderr and time.monotonic() - started < 30


def test_a_failed_write_names_the_file_keeps_what_was_written_and_says_to_resume(monkeypatch, tmp_path):
    """A disk that fills up after the first result: the batch stops with the file named, the first kept."""
    import autograder.grader as grader

    out, folder = tmp_path / "out", tmp_path / "subs"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(CORRECT, folder / f"{name}.ipynb")
    real = grader.write_json
    calls = []

    def write_json(out_dir, stem, result):
        calls.append(stem)
        if stem != "a":
            raise OSError(28, "No space left on device")
        return real(out_dir, stem, result)

    monkeypatch.setattr(grader, "write_json", write_json)
    with pytest.raises(GradingError) as raised:
        grade("mlp", [folder], out_dir=out, options=OPTIONS)
    text = str(raised.value)
    assert f"Could not write {out / 'b.json'} (No space left on device)" in text and "--resume" in text
    assert read_result(out / "a.json") is not None and not (out / "b.json").exists()
    assert (out / "grades.csv").read_text().splitlines()[1:] == ["a.ipynb,10,10,10,10,40,40"]


# -- Dask ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dask_workers_that_may_not_fork_stop_the_batch_at_once_naming_the_setting(tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, **LOCAL_CLUSTER) as cluster:
        with Client(cluster) as client:  # the default: daemonic worker processes
            with pytest.raises(GradingError) as raised:
                grade("mlp", [CORRECT], out_dir=tmp_path / "out", options=OPTIONS, executor=DaskExecutor(client=client))
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in str(raised.value)
    assert not (tmp_path / "out" / "correct.json").exists()  # nothing written as a student's result


@pytest.mark.slow
def test_losing_the_scheduler_is_one_message_with_what_was_kept(tmp_path):
    port = 20000 + (os.getpid() + 7) % 20000
    address = f"tcp://127.0.0.1:{port}"
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(12):
        shutil.copy(CORRECT, folder / f"s{i:02}.ipynb")
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    started = [
        subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port),
                          "--no-dashboard"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    try:
        time.sleep(3)
        started.append(
            subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                              "--no-dashboard"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        )  # fmt: skip
        grading = subprocess.Popen(
            [sys.executable, "-m", "autograder", "grade", "mlp", str(folder), "-o", str(tmp_path / "out"),
             "--executor", "dask", "--scheduler", address, "--jobs", "4"],
            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(grading)
        deadline = time.monotonic() + 180
        while not list((tmp_path / "out").glob("s*.json")):
            assert time.monotonic() < deadline and grading.poll() is None, "no result within 180 s"
            time.sleep(0.2)
        started[0].kill()  # the scheduler
        output, errors = grading.communicate(timeout=180)
    finally:
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=30)
    assert grading.returncode == 2, output + errors
    assert "Lost the Dask scheduler" in errors and "Traceback" not in errors and "--resume" in errors
    written = len(list((tmp_path / "out").glob("s*.json")))
    assert 1 <= written < 12 and f"{written} result(s) written" in errors.replace("\n", " ")
    assert messages.CLUSTER_LOST.split("{")[0] in errors
