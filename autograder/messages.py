"""Message templates shown to instructors and students; tests import and match these constants."""

# Specs (instructor-facing)
SPEC_NOT_FOUND = "assignment {name!r}: no assignment.toml at {path}"
SPEC_UNREADABLE = "{file}: cannot read the spec: {problem}"
SPEC_FIELD = "{file}: field '{field}' {problem}"

# Submissions (student-facing)
NOT_TEXT = "{name} is not a text file (is it a notebook saved as something else?)"
NOT_A_NOTEBOOK = "{name} could not be read as a Jupyter notebook: {problem}"
UNREADABLE = "{name} could not be read: {problem}"
BAD_ZIP = "{name} is not a readable zip archive: {problem}"
SUBMISSION_TOO_BIG = (
    "{name} is {mb:.0f} MiB, more than the {limit} MiB a submission may be: it was not read. (Notebooks this big "
    "usually carry their outputs: clear them, File > Save, and hand it in again.)"
)
NO_SUCH_FILE = "{path} does not exist"

FORK_SERVER_FAILED = (
    "The process that starts the grader's workers (multiprocessing's fork server) ended while it imported torch, "
    "the course's libraries and the modules in the environment variable AUTOGRADER_PRELOAD and in the "
    "assignment's `preload` ({modules}); its own output above says why. Check that each of them imports in this "
    "environment: python -c 'import <module>'."
)
TMPDIR_TOO_LONG = (
    "The temporary folder {folder} has too long a path for the socket the grader starts its workers through (a "
    "socket's path holds at most {limit} bytes), and none of /tmp, /var/tmp and /dev/shm is writable: set TMPDIR "
    "to a shorter folder."
)
NO_DASK = "--executor dask needs Dask: pip install 'dask[distributed]' (and dask-jobqueue for Slurm)"
MISSING_WALLS = (
    "Note: {count} of {total} submission(s) ran without these walls: {walls}. {why}See 'Running untrusted "
    "submissions safely' in the README."
)
WHY_WALLS = {
    "namespaces": "no namespaces could be made here (user namespaces refused and bubblewrap not installed, or a "
    "container without CAP_SYS_ADMIN): workers saw this machine's files and processes, guarded by the audit hook "
    "only. ",
    "quota": "",  # comes with the namespaces
    "seccomp": "libseccomp is not installed (Debian: libseccomp2) or the kernel refused filters: only the audit "
    "hook kept student code from starting programs. ",
    "unprivileged": "workers ran as root: even changing ids was refused here. ",
    "tasks": "how many threads a worker may start was not bounded (no namespaces, or a root grader on Linux before "
    "6.14). ",
}


def missing_walls_note(missing: dict[str, int], total: int) -> str:
    """One note for every summary (grade, demo, check, Gradescope) naming the walls some workers lacked."""
    names = sorted(missing, key=lambda n: -missing[n])
    why = "".join(WHY_WALLS.get(n, "") for n in names)
    return MISSING_WALLS.format(count=max(missing.values()), total=total, walls=", ".join(names), why=why)


# Running student code (student-facing)
TIMEOUT = "Your code did not finish within {seconds} (an endless loop, or far too much work?)."
TOO_LARGE = "Your code returned more than {limit} MiB of data to the grader."
BAD_REPLY = "The grader could not read what your code returned: {problem}"
MISSING_ONE = "'{name}' is not defined in your notebook."
MISSING_MANY = "{names} are not defined in your notebook."
LOAD_ERROR = "Cell {cell}, line {line}: {type}: {message}"
STUDENT_RAISED = "Your code raised {type} while the grader called {call}: {message}"
STUDENT_LINE = "  at cell {cell}, line {line}: {source}"
OUTPUT_LIMIT_HINT = "Hint: your code printed or wrote more than 16 MiB; print less inside functions the grader calls."
NOT_IMPLEMENTED_HINT = "Hint: remove the `raise NotImplementedError(...)` line once you have filled in the code."
CRASHED = "The Python process running your code stopped ({how})."
SIGNALS = {
    9: "killed, perhaps for using too much memory",
    11: "segmentation fault",
    6: "aborted",
    24: "it used up its CPU time limit",
}
MEMORY = "Your code used more than {limit} MiB of memory, the grader's limit (a tensor far too large?)."
GPU_MEMORY = "Your code ran out of GPU memory, the grader's limit (a tensor far too large, or tensors kept in a list?)."
WORKER_SETUP_FAILED = (
    "The grader could not start the process that runs your code (a problem on the grading machine, not in your "
    "code); your instructor has the details."
)
WORKER_OUTPUT = "The worker process ended (exit status {code}). The last it wrote:\n{output}"
MEMORY_HINT = "Hint: your code asked for more memory than the grader allows; check the sizes of the tensors you make."
BUDGET = "Grading your notebook took longer than its time budget of {seconds}; the remaining checks were not run."
SANDBOX_HINT = "Hint: the grader runs your code in a sandbox; read and write files only in the working folder."


