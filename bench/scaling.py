"""Seconds per submission and peak memory per worker for 10, 100 and 1000 generated submissions.

    python -m bench.scaling [--sizes 10 100 1000] [--jobs N] [--assignment mlp] [--device cpu [cuda]]
                            [--classes synthetic realistic] [--outputs-kb K] [--unpinned-too [--rounds R]]

Every size is graded by the same warm fork server in one run; seconds per submission that stay flat as the
class grows show a cost linear in the number of submissions. Both classes of bench.generate are graded side by
side (the same students' exercise code, alone or inside notebooks shaped like the course's), and the ratio of
their costs is printed. With several devices, each size is graded on each of them in turn, and the ratio of
their costs is printed (on one machine, in one run). With --unpinned-too, each class is also graded with its
scoring processes left to the scheduler (AUTOGRADER_PIN_JOBS=0), alternating which goes first over --rounds,
and the ratio of the medians is printed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from autograder.devices import resolve as resolve_device
from autograder.grader import PIN_JOBS_ENV, grade
from autograder.options import GradingOptions, add_jobs_option
from bench.generate import STYLES, make_class


class ScoringPeak(threading.Thread):
    """Peak resident memory (VmHWM) of this session's scoring processes (named "ag-scoring" when --jobs > 1:
    they are forks of the fork server, not children of this process, so getrusage cannot see them), and the
    largest resident memory (VmRSS, sampled) of this, the submitting, process while it runs."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_mb = 0.0
        self.submitter_mb = 0.0
        self.done = threading.Event()
        self.session = os.getsid(0)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.submitter_mb = max(self.submitter_mb, _rss_mb())
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    self.peak_mb = max(self.peak_mb, _scoring_hwm_mb(int(entry.name), self.session))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak_mb


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _scoring_hwm_mb(pid: int, session: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        if os.getsid(pid) != session:
            return 0.0
    except OSError:
        return 0.0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("Name", "").strip() != "ag-scoring":
        return 0.0
    return int(fields.get("VmHWM", "0 kB").split()[0]) / 1024


def run(
    sizes: list[int],
    jobs: int,
    assignment: str = "mlp",
    devices: tuple[str, ...] = ("cpu",),
    classes: tuple[str, ...] = ("synthetic",),
    outputs_kb: int = 0,
    pinning: tuple[bool, ...] = (True,),
    rounds: int = 1,
) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        make_class(Path(tmp) / "warmup", 2, assignment=assignment)
        for device in devices:  # start the fork server (and, on a GPU, its driver) before anything is timed
            grade(assignment, [Path(tmp) / "warmup"], out_dir=None, options=GradingOptions(device=device), jobs=1)
        for n in sizes:
            for style in classes:
                folder = Path(tmp) / f"{style}{n}"
                paths = make_class(folder, n, assignment=assignment, style=style)
                if outputs_kb:
                    for path in paths:
                        with_saved_output(path, outputs_kb)
                for device in devices:
                    for turn in range(rounds):
                        for pinned in pinning if turn % 2 == 0 else pinning[::-1]:
                            out = Path(tmp) / f"results-{style}{n}-{device}-{pinned}-{turn}"
                            with _pinned(pinned):
                                rows.append(_measure(assignment, folder, out, device, jobs))
                            rows[-1].update({"class": style, "submissions": n, "pinned": pinned})
    return rows


@contextlib.contextmanager
def _pinned(pinned: bool) -> Iterator[None]:
    before = os.environ.get(PIN_JOBS_ENV)
    if pinned:
        os.environ.pop(PIN_JOBS_ENV, None)
    else:
        os.environ[PIN_JOBS_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PIN_JOBS_ENV, None)
        else:
            os.environ[PIN_JOBS_ENV] = before


def with_saved_output(path: Path, kb: int) -> None:
    """Give a generated notebook what a student's saved notebook carries: a plot's PNG (`kb` KiB, base64) as the
    output of its first code cell. The grader drops outputs, but it must read them."""
    if path.suffix != ".ipynb":
        return
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    blob = base64.b64encode(random.Random(str(path)).randbytes(kb * 768)).decode()  # 4/3 of it: kb KiB of text
    cell["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": blob}}]
    path.write_text(json.dumps(notebook), encoding="utf-8")


