"""Intake survives a zip bomb: sizes are checked as the zip declares them before anything is extracted, and again
while reading; one student's oversized file costs that student only, a download over the total stops intake with
nothing written."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from autograder import lms, messages
from autograder.cli import parse_args
from autograder.lms.intake import DEFAULT_MAX_FILE_MB, DEFAULT_MAX_TOTAL_MB
from autograder.paths import PROJECT_ROOT

from .conftest import run_cli
from .test_lms import MLP

MIB = 2**20
ALICE = "doealice_1001_9001_mlp.ipynb"  # an honest notebook
BOB = "roebob_1002_9002_mlp.ipynb"  # zeros: a thousandfold smaller zipped


def canvas_download(path: Path, bomb_mib: int, declared: int | None = None) -> Path:
    """A Canvas download: Alice's notebook, and Bob's member of `bomb_mib` MiB of zeros, written a MiB at a time
    (the test holds none of it); `declared`: the size the zip says Bob's member has, if not the true one."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(MLP / "correct.ipynb", ALICE)
        with archive.open(BOB, "w", force_zip64=True) as member:
            for _ in range(bomb_mib):
                member.write(bytes(MIB))
    if declared is not None:
        _declare(path, BOB, declared)
    return path


def _declare(path: Path, member: str, size: int) -> None:
    """Make the zip lie: its local and central headers give `member` an uncompressed size of `size`."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        central = archive.start_dir
    name = member.encode()
    while data[central : central + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, central + 28)
        if data[central + 46 : central + 46 + name_len] == name:
            _set_size(data, central + 24, central + 46 + name_len, extra_len, size)
        central += 46 + name_len + extra_len + comment_len
    local = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    _set_size(data, local + 22, local + 30 + name_len, extra_len, size)
    path.write_bytes(bytes(data))


def _set_size(data: bytearray, field: int, extra: int, extra_len: int, size: int) -> None:
    """The uncompressed size at `field`, or in the ZIP64 extra field (its first entry) where `field` says so."""
    if struct.unpack_from("<I", data, field)[0] != 0xFFFFFFFF:
        struct.pack_into("<I", data, field, size)
        return
    end = extra + extra_len
    while extra < end:
        tag, length = struct.unpack_from("<HH", data, extra)
        if tag == 0x0001:
            struct.pack_into("<Q", data, extra + 4, size)
            return
        extra += 4 + length
    raise AssertionError("no ZIP64 extra field")


def taken_in(out: Path) -> list[str]:
    """Every file in `out`, temporary ones included."""
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """The tester's download: Bob's 200 MiB member is 200 KiB zipped."""
    path = canvas_download(tmp_path_factory.mktemp("bomb") / "submissions.zip", 200)
    assert path.stat().st_size < 400_000
    return path


def test_a_zip_bomb_costs_its_student_only_and_is_never_read(bomb, tmp_path):
    said: dict[str, str] = {}
    tracemalloc.start()
    try:
        identities = {i.key: i for i in lms.intake("canvas", bomb, tmp_path / "in", report=said.__setitem__)}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB  # Bob's member read whole would be 200 MiB
    assert taken_in(tmp_path / "in") == ["doealice_1001.ipynb", lms.IDENTITIES_FILE]
    assert (tmp_path / "in" / "doealice_1001.ipynb").read_bytes() == (MLP / "correct.ipynb").read_bytes()
    bob = identities["roebob_1002"]
    assert bob.file == "" and bob.skipped == ("mlp.ipynb",) and identities["doealice_1001"].file == "mlp.ipynb"
    problem = messages.INTAKE_TOO_BIG.format(download=bomb, member=BOB, size="200.0 MiB", limit="100.0 MiB", need=200)
    assert said == {"roebob_1002": messages.INTAKE_NOT_TAKEN.format(key="roebob_1002", problem=problem)}


# The command, with the peak of what it allocates after its imports. Not the peak RSS: the grader imports torch,
# whose pages the kernel may drop under memory pressure as fast as a bomb's bytes come in, hiding them.
PEAK = """
import sys, tracemalloc
import autograder.lms.cli
from autograder.cli import main
tracemalloc.start()
code = main(sys.argv[1:])
print("PEAK_KIB", tracemalloc.get_traced_memory()[1] // 1024)
sys.exit(code)
"""


def test_the_intake_command_names_the_bomb_and_its_memory_stays_small(bomb, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "intake", "canvas", str(bomb), "-o", str(tmp_path / "in")],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    peak_kib = int(out.split("PEAK_KIB ")[1].split()[0])
    assert peak_kib < 16 * 1024, f"intake allocated {peak_kib} KiB at its peak"  # Bob's member: 200 MiB
    assert "1 students' submissions unpacked" in out
    assert f"roebob_1002: not taken in, counted as not submitted: {bomb}: {BOB!r} expands to 200.0 MiB" in out
    assert "run intake again with --max-file-mb 200" in out
    assert "no notebook (.ipynb) or .py file" not in out  # Bob did hand one in
    assert taken_in(tmp_path / "in") == ["doealice_1001.ipynb", lms.IDENTITIES_FILE]


def test_max_file_mb_lowers_and_raises_the_limit(tmp_path):
    download = canvas_download(tmp_path / "submissions.zip", 5)
    done = run_cli("intake", "canvas", str(download), "-o", str(tmp_path / "low"), "--max-file-mb", "1")
    assert done.returncode == 0, done.stderr
    assert "expands to 5.0 MiB, over intake's limit of 1.0 MiB a file" in " ".join(done.stdout.split())
    assert taken_in(tmp_path / "low") == ["doealice_1001.ipynb", lms.IDENTITIES_FILE]
    done = run_cli("intake", "canvas", str(download), "-o", str(tmp_path / "high"), "--max-file-mb", "5")
    assert done.returncode == 0, done.stderr
    assert "2 students' submissions unpacked" in done.stdout and "not taken in" not in done.stdout
    assert (tmp_path / "high" / "roebob_1002.ipynb").stat().st_size == 5 * MIB


def test_a_zip_that_declares_a_small_size_is_stopped_while_reading(tmp_path):
    """Bob's member says 1 KiB and holds 20 MiB: zipfile stops at the declared size and fails the CRC."""
    download = canvas_download(tmp_path / "lies.zip", 20, declared=1024)
    with zipfile.ZipFile(download) as archive:
        assert archive.getinfo(BOB).file_size == 1024  # the up-front check lets it through
    said: dict[str, str] = {}
    identities = {i.key: i for i in lms.intake("canvas", download, tmp_path / "in", report=said.__setitem__)}
    assert identities["roebob_1002"].file == "" and identities["doealice_1001"].file == "mlp.ipynb"
    assert said["roebob_1002"].startswith(f"roebob_1002: not taken in, counted as not submitted: {download}: {BOB!r}")
    assert "cannot be read (BadZipFile: Bad CRC-32" in said["roebob_1002"]
    assert taken_in(tmp_path / "in") == ["doealice_1001.ipynb", lms.IDENTITIES_FILE]


class Zeros(io.RawIOBase):
    """A member as a reader that does not stop at the declared size would give it: `size` bytes of zeros."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def _unbounded(monkeypatch, sizes: dict[str, int]) -> None:
    """Members of the download read as `sizes` says, whatever their headers declare."""
    real_open = zipfile.ZipFile.open

    def open_member(self, name, *args, **kwargs):
        member = name.filename if isinstance(name, zipfile.ZipInfo) else name
        return Zeros(sizes[member]) if member in sizes else real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_member)


def test_intake_counts_what_it_reads_not_what_the_zip_declares(monkeypatch, tmp_path):
    """Should zipfile ever hand out more than a member declares, intake's own count still stops it."""
    download = canvas_download(tmp_path / "lies.zip", 0)
    _unbounded(monkeypatch, {BOB: 20 * MIB})
    said: dict[str, str] = {}
    tracemalloc.start()
    try:
        lms.intake("canvas", download, tmp_path / "in", max_file_mb=1, report=said.__setitem__)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB
    problem = messages.INTAKE_LIES.format(download=download, member=BOB, limit="1.0 MiB", declared="0.0 KiB")
    assert said == {"roebob_1002": messages.INTAKE_NOT_TAKEN.format(key="roebob_1002", problem=problem)}
    assert taken_in(tmp_path / "in") == ["doealice_1001.ipynb", lms.IDENTITIES_FILE]


def test_a_download_over_the_total_stops_intake_with_nothing_written(tmp_path):
    download = canvas_download(tmp_path / "class.zip", 2)  # Alice's notebook and Bob's 2 MiB: over 2 MiB
    (tmp_path / "in").mkdir()
    done = run_cli("intake", "canvas", str(download), "-o", str(tmp_path / "in"), "--max-total-mb", "2")
    assert done.returncode == 2, done.stdout
    error = " ".join(done.stderr.split())
    assert f"{download}: the files to take in expand to 2.0 MiB, over intake's limit of 2.0 MiB a download" in error
    assert "run intake again with --max-total-mb 3" in error and "Traceback" not in done.stderr
    assert taken_in(tmp_path / "in") == []
    done = run_cli("intake", "canvas", str(download), "-o", str(tmp_path / "in"), "--max-total-mb", "3")
    assert done.returncode == 0, done.stderr
    assert taken_in(tmp_path / "in") == ["doealice_1001.ipynb", lms.IDENTITIES_FILE, "roebob_1002.ipynb"]


def test_a_total_that_lies_stops_intake_and_removes_what_it_had_written(monkeypatch, tmp_path):
    """Alice's file is written whole before Bob's runs the total out: neither stays, nor a temporary file."""
    download = canvas_download(tmp_path / "lies.zip", 0)
    _unbounded(monkeypatch, {ALICE: 700 * 1024, BOB: 700 * 1024})
    with pytest.raises(lms.LmsError) as raised:
        lms.intake("canvas", download, tmp_path / "in", max_total_mb=1)
    assert str(raised.value) == messages.INTAKE_TOTAL_LIES.format(download=download, limit="1.0 MiB",
                                                                  out=tmp_path / "in")  # fmt: skip
    assert taken_in(tmp_path / "in") == []


def test_gradescope_metadata_is_read_under_the_same_limit(tmp_path):
    download = tmp_path / "export.zip"
    with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/submission_metadata.yml", "#" * (2 * MIB) + "\nsubmission_1: {}\n")
        archive.writestr("export/submission_1/mlp.ipynb", (MLP / "correct.ipynb").read_bytes())
    with pytest.raises(lms.LmsError, match=r"'export/submission_metadata.yml' expands to 2.0 MiB, over intake's"):
        lms.intake("gradescope", download, tmp_path / "in", max_file_mb=1)
    assert taken_in(tmp_path / "in") == []
    assert [i.file for i in lms.intake("gradescope", download, tmp_path / "in", max_file_mb=3)] == ["mlp.ipynb"]


def test_the_limits_options_default_to_intakes_own_and_are_in_the_help(capsys):
    args = parse_args(["intake", "canvas", "submissions.zip", "-o", "in"])
    assert (args.max_file_mb, args.max_total_mb) == (DEFAULT_MAX_FILE_MB, DEFAULT_MAX_TOTAL_MB)
    with pytest.raises(SystemExit):
        parse_args(["intake", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--max-file-mb MAX_FILE_MB MiB one student's file may expand to" in shown
    assert "(default: 100, as when a notebook is graded)" in shown and "(default: 2048)" in shown
