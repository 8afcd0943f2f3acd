"""The same class on two devices, side by side in one run: seconds on each, and every check whose verdict differs.

    python -m bench.devices [--devices cpu cuda] [--assignments mlp spiking decoding] [--jobs N] [--limit N]

The class of an assignment is its bundled examples and every mutant and variant of the mutation suite (what
`tests/test_cuda.py` holds to equal verdicts). On a GPU machine this says both whether `--device cuda` is fair
(no differing check) and whether it is worth it (the seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from autograder.devices import resolve as resolve_device
from autograder.grader import grade
from autograder.options import GradingOptions, add_jobs_option
from autograder.paths import EXAMPLES_DIR
from autograder.results import SubmissionResult
from tests.test_mutation import SUITES, source


def write_class(assignment: str, folder: Path, limit: int | None = None) -> int:
    """The examples and the mutation suite of `assignment` as files in `folder`; returns how many."""
    folder.mkdir(parents=True)
    for path in sorted((EXAMPLES_DIR / assignment).glob("*.ipynb")):
        shutil.copy(path, folder / path.name)
    module = SUITES[assignment]
    for kind, cases in (("mutant", module.MUTANTS), ("variant", module.VARIANTS)):
        for exercise, name, code in cases:
            (folder / f"{kind}__{exercise}__{name}.py").write_text(source(module, exercise, code))
    files = sorted(folder.iterdir())
    for extra in files[limit:] if limit else ():
        extra.unlink()
    return min(len(files), limit or len(files))


def differences(first: list[SubmissionResult], other: list[SubmissionResult]) -> list[str]:
    """One line per check whose pass/fail differs, with the other device's message."""
    mine = {r.submission: r for r in first}
    lines = []
    for result in other:
        base = mine[result.submission]
        for a, b in zip(base.exercises, result.exercises, strict=True):
            before = {t.name: t.passed for t in a.tests}
            for check in b.tests:
                if before.get(check.name) != check.passed:
                    first_line = check.message.splitlines()[0] if check.message else ""
                    lines.append(f"{result.submission} {b.id} {check.name}: {first_line[:200]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--assignments", nargs="+", default=sorted(SUITES))
    add_jobs_option(parser, os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, help="at most this many submissions per assignment (a quick look)")
    args = parser.parse_args(argv)
    devices = [resolve_device(d) for d in args.devices]
    print(f"bench.devices: {', '.join(devices)}, --jobs {args.jobs}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-devices-") as tmp:
        for assignment in args.assignments:
            n = write_class(assignment, Path(tmp) / assignment, args.limit)
            by_device = {}
            for device in devices:
                started = time.perf_counter()
                options = GradingOptions(device=device)
                by_device[device] = grade(assignment, [Path(tmp) / assignment], out_dir=None, options=options,
                                          jobs=args.jobs).results  # fmt: skip
                print(f"{assignment:>10} {device:>6}: {n} submissions in {time.perf_counter() - started:6.1f} s",
                      flush=True)  # fmt: skip
            for device in devices[1:]:
                lines = differences(by_device[devices[0]], by_device[device])
                print(f"{assignment:>10} {device} vs {devices[0]}: {len(lines)} check(s) differ")
                for line in lines:
                    print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