def missing_symbols(names: list[str]) -> str:
    if len(names) == 1:
        return MISSING_ONE.format(name=names[0])
    return MISSING_MANY.format(names=", ".join(f"'{n}'" for n in names))


def student_raised(call: str, error: dict) -> str:
    text = STUDENT_RAISED.format(type=error.get("type"), call=call, message=error.get("message", ""))
    if error.get("line"):
        text += "\n" + STUDENT_LINE.format(cell=error.get("cell"), line=error["line"], source=error.get("source"))
    if error.get("type") == "NotImplementedError":
        text += "\n" + NOT_IMPLEMENTED_HINT
    if "File too large" in str(error.get("message")):
        text += "\n" + OUTPUT_LIMIT_HINT
    if error.get("type") == "MemoryError" or "can't allocate memory" in str(error.get("message")):
        text += "\n" + MEMORY_HINT
    if "the grader's sandbox does not allow" in str(error.get("message")):
        text += "\n" + SANDBOX_HINT
    return text


def load_error(error: dict) -> str:
    return LOAD_ERROR.format(
        cell=error.get("cell"), line=error.get("line") or "?", type=error.get("type"), message=error.get("message")
    )


def crashed(exitcode: int | None) -> str:
    if exitcode is None:
        how = "it stopped answering"
    elif exitcode < 0:
        how = f"signal {-exitcode}: {SIGNALS.get(-exitcode, 'killed')}"
    else:
        how = f"it exited with status {exitcode}, e.g. through os._exit or exit()"
    return CRASHED.format(how=how)


