"""`autograder push` of a class to the Canvas and Moodle stand-ins (bench/lms_servers.py), timed side by side.

    python -m bench.push [--n 300]

Canvas in bulk updates (what the push does from 50 students on) and one student at a time (a PUT each), and
Moodle (mod_assign_save_grades in chunks of 50), each a real `autograder push` command against a fresh stand-in
on loopback, with synthetic results (tests/test_push.py's). The figures are the command's whole time: start-up,
reading the gradebook, the plan, the posts and the journal.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.lms_servers import CanvasStandIn, MoodleStandIn
from tests.test_push import TOKEN, push, results_folder, students


def timed(lms: str, server: CanvasStandIn | MoodleStandIn, root: Path, *extra: str) -> tuple[float, int]:
    with server:
        started = time.perf_counter()
        done = push(lms, server, root, "--yes", *extra)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        return seconds, server.requests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        for label, lms, by in (("canvas, bulk", "canvas", "user_id"), ("canvas, one by one", "canvas", "user_id"),
                               ("moodle", "moodle", "email")):  # fmt: skip
            root = Path(tmp) / label.replace(", ", "-").replace(" ", "-")
            root.mkdir()
            results_folder(root, args.n, by=by, extra=False)
            server = (CanvasStandIn if lms == "canvas" else MoodleStandIn)(TOKEN, students(args.n))
            extra = ("--bulk-from", str(args.n + 1)) if "one by one" in label else ()
            seconds, requests = timed(lms, server, root, *extra)
            rows.append((label, seconds, requests))
    base = rows[0][1]
    print(f"{'push of ' + str(args.n) + ' students':<24} {'seconds':>8} {'requests':>9} {'vs canvas bulk':>15}")
    for label, seconds, requests in rows:
        print(f"{label:<24} {seconds:>8.1f} {requests:>9} {seconds / base:>14.2f}x")


if __name__ == "__main__":
    main()
