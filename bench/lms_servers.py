"""Stand-in Canvas and Moodle servers on loopback, for `autograder push`'s tests and bench.push.

No LMS can be reached from these machines. Each stand-in speaks the endpoints the push uses, shaped as the
platforms' API documentation shows them, and keeps a gradebook the tests read afterwards:
- Canvas (REST under /api/v1, `Authorization: Bearer`): the course, the assignment, the course's students
  (paginated with `Link` headers), the assignment's submissions with `score` and `submission_comments`, grading one
  submission (PUT, `submission[posted_grade]`, `comment[text_comment]`, `comment[file_ids][]`), the bulk
  `update_grades` returning a `Progress` to poll, file comments (upload request, upload, attach); 401 for a wrong
  token, 404 for what does not exist, `X-Rate-Limit-Remaining` on every answer.
- Moodle (`/webservice/rest/server.php`, `wstoken`, `wsfunction`, `moodlewsrestformat=json`):
  mod_assign_get_assignments, core_enrol_get_enrolled_users, mod_assign_get_grades, mod_assign_save_grades
  (with the feedback-comments plugin's data); errors as its `exception`/`errorcode`/`message` envelope.
Faults are injected by write number (1 = the first request that writes): 403 throttling, 500, the connection
dropped before or after the write is applied, or the answer held back (so a test can kill the client then).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Faults:
    throttle: set[int] = field(default_factory=set)  # 403 Rate Limit Exceeded, nothing applied
    error: set[int] = field(default_factory=set)  # 500, nothing applied
    drop_before: set[int] = field(default_factory=set)  # the connection closed, nothing applied
    drop_after: set[int] = field(default_factory=set)  # applied, then the connection closed without an answer
    hold_from: int = 0  # from this write on, hold every answer for `hold_s` (a client killed meanwhile)
    hold_s: float = 60.0


@dataclass
class Student:
    user_id: int
    name: str
    sis_id: str = ""
    login: str = ""
    email: str = ""


class StandIn:
    """A threaded HTTP server on 127.0.0.1 with a gradebook; `with StandIn(...) as s: s.url`."""

    def __init__(self, token: str, students: list[Student], points: float = 40.0, faults: Faults | None = None):
        self.token = token
        self.students = students
        self.points = points
        self.faults = faults or Faults()
        self.scores: dict[int, float | None] = {s.user_id: None for s in students}
        self.comments: dict[int, list[dict[str, Any]]] = {s.user_id: [] for s in students}
        self.writes = 0
        self.requests = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_fault(self) -> str:
        """Count one write; the fault to apply to it ('' for none)."""
        with self.lock:
            self.writes += 1
            n, f = self.writes, self.faults
        if f.hold_from and n >= f.hold_from:
            time.sleep(f.hold_s)
        for name in ("throttle", "error", "drop_before", "drop_after"):
            if n in getattr(f, name):
                return name
        return ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK between header and body

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                stand_in.route(self, "GET")

            def do_POST(self) -> None:
                stand_in.route(self, "POST")

            def do_PUT(self) -> None:
                stand_in.route(self, "PUT")

        return Handler

    def route(self, request: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    @staticmethod
    def body(request: BaseHTTPRequestHandler) -> bytes:
        return request.rfile.read(int(request.headers.get("Content-Length") or 0))

    @staticmethod
    def answer(request: BaseHTTPRequestHandler, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = data if isinstance(data, bytes) else json.dumps(data).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)

    @staticmethod
    def drop(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        request.connection.shutdown(2)


# -- Canvas ---------------------------------------------------------------------------------------------------------
class CanvasStandIn(StandIn):
    def __init__(self, token: str, students: list[Student], course: int = 101, assignment: int = 7,
                 points: float = 40.0, grading_type: str = "points", faults: Faults | None = None,
                 per_page: int = 10):  # fmt: skip
        super().__init__(token, students, points, faults)
        self.course, self.assignment, self.grading_type, self.per_page = course, assignment, grading_type, per_page
        self.progress: dict[int, dict[str, Any]] = {}
        self.files: dict[int, str] = {}
        self.remaining = 700.0

    def headers(self) -> dict[str, str]:
        with self.lock:
            self.remaining = max(0.0, self.remaining - 1) if self.remaining > 0 else 0.0
            return {"X-Rate-Limit-Remaining": f"{self.remaining:.1f}", "X-Request-Cost": "1.0"}

    def route(self, request: BaseHTTPRequestHandler, method: str) -> None:
        self.requests += 1
        url = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(url.query)
        body = self.body(request)
        if url.path.startswith("/files_upload/"):  # the upload step: no token (the URL is the credential)
            return self.upload(request, url.path, body)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.answer(request, 401, {"errors": [{"message": "Invalid access token."}]},
                               {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})  # fmt: skip
        base = f"/api/v1/courses/{self.course}"
        path = url.path
        if not path.startswith(base) and not path.startswith("/api/v1/progress/"):
            return self.missing(request)
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        assignment = f"{base}/assignments/{self.assignment}"
        if method == "GET" and path == base:
            return self.answer(request, 200, {"id": self.course, "name": "Deep Learning", "course_code": "DL"},
                               self.headers())  # fmt: skip
        if method == "GET" and path == assignment:
            return self.answer(request, 200, self.assignment_json(), self.headers())
        if method == "GET" and path in (f"{base}/users", f"{base}/search_users"):
            users = [{"id": s.user_id, "name": s.name, "sortable_name": s.name, "sis_user_id": s.sis_id or None,
                      "login_id": s.login, "email": s.email} for s in self.students]  # fmt: skip
            return self.page(request, users, query)
        if method == "GET" and path == f"{assignment}/submissions":
            return self.page(request, [self.submission(s.user_id) for s in self.students], query)
        found = re.fullmatch(rf"{assignment}/submissions/(\d+)", path)
        if found and method == "GET":
            return self.answer(request, 200, self.submission(int(found[1])), self.headers())
        if found and method == "PUT":
            return self.grade_one(request, int(found[1]), form)
        if method == "POST" and path == f"{assignment}/submissions/update_grades":
            return self.bulk(request, form)
        found = re.fullmatch(r"/api/v1/progress/(\d+)", path)
        if found and method == "GET":
            return self.poll(request, int(found[1]))
        found = re.fullmatch(rf"{assignment}/submissions/(\d+)/comments/files", path)
        if found and method == "POST":
            return self.upload_request(request, form)
        return self.missing(request)

    def missing(self, request: BaseHTTPRequestHandler) -> None:
        self.answer(request, 404, {"errors": [{"message": "The specified resource does not exist."}]})

    def assignment_json(self) -> dict[str, Any]:
        return {"id": self.assignment, "course_id": self.course, "name": "MLP", "points_possible": self.points,
                "grading_type": self.grading_type}  # fmt: skip

    def submission(self, user_id: int) -> dict[str, Any]:
        score = self.scores.get(user_id)
        return {"id": 9000 + user_id, "assignment_id": self.assignment, "user_id": user_id, "score": score,
                "grade": None if score is None else f"{score:g}", "workflow_state": "graded" if score is not None
                else "unsubmitted", "submission_comments": self.comments.get(user_id, [])}  # fmt: skip

    def page(self, request: BaseHTTPRequestHandler, items: list[Any], query: dict[str, list[str]]) -> None:
        per_page = min(int(query.get("per_page", [self.per_page])[0]), 100)
        number = int(query.get("page", ["1"])[0])
        chunk = items[(number - 1) * per_page : number * per_page]
        path = urllib.parse.urlsplit(request.path).path
        links = []
        rest = {k: v for k, v in query.items() if k not in ("page", "per_page")}

        def link(n: int, rel: str) -> str:
            params = urllib.parse.urlencode({**rest, "page": n, "per_page": per_page}, doseq=True)
            return f'<{self.url}{path}?{params}>; rel="{rel}"'

        links.append(link(number, "current"))
        if number * per_page < len(items):
            links.append(link(number + 1, "next"))
        links += [link(1, "first"), link(max(1, -(-len(items) // per_page)), "last")]
        self.answer(request, 200, chunk, {**self.headers(), "Link": ",".join(links)})

    def faulted(self, request: BaseHTTPRequestHandler) -> str:
        fault = self.write_fault()
        if fault == "throttle":
            with self.lock:
                self.remaining = 0.0
            self.answer(request, 403, b"403 Forbidden (Rate Limit Exceeded)", {"X-Rate-Limit-Remaining": "0.0"})
        elif fault == "error":
            self.answer(request, 500, {"errors": [{"message": "An error occurred."}]})
        elif fault == "drop_before":
            self.drop(request)
        return fault

    def apply(self, user_id: int, grade: str | None, text: str | None, file_ids: list[str]) -> None:
        with self.lock:
            if grade is not None:
                self.scores[user_id] = float(grade)
            if text or file_ids:
                attachments = [{"id": int(f), "display_name": self.files.get(int(f), "")} for f in file_ids]
                self.comments[user_id].append({"id": len(self.comments[user_id]) + 1, "author_id": 1,
                                               "comment": text or "", "attachments": attachments})  # fmt: skip

    def grade_one(self, request: BaseHTTPRequestHandler, user_id: int, form: dict[str, list[str]]) -> None:
        if user_id not in self.scores:
            return self.missing(request)
        fault = self.faulted(request)
        if fault in ("throttle", "error", "drop_before"):
            return
        grade = form.get("submission[posted_grade]", [None])[0]
        self.apply(user_id, grade, form.get("comment[text_comment]", [None])[0], form.get("comment[file_ids][]", []))
        if fault == "drop_after":
            return self.drop(request)
        self.answer(request, 200, self.submission(user_id), self.headers())

    def bulk(self, request: BaseHTTPRequestHandler, form: dict[str, list[str]]) -> None:
        fault = self.faulted(request)
        if fault in ("throttle", "error", "drop_before"):
            return
        data: dict[int, dict[str, str]] = {}
        for key, values in form.items():
            found = re.fullmatch(r"grade_data\[(\d+)\]\[(\w+)\]", key)
            if found:
                data.setdefault(int(found[1]), {})[found[2]] = values[0]
        with self.lock:
            number = len(self.progress) + 1
            self.progress[number] = {"id": number, "context_id": self.course, "context_type": "Course",
                                     "tag": "submissions_update", "completion": 0, "workflow_state": "queued",
                                     "url": f"{self.url}/api/v1/progress/{number}", "pending": data}  # fmt: skip
        if fault == "drop_after":
            return self.drop(request)
        self.answer(request, 200, self.progress_json(number), self.headers())

    def progress_json(self, number: int) -> dict[str, Any]:
        return {k: v for k, v in self.progress[number].items() if k != "pending"}

    def poll(self, request: BaseHTTPRequestHandler, number: int) -> None:
        if number not in self.progress:
            return self.missing(request)
        job = self.progress[number]
        if job["workflow_state"] == "queued":  # the job runs between two polls, as Canvas's background jobs do
            job["workflow_state"] = "running"
        elif job["workflow_state"] == "running":
            for user_id, fields in job.pop("pending").items():
                if user_id in self.scores:
                    self.apply(user_id, fields.get("posted_grade"), fields.get("text_comment"), [])
            job["workflow_state"], job["completion"] = "completed", 100
        self.answer(request, 200, self.progress_json(number), self.headers())

    def upload_request(self, request: BaseHTTPRequestHandler, form: dict[str, list[str]]) -> None:
        with self.lock:
            number = len(self.files) + 1
            self.files[number] = form.get("name", ["feedback.html"])[0]
        self.answer(request, 200, {"upload_url": f"{self.url}/files_upload/{number}",
                                   "upload_params": {"filename": self.files[number]}}, self.headers())  # fmt: skip

    def upload(self, request: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        number = int(path.rsplit("/", 1)[1])
        self.answer(request, 201, {"id": number, "display_name": self.files.get(number, ""), "size": len(body),
                                   "url": f"{self.url}/files/{number}/download"})  # fmt: skip


MISSING_RECORD = {"exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
                  "message": "Can't find data record in database."}  # fmt: skip


# -- Moodle ---------------------------------------------------------------------------------------------------------
class MoodleStandIn(StandIn):
    def __init__(self, token: str, students: list[Student], course: int = 5, assignment: int = 12, cmid: int = 340,
                 points: float = 40.0, faults: Faults | None = None):  # fmt: skip
        super().__init__(token, students, points, faults)
        self.course, self.assignment, self.cmid = course, assignment, cmid
        self.feedback: dict[int, list[str]] = {s.user_id: [] for s in students}  # every save, in order

    def route(self, request: BaseHTTPRequestHandler, method: str) -> None:
        self.requests += 1
        url = urllib.parse.urlsplit(request.path)
        form = dict(urllib.parse.parse_qsl(self.body(request).decode(), keep_blank_values=True))
        form.update(urllib.parse.parse_qsl(url.query))
        if method != "POST" or url.path != "/webservice/rest/server.php":
            return self.answer(request, 404, b"not found")
        if form.get("wstoken") != self.token:
            return self.answer(request, 200, {"exception": "moodle_exception", "errorcode": "invalidtoken",
                                              "message": "Invalid token - token not found"})  # fmt: skip
        function = form.get("wsfunction", "")
        if function == "mod_assign_save_grades":
            return self.save(request, form)
        answers = {
            "mod_assign_get_assignments": self.assignments,
            "core_enrol_get_enrolled_users": self.enrolled,
            "mod_assign_get_grades": self.grades,
        }
        if function not in answers:
            return self.answer(request, 200, MISSING_RECORD)
        self.answer(request, 200, answers[function](form))

    def assignments(self, form: dict[str, str]) -> Any:
        if form.get("courseids[0]") != str(self.course):
            refusal = "User is not enrolled or does not have requested capability"
            warning = {"item": "course", "itemid": int(form.get("courseids[0]", 0)), "warningcode": "2",
                       "message": refusal}  # fmt: skip
            return {"courses": [], "warnings": [warning]}
        assignment = {"id": self.assignment, "cmid": self.cmid, "course": self.course, "name": "MLP",
                      "grade": self.points}  # fmt: skip
        return {"courses": [{"id": self.course, "fullname": "Deep Learning", "assignments": [assignment]}],
                "warnings": []}  # fmt: skip

    def enrolled(self, form: dict[str, str]) -> Any:
        if form.get("courseid") != str(self.course):
            return {"exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
                    "message": "Can't find data record in database table course."}  # fmt: skip
        return [{"id": s.user_id, "fullname": s.name, "username": s.login, "email": s.email, "idnumber": s.sis_id,
                 "roles": [{"roleid": 5, "shortname": "student"}]} for s in self.students]  # fmt: skip

    def grades(self, form: dict[str, str]) -> Any:
        if form.get("assignmentids[0]") != str(self.assignment):
            return {"assignments": [], "warnings": [{"item": "assignment", "itemid": 0, "warningcode": "3",
                                                     "message": "No grades found"}]}  # fmt: skip
        graded = [(uid, score) for uid, score in self.scores.items() if score is not None]
        grades = [{"id": n, "userid": uid, "attemptnumber": 0, "timecreated": 0, "timemodified": 0, "grader": 2,
                   "grade": f"{score:.5f}"} for n, (uid, score) in enumerate(graded)]  # fmt: skip
        return {"assignments": [{"assignmentid": self.assignment, "grades": grades}], "warnings": []}

    def save(self, request: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        fault = self.write_fault()
        if fault == "error":
            return self.answer(request, 503, b"<html>Service Unavailable</html>")
        if fault in ("drop_before", "throttle"):
            return self.drop(request)
        if form.get("assignmentid") != str(self.assignment):
            return self.answer(request, 200, MISSING_RECORD)
        n = 0
        with self.lock:
            while f"grades[{n}][userid]" in form:
                user_id = int(form[f"grades[{n}][userid]"])
                if user_id in self.scores:
                    self.scores[user_id] = float(form[f"grades[{n}][grade]"])
                    text = form.get(f"grades[{n}][plugindata][assignfeedbackcomments_editor][text]", "")
                    self.feedback[user_id].append(text)
                n += 1
        if fault == "drop_after":
            return self.drop(request)
        self.answer(request, 200, b"null")