def describe_value(value: object) -> str:
    """A short description of an argument, e.g. 'tensor (8, 5) float32'."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"{type(value).__name__} of {len(value)}"
    if callable(value) and hasattr(value, "__qualname__"):  # no memory address: the same message on every run
        return f"<{'class' if isinstance(value, type) else 'function'} {value.__qualname__}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_call(label: str, args: tuple, kwargs: dict) -> str:
    parts = [describe_value(a) for a in args] + [f"{k}={describe_value(v)}" for k, v in kwargs.items()]
    return f"{label}({', '.join(parts)})"


# Grading (student- and instructor-facing)
WHILE_LOADING = "Loading your notebook failed."
LOAD_STOPPED = (
    "Cell {cell}, line {line}: this statement stopped the grader while your notebook was loading, so it was "
    "left out (and whatever it defines is missing): {problem}"
)
TOO_MANY_RESTARTS = "Your code's process was lost {n} times; the remaining checks were not run."
CHECK_SKIPPED = "This check was skipped."
CHECK_FAILED = "This check failed."
INTERNAL_ERROR = "The grader could not run this check (an internal error); your instructor has the details."
POINTS_MISMATCH = "{checks}: the checks for '{exercise}' add up to {got:g} points but assignment.toml gives {want:g}"
NO_POINTS = "{check}: every check needs @pytest.mark.points(n), or @pytest.mark.advisory for advice worth 0 points"
ADVISORY_POINTS = "{check}: an advisory check is worth no points; remove its @pytest.mark.points"
ADVICE_PREFIX = "Advice (costs no points):"
NO_HELPERS = "{spec}: a check asks for the `helpers` fixture, but the spec names no `helpers` module"
NO_SUBMISSION = "these are grading checks: pass --submission PATH (a notebook, .py, folder or zip)"
NO_CUDA = "--device cuda was requested but CUDA is not available on this machine (use --device cpu or auto)"
BAD_DEVICE = "--device must be auto, cpu or cuda; got {device!r}"
CHECKS_BROKEN = "The checks could not be collected ({where}):\n{problem}"
PYTEST_FAILED = "pytest stopped with exit code {code} while running the checks in {checks}"
DEFINED_UNDECORATED = "(Defined all the same, without its decorators.)"
SIGNATURE_MISMATCH = (
    "Your {name}{got} cannot be called the way this exercise calls it, {name}{expected}: {problem}. Change its "
    "parameters to match the exercise's statement."
)
SIGNATURE_AGAIN = "Not run as asked: {name}'s parameters differ from the exercise's (see the first check of {name})."
DEFINED_SEVERAL = (
    "{name} is defined {n} times in this notebook (cells {cells}); the last one, in cell {last}, is the one graded."
)
NOTES_SUMMARY = "Notes for the instructor (not shown to students): {lines}"
MISSING_MODULES = (
    "Modules the class imports that this environment lacks: {modules}. Where graded code needs one, `pip install` "
    "it into the grader's environment (and add it to `preload` in assignment.toml)."
)
GRADER_FAULT = (
    "Not graded: the grader could not start the process that runs this code, twice ({problem}). This is a "
    "problem of the grading machine, not of the submission; fix it and grade again with --resume."
)
OUT_UNWRITABLE = "Cannot write results into {out}/ ({problem}); nothing was graded. Choose another --out."
OUT_LOCKED = (
    "{out}/ is being graded into by another run ({holder}); nothing was graded. Wait for it to finish, or grade "
    "into another --out."
)
CANNOT_WRITE = (
    "Could not write {path} ({problem}); {n} result(s) before it are kept. Make room, then grade again with the "
    "same command and --resume."
)
DASK_DAEMONIC = (
    "This Dask worker runs as a daemonic process, which may not start the processes student code runs in. Start "
    "the Dask workers with DASK_DISTRIBUTED__WORKER__DAEMON=False in their environment (or the setting "
    "distributed.worker.daemon: false), then grade again."
)
CLUSTER_LOST = (
    "Lost the Dask scheduler {scheduler} ({problem}); {written}. Grade the rest with the same command and --resume "
    "once the cluster is back."
)
BATCH_NOT_GRADED = (
    "{n} submission(s) were not graded, by a fault of the grader and not of the students: {names} ({problem})."
)
RESUME_HINT = "Once it is fixed, grade them with the same command and --resume (results in {out}/ are kept)."
EXPORT_NOT_GRADED = (
    "{n} result(s) were not graded by a fault of the grader and are left out (no grade, not a zero): {names}. "
    "Grade them again with `autograder grade ... --resume` into the same folder, then export again."
)
EXPORT_NOTHING_GRADED = "{results}: no result there was graded (every one failed by a fault of the grader)"
NOT_GRADED = "The grader stopped before reaching this submission; grade it again."
NO_SUBMISSIONS = "No submissions (.ipynb, .py, or zips of them) found in {paths}"
EXERCISE_ABANDONED = "Not run: an earlier check of this exercise was stopped. {first}"

# LMS downloads, rosters and gradebook files (instructor-facing; GRADESCOPE_* are student-facing)
NOT_A_DOWNLOAD = "{download}: {member!r} is not named as {lms} names submissions ({shape}); is this {lms}'s {what}?"
ROSTER_NO_ID = (
    "{path}: the roster needs a column that identifies students: one of ID, SIS User ID, SIS Login ID, "
    "Username, ID number, Email address, Identifier (found: {found})"
)
ROSTER_AMBIGUOUS = (
    "{key}: {kind} matches more than one student on the roster ({names}); for Moodle, pass the assignment's "
    "grading worksheet (its Identifier column names each participant) as --roster"
)
SKIPPED_FILES = "{key}: graded {file}; not graded: {skipped}"
NO_GRADABLE_FILE = "{key}: no notebook (.ipynb) or .py file among {files}; counted as not submitted"
CANVAS_ANONYMOUS = (
    "{keys}: anonymous submissions cannot go into the gradebook file (Canvas names students once grades are "
    "posted: download the submissions again then), or enter these grades in SpeedGrader"
)
CANVAS_NO_ID = "{key}: Canvas needs a user id, SIS user id or login for every student"
MOODLE_NO_KEY = (
    "{key}: no {field} for this student; pass Moodle's grade export or participants download (it has "
    "{header}) as --roster: it is joined by name or, with the grading worksheet, by participant"
)
MOODLE_BLANK_LEFT_OUT = (
    "{n} student(s) without a submission left out: a blank grade in Moodle's import clears an existing grade "
    "(give --missing 0 to record a zero)"
)
TWO_SUBMISSIONS = "{person}: two submissions count for this student ({first} and {second}); keep one"
GRADESCOPE_NOTHING_GRADABLE = (
    "No notebook was found in your submission (received: {files}). Submit your notebook as a .ipynb file "
    "(in Jupyter: File > Download > Notebook), e.g. {expected}.ipynb, then resubmit."
)
GRADESCOPE_NOT_GRADED = (
    "The autograder could not grade {file} ({problem}). This is not your fault: tell your instructor, "
    "or resubmit to try again."
)
GRADESCOPE_SKIPPED = "Graded {file}; not graded: {skipped}."
GRADESCOPE_EXPORT_NOTE = (
    "{n} results.json files written under {out}/: the file run_autograder writes on Gradescope for each "
    "submission, to preview what students will see. Gradescope takes scores only from its autograder: "
    "upload `autograder gradescope-zip` as the assignment's autograder."
)

# Writing assignments (instructor-facing)
NEW_BAD_NAME = "{name!r} cannot name an assignment: use a Python identifier (letters, digits, _), e.g. week3_cnn"
NEW_EXISTS = "{folder} already exists; choose another name or --dir"
VALIDATE_REFERENCE = "{exercise}: the reference scores {score:g} of {max:g}; it must get full marks ({lost})"
VALIDATE_REFERENCE_ERROR = "the reference does not load cleanly as a submission: {error}"
VALIDATE_TEMPLATE = (
    "{exercise}: a template whose bodies only raise NotImplementedError scores {score:g}; it must score 0 "
    "(checks that pass without any code: {passed})"
)
VALIDATE_NO_PUBLIC = "{exercise}: no public check (@pytest.mark.public); students could not check themselves"

# The command line: inputs, results folders, self-checks (instructor- and student-facing)
UNKNOWN_ASSIGNMENT = (
    "unknown assignment {name!r}{hint}: no built-in of that name (built-ins: {builtins}) and no assignment.toml in "
    "a folder {name}/. Give a built-in's name or the path of an assignment folder (`autograder new NAME` writes one)."
)
DID_YOU_MEAN = " (did you mean {guess!r}?)"
NO_SUCH_INPUT = "no such file or folder: {paths}; nothing was graded"
OUT_HOLDS_OTHER = (
    "{out} already holds results of assignment {other!r} (e.g. {example}); grade {assignment!r} into a folder of "
    "its own (--out), so that grades.csv, reports and exports never mix two assignments"
)
MIXED_RESULTS = (
    "{folder} holds results of more than one assignment: {found}; a results folder must hold one assignment's "
    "results (move the others to a folder of their own)"
)
EARLIER_RESULTS = "grades.csv also lists {n} submission(s) graded earlier into {out}/ and not in this batch."
REPLACED_RESULTS = "Graded again, replacing the earlier result: {names}."
LOST_POINTS = "Why points were lost (the first failed check of each exercise; --quiet leaves this out):"
LEGEND_COLOUR = "[green]passed[/] [yellow]partial[/] [red]failed[/]; missing, error and timeout are named"
LEGEND_PLAIN = "A cell is the points scored, followed by the status unless passed (partial, failed, missing, ...)."
CHECK_FOLDER = "{path} is a folder: autograder check takes one notebook (.ipynb) or Python file (.py)"
CHECK_SUFFIX = "{path} is not a notebook: autograder check takes a .ipynb or a .py file"
CHECK_NO_GUESS = (
    "{path} defines none of the functions or classes of the built-in assignments ({builtins}); "
    "name its assignment: autograder check {path} --assignment A"
)
UNKNOWN_EXERCISE = "'{assignment}' has no exercise {exercise!r}; its exercises are: {known}"
NOT_POSITIVE = "must be a whole number of at least 1, got {value!r}"
TOO_MANY_INPUTS = "{command} takes {usage}; got {count} positional arguments"
ASSIGNMENT_TWICE = "the assignment is given twice ({first!r} and --assignment {second!r}); give it once"

# Intake's limits on what it takes out of an LMS download (instructor-facing): a zip bomb, one member that expands
# a thousandfold, must not fill the memory or the disk
INTAKE_NOT_TAKEN = "{key}: not taken in, counted as not submitted: {problem}"
INTAKE_TOO_BIG = (
    "{download}: {member!r} expands to {size}, over intake's limit of {limit} a file; if it is an honest "
    "submission, run intake again with --max-file-mb {need}"
)
INTAKE_LIES = (
    "{download}: {member!r} expands to more than {limit}, intake's limit a file, although the zip declares "
    "{declared}: a damaged or crafted zip; look at it yourself before raising --max-file-mb"
)
INTAKE_UNREADABLE = "{download}: {member!r} cannot be read ({problem}); download the submissions again"
INTAKE_TOTAL_TOO_BIG = (
    "{download}: the files to take in expand to {size}, over intake's limit of {limit} a download; nothing was "
    "written to {out}. If the download is honest, run intake again with --max-total-mb {need}"
)
INTAKE_TOTAL_LIES = (
    "{download}: the files to take in expand to more than {limit}, intake's limit a download, although the zip "
    "declares less: a damaged or crafted zip; nothing was written to {out}"
)

# -- autograder push (lms/push.py, lms/canvas.py, lms/moodle.py) -----------------------------------------------------
PUSH_BAD_TOKEN = (
    "{lms} refused the API token (it is wrong, expired or revoked): make a new one and put it in {variable}; "
    "nothing was posted"
)
PUSH_FORBIDDEN = "{lms} refused (403): the token's user may not grade this course; nothing was posted"
PUSH_CANVAS_MISSING = (
    "{url}: no course {course} with an assignment {assignment} that this token can see (404); check --course and "
    "--assignment (the numbers in the assignment's address: /courses/<course>/assignments/<assignment>)"
)
PUSH_CANVAS_GRADING_TYPE = (
    "Canvas assignment {name!r} is graded as {kind!r}; the push posts points: set 'Display Grade as' to Points "
    "(or Percentage); nothing was posted"
)
PUSH_POINTS_MISMATCH = (
    "{lms} assignment {name!r} is worth {points:g} points and these results are out of {max_score:g}: set its "
    "points to {max_score:g} in {lms}; nothing was posted"
)
PUSH_MOODLE_SCALE = (
    "Moodle assignment {name!r} is graded on a scale (or not graded); the push posts points: set its grade type "
    "to Point with a maximum of {max_score:g}; nothing was posted"
)
PUSH_MOODLE_MISSING = (
    "{url}: no Moodle course {course} with an assignment {assignment} (its id, or the course module id in "
    "mod/assign/view.php?id=...) that this token can see; nothing was posted"
)
PUSH_NOT_CONFIRMED = (
    "nothing was posted: add --yes to post without being asked (scripts), or --dry-run to see the plan only"
)
PUSH_INTERRUPTED = (
    "stopped: {done} of {total} posted (recorded in {journal}); run the same command again to post the rest, "
    "nothing is posted twice"
)