def _measure(assignment: str, folder: Path, out: Path, device: str, jobs: int) -> dict:
    watcher = ScoringPeak()  # this size's own peaks: memory must stay flat as the class grows
    watcher.start()
    before = _rss_mb()
    started = time.perf_counter()
    batch = grade(assignment, [folder], out_dir=out, options=GradingOptions(device=device), jobs=jobs)
    elapsed = time.perf_counter() - started
    scoring_mb = watcher.stop()
    n = len(batch.results)
    peaks = [r.worker_peak_mb for r in batch.results if r.worker_peak_mb]
    return {
        "device": device,
        "seconds": elapsed,
        "per_submission": elapsed / n,
        "worker_peak_mb": max(peaks) if peaks else 0.0,
        "full_marks": sum(r.score == r.max_score for r in batch.results),
        "submitter_growth_mb": max(0.0, watcher.submitter_mb - before),
        "scoring_peak_mb": scoring_mb,
        "graded": n,
        "scores": {r.submission: r.score for r in batch.results},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    add_jobs_option(parser, os.cpu_count() or 1)
    parser.add_argument("--assignment", default="mlp", help="a built-in assignment (default mlp)")
    parser.add_argument("--device", nargs="+", default=["cpu"], help="one or more of cpu, cuda (default cpu)")
    parser.add_argument(
        "--classes", nargs="+", choices=STYLES, default=list(STYLES), help="generated classes (default: both)"
    )
    parser.add_argument("--outputs-kb", type=int, default=0, help="a saved plot of this many KiB in each notebook")
    parser.add_argument(
        "--unpinned-too", action="store_true", help="also grade with scoring processes left to the scheduler"
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --unpinned-too: times each way (default 1)")
    args = parser.parse_args(argv)
    devices = tuple(resolve_device(d) for d in args.device)
    classes = tuple(args.classes)
    watcher = ScoringPeak()
    watcher.start()
    pinning = (True, False) if args.unpinned_too else (True,)
    rows = run(args.sizes, args.jobs, args.assignment, devices, classes, args.outputs_kb, pinning, args.rounds)
    forked_peak = watcher.stop()
    print(f"bench.scaling: {args.assignment}, --jobs {args.jobs}, {os.cpu_count()} cores, devices {', '.join(devices)}")
    print(f"{'class':>10} {'device':>7} {'pinned':>7} {'submissions':>12} {'seconds':>9} {'s/submission':>13} "
          f"{'worker peak MiB':>16} {'scoring peak MiB':>17} {'submitter +MiB':>15} {'full marks':>11}")  # fmt: skip
    for row in rows:
        print(
            f"{row['class']:>10} {row['device']:>7} {str(row['pinned']):>7} {row['submissions']:>12} "
            f"{row['seconds']:>9.1f} "
            f"{row['per_submission']:>13.3f} {row['worker_peak_mb']:>16.0f} {row['scoring_peak_mb']:>17.0f} "
            f"{row['submitter_growth_mb']:>15.0f} {row['full_marks']:>11}"
        )
    print(
        "scoring peak: VmHWM of the scoring processes (--jobs > 1); submitter +MiB: how much the submitting "
        "process grew while it graded that class (it lists the submissions; scoring processes read them)"
    )
    for style, device in ((c, d) for c in classes for d in devices):
        mine = [r for r in rows if r["device"] == device and r["class"] == style and r["pinned"]]
        first, last = mine[0], mine[-1]
        print(f"{style} on {device}: cost per submission at {last['submissions']} / at {first['submissions']}: "
              f"{last['per_submission'] / first['per_submission']:.2f}x")  # fmt: skip
    for n, device in ((n, d) for n in args.sizes for d in devices):
        by_class = {r["class"]: r for r in rows if r["submissions"] == n and r["device"] == device and r["pinned"]}
        if len(by_class) == 2:
            real, synthetic = by_class["realistic"], by_class["synthetic"]
            print(f"{n} submissions on {device}: realistic / synthetic s/submission: "
                  f"{real['per_submission'] / synthetic['per_submission']:.2f}x; "
                  f"same scores: {list(real['scores'].values()) == list(synthetic['scores'].values())}")  # fmt: skip
    for n, style in ((n, c) for n in args.sizes for c in classes) if len(devices) > 1 else ():
        by_device = {r["device"]: r for r in rows if r["submissions"] == n and r["class"] == style and r["pinned"]}
        base = by_device[devices[0]]
        for device in devices[1:]:
            other = by_device[device]
            same = other["scores"] == base["scores"]
            print(f"{n} {style} submissions: {device} / {devices[0]} seconds: "
                  f"{other['seconds'] / base['seconds']:.2f}x; same scores: {same}")  # fmt: skip
    compared = ((n, c, d) for n in args.sizes for c in classes for d in devices) if args.unpinned_too else ()
    for n, style, device in compared:
        mine = [r for r in rows if (r["submissions"], r["class"], r["device"]) == (n, style, device)]
        pinned, unpinned = (statistics.median(r["seconds"] for r in mine if r["pinned"] is p) for p in (True, False))
        same = all(r["scores"] == mine[0]["scores"] for r in mine)
        print(f"{n} {style} on {device}, medians of {args.rounds}: pinned {pinned:.1f} s, unpinned {unpinned:.1f} s: "
              f"unpinned / pinned {unpinned / pinned:.2f}x; same scores: {same}")  # fmt: skip
    # With --jobs 1 this process is the scoring process.
    scoring_peak = forked_peak if args.jobs > 1 else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of a scoring process: {scoring_peak:.0f} MiB (worker RSS includes pages shared "
          "with the fork server)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
