"""The fork server's preload, and that is all this module is for.

multiprocessing's fork server can only import modules by name before it forks, so importing this module is what
prepares the server that every worker (and, with `--jobs N`, every scoring process) is forked from: the worker's
code, torch included, is imported once for all forks, and the server is made non-dumpable, so that a worker can
read neither its memory nor, through /proc/<pid>/root, its view of the files. It is the one module whose import
changes the process: import it nowhere else (`proxy.FORK_SERVER_PRELOAD` names it).
"""

import autograder.runner.worker  # noqa: F401 - imported once here, inherited by every fork
from autograder.runner import sandbox

sandbox.protect_this_process()
