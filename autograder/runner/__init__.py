"""The process that runs student code, and the scoring process's side of it.

`worker` runs in the worker process (student code, requests, replies); `wire` is what crosses the pipe;
`sandbox` puts its walls up; `definitions` decides which top-level statements are run by default; `proxy` is the
parent's side: it starts a worker, asks it things within a time limit, and gives checks the `student` proxy.
"""
