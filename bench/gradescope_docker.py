"""Our Gradescope autograder zip run as Gradescope runs it, in a container: results.json against `autograder grade`.

    python -m bench.gradescope_docker [--image autograder-otter-base] [--out DIR]

Gradescope's autograder documentation lays it out: the zip is unpacked into /autograder/source, `setup.sh` runs
once when the image is built (as root, with the network), then for each submission `/autograder/run_autograder`
runs with the student's files in /autograder/submission and writes /autograder/results/results.json. Here the
image is built FROM the otter base image (autograder.otterkit.image: Debian, Python 3.11, this machine's torch),
with one difference, said where it is made: the venv setup.sh fills starts as a copy of the base image's, which
holds torch (setup.sh takes torch from the PyTorch CPU index, which these machines cannot reach; pip finds it
installed and moves on). Each submission runs with the network off. The notebooks: the `mlp` examples as
students hand them in (the long training cell included: the native grader does not run it) and the solution
of an assignment made with `autograder new`. Exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat

from autograder.authoring import new_assignment
from autograder.grader import grade
from autograder.lms.gradescope import write_autograder_zip
from autograder.options import GradingOptions
from autograder.otterkit.image import DEFAULT_TAG, OTTER_ENV, build_base_image
from autograder.paths import PROJECT_ROOT
from autograder.solutions import solution_sources
from autograder.spec import load_assignment

DOCKERFILE = f"""ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
# Here only: the venv setup.sh fills starts with this machine's torch (setup.sh takes torch from the PyTorch CPU
# index, which cannot be reached here; pip then finds it installed).
RUN mkdir -p /autograder && cp -a {OTTER_ENV} /autograder/venv
ADD source /autograder/source
RUN cd /autograder/source && bash ./setup.sh && cp run_autograder /autograder/run_autograder \\
    && chmod +x /autograder/run_autograder
"""


def build_image(zipped: Path, work: Path, base: str, tag: str) -> float:
    context = work / "context"
    shutil.rmtree(context, ignore_errors=True)
    (context / "source").mkdir(parents=True)
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(context / "source")
    for name in ("setup.sh", "run_autograder"):
        (context / "source" / name).chmod(0o755)
    (context / "Dockerfile").write_text(DOCKERFILE)
    started = time.perf_counter()
    done = subprocess.run(["docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", tag,
                           str(context)], capture_output=True, text=True, env={"DOCKER_BUILDKIT": "0",
                           "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"building the Gradescope image failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def run_submission(tag: str, notebook: Path, out: Path) -> dict:
    """One submission as Gradescope runs it: network off, the file in /autograder/submission."""
    submission = out / "submission"
    submission.mkdir(parents=True)
    shutil.copy(notebook, submission / notebook.name)
    results = out / "results"
    results.mkdir()
    subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{submission}:/autograder/submission:ro",
                    "-v", f"{results}:/autograder/results", tag, "/autograder/run_autograder"],
                   capture_output=True, text=True, timeout=900)  # fmt: skip
    return json.loads((results / "results.json").read_text())


def per_exercise(results: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in results.get("tests", []):
        exercise = test["name"].split(":", 1)[0]
        scores[exercise] = scores.get(exercise, 0.0) + float(test["score"])
    return scores


def prove(work: Path, base: str = DEFAULT_TAG, say=print) -> list[str]:  # type: ignore[no-untyped-def]
    """Differences between results.json and the native grader ([] when none) for every submission."""
    build_base_image(base, say=say)
    course = new_assignment("week3", work / "course")
    cases: list[tuple[str | Path, Path]] = []
    for example in ("correct", "partly_wrong", "template"):
        cases.append(("mlp", PROJECT_ROOT / "examples" / "submissions" / "mlp" / f"{example}.ipynb"))
    solution = work / "week3.ipynb"
    cells = [nbformat.v4.new_code_cell(code) for code in solution_sources(load_assignment(course))]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(solution))
    cases.append((course, solution))
    differences, timings = [], []
    for assignment in ("mlp", course):
        name = assignment if isinstance(assignment, str) else assignment.name
        zipped = work / f"{name}-gradescope.zip"
        write_autograder_zip(str(assignment), zipped)
        say(f"{name}: building the Gradescope image (setup.sh)")
        built = build_image(zipped, work / name, base, f"autograder-gradescope:{name}")
        for case_assignment, notebook in [c for c in cases if c[0] == assignment]:
            started = time.perf_counter()
            results = run_submission(f"autograder-gradescope:{name}", notebook, work / name / notebook.stem)
            timings.append((name, notebook.stem, time.perf_counter() - started, built))
            [native] = grade(case_assignment, [notebook], out_dir=None, options=GradingOptions()).results
            expected = {e.id: e.score for e in native.exercises}
            got = per_exercise(results)
            if got != expected or abs(float(results["score"]) - native.score) > 1e-9:
                said = results.get("output", "")[:300]
                differences.append(f"{name}/{notebook.name}: results.json {got} (score {results['score']}), "
                                   f"native {expected} (score {native.score}): {said}")  # fmt: skip
            failed = [t for t in results["tests"] if t["score"] < t["max_score"]]
            if native.score < native.max_score and not all(t["output"] for t in failed):
                differences.append(f"{name}/{notebook.name}: a lost point without its message in results.json")
    for name, stem, seconds, built in timings:
        say(f"{name}/{stem}: {seconds:.1f} s in a container (image built in {built:.0f} s)")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default=DEFAULT_TAG, help="the base image (autograder.otterkit.image)")
    parser.add_argument("--out", type=Path, help="keep the work here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gradescope-docker-") as tmp:
        differences = prove(args.out or Path(tmp), args.image)
    print("\n".join(differences) or "results.json holds the native per-exercise scores and messages: same")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
