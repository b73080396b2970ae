"""A file-backed job queue with one worker per workspace.

Jobs are CLI invocations (`mixscope ingest ...`, `mixscope signals run ...`) so a job started
from the dashboard does exactly what the same command does in a terminal. State lives in
`<workspace>/jobs/<id>/` as small JSON files written atomically (never in the DuckDB file,
which the running job itself is rewriting):

    job.json       kind, args, status, timestamps, pid, error
    progress.json  {stage, done, total, updated}
    cancel         present when a cancel was requested
    log.txt        the command's output

One worker (guarded by `jobs/.worker.lock`) starts queued jobs oldest first and runs up to
`MIXSCOPE_MAX_JOBS` (default 3) at once: each job commits its own short lake transactions, so
a signals run, an embedding job, a geometry job and saving a mixture proceed together; where
two commits meet, the later one waits for the workspace lock and says for whom. A job whose
process died (SIGKILL, OOM, reboot) is reported as failed by `refresh()`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analytics.errors import MixscopeError

STATUSES = ("queued", "running", "done", "failed", "cancelled")
JOB_ENV = "MIXSCOPE_JOB_DIR"


class JobCancelled(MixscopeError):
    """Raised inside a job when a cancel was requested; the job's write is rolled back."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=str))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie child counts as dead
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


@dataclass
class Job:
    id: str
    kind: str
    args: list[str]
    status: str = "queued"
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    pid: int | None = None
    returncode: int | None = None
    worker_pid: int | None = None
    error: str | None = None
    submitted_by: str | None = None
    after: list[str] = field(default_factory=list)  # jobs that must finish first
    progress: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        return "mixscope " + " ".join(self.args)


class JobStore:
    """The jobs of one workspace."""

    def __init__(self, workspace_path: str | os.PathLike):
        self.root = Path(workspace_path) / "jobs"
        self.workspace_path = Path(workspace_path)

    def _dir(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise MixscopeError(f"not a job id: {job_id!r}")
        return self.root / job_id

    # ------------------------------------------------------------------ submit / read
    def submit(
        self,
        kind: str,
        args: list[str],
        *,
        submitted_by: str | None = None,
        after: list[str] | None = None,
    ) -> Job:
        """Queue a job; `after` names jobs that must finish (done) before it starts."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        job = Job(
            id=f"{stamp}-{uuid.uuid4().hex[:6]}",
            kind=kind,
            args=list(args),
            submitted_by=submitted_by,
            after=list(after or []),
        )
        d = self._dir(job.id)
        d.mkdir(parents=True)
        data = asdict(job)
        data.pop("progress")
        _write_json(d / "job.json", data)
        return job

    def record_cli(self, args: list[str]) -> Job:
        """Record a command started in a terminal as a running job of this process, so the
        Jobs page lists it (with progress, and cancel by SIGINT) like a queued job."""
        job = self.submit(args[0] if args else "cli", list(args), submitted_by="terminal")
        self._update(job.id, status="running", started=_now(), pid=os.getpid())
        return job

    def finish_cli(self, job_id: str, rc: int, error: str | None = None) -> None:
        """Close a terminal command's record. A user mistake caught before any work started
        (exit 2 with no progress reported: bad option, missing file) leaves no record
        behind, so the workspace is as it was; one caught mid-run is listed as failed."""
        if rc == 2 and not (self._dir(job_id) / "progress.json").exists():
            shutil.rmtree(self._dir(job_id), ignore_errors=True)
            with contextlib.suppress(OSError):
                self.root.rmdir()  # only if no other job is there
            return
        status = "done" if rc == 0 else ("cancelled" if rc == 130 else "failed")
        self._update(job_id, status=status, finished=_now(), returncode=rc, error=error)

    def get(self, job_id: str) -> Job:
        d = self._dir(job_id)
        data = _read_json(d / "job.json")
        if not data:
            raise MixscopeError(f"no job {job_id!r} in {self.root}")
        data["progress"] = _read_json(d / "progress.json")
        return Job(**data)

    def list(self, *, limit: int = 200) -> list[Job]:
        if not self.root.exists():
            return []
        ids = sorted((p.name for p in self.root.iterdir() if p.is_dir()), reverse=True)[:limit]
        jobs = []
        for i in ids:
            with contextlib.suppress(MixscopeError, TypeError):
                jobs.append(self.refresh(self.get(i)))
        return jobs

    def log(self, job_id: str, *, tail: int = 20_000) -> str:
        path = self._dir(job_id) / "log.txt"
        if not path.exists():
            return ""
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail))
            return fh.read().decode("utf-8", "replace")

    def _update(self, job_id: str, **changes) -> None:
        path = self._dir(job_id) / "job.json"
        data = _read_json(path)
        data.update(changes)
        _write_json(path, data)

    def refresh(self, job: Job) -> Job:
        """Mark a running job as failed when its process and its worker are both gone (while
        the worker lives, it records the outcome itself)."""
        if job.status == "running" and not _alive(job.pid) and not _alive(job.worker_pid):
            self._update(
                job.id,
                status="failed",
                finished=_now(),
                error=job.error
                or "the job's process died (killed or crashed); the workspace is unchanged by it",
            )
            return self.get(job.id)
        return job

    # ------------------------------------------------------------------ cancel
    def cancel(self, job_id: str) -> Job:
        job = self.refresh(self.get(job_id))
        if job.status == "queued":
            self._update(job_id, status="cancelled", finished=_now())
        elif job.status == "running":
            (self._dir(job_id) / "cancel").touch()
            if job.pid and _alive(job.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGINT)
        return self.get(job_id)

    # ------------------------------------------------------------------ worker
    def next_queued(self) -> Job | None:
        """The oldest queued job whose predecessors are done (one whose predecessor failed
        or was cancelled fails in turn, saying which)."""
        jobs = {j.id: j for j in self.list()}
        for job in sorted(jobs.values(), key=lambda j: j.id):
            if job.status != "queued":
                continue
            before = [jobs.get(a) for a in job.after]
            broken = [a for a, b in zip(job.after, before, strict=True)
                      if b is None or b.status in ("failed", "cancelled")]  # fmt: skip
            if broken:
                self._update(
                    job.id, status="failed", finished=_now(),
                    error=f"not run: the job it waits for ({broken[0]}) did not finish",
                )  # fmt: skip
                continue
            if all(b is not None and b.status == "done" for b in before):
                return job
        return None

    def run(self, job: Job) -> Job:
        """Run one job to completion in a child process; returns its final record."""
        return self.finish(job.id, self.start(job).wait())

    def start(self, job: Job) -> subprocess.Popen:
        """Start one job's process (its output goes to log.txt); mark it running."""
        d = self._dir(job.id)
        env = dict(os.environ, **{JOB_ENV: str(d), "MIXSCOPE_WORKSPACE": str(self.workspace_path)})
        with open(d / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dashboard.cli", *job.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._update(job.id, status="running", started=_now(), pid=proc.pid, worker_pid=os.getpid())
        return proc

    def finish(self, job_id: str, rc: int) -> Job:
        """Record the end of a job whose process exited with `rc`."""
        d = self._dir(job_id)
        job = self.get(job_id)
        if (d / "cancel").exists():
            status, error = "cancelled", "cancelled by request; the workspace is unchanged"
        elif rc == 0:
            status, error = "done", None
        else:
            status, error = "failed", _last_error(self.log(job.id)) or f"exit code {rc}"
        self._update(job.id, status=status, finished=_now(), returncode=rc, error=error)
        return self.get(job.id)

    @contextlib.contextmanager
    def worker_lock(self) -> Iterator[bool]:
        """Yields True if this process became the workspace's worker."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".worker.lock", "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            fh.close()

    def work(
        self, *, exit_when_idle: bool = True, poll_s: float = 1.0, max_parallel: int | None = None
    ) -> int:
        """Run queued jobs, up to `max_parallel` at once, until none is left (or forever).
        Returns how many ran."""
        limit = max(1, int(max_parallel or os.environ.get("MIXSCOPE_MAX_JOBS", "3")))
        ran = 0
        running: dict[str, subprocess.Popen] = {}
        with self.worker_lock() as mine:
            if not mine:
                return 0
            while True:
                for job_id, proc in list(running.items()):
                    rc = proc.poll()
                    if rc is not None:
                        self.finish(job_id, rc)
                        del running[job_id]
                        ran += 1
                job = self.next_queued() if len(running) < limit else None
                if job is not None:
                    running[job.id] = self.start(job)
                    continue
                if not running and exit_when_idle and self.next_queued() is None:
                    if not any(j.status == "queued" for j in self.list()):
                        return ran
                time.sleep(0.1 if running else poll_s)

    def ensure_worker(self) -> None:
        """Start a background worker for this workspace unless one is running."""
        with self.worker_lock() as free:
            if not free:
                return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "worker.log", "ab") as log:
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dashboard.cli",
                    "worker",
                    "--workspace",
                    str(self.workspace_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, MIXSCOPE_WORKSPACE=str(self.workspace_path)),
            )


def _last_error(log: str) -> str | None:
    for line in reversed(log.strip().splitlines()):
        if line.startswith("error:") or "Error" in line:
            return line.strip()
    return None


def acting_user() -> str | None:
    """Who a command acts for, as recorded on what it saves (mixtures.saved_by): the
    dashboard user who submitted the job it runs in (`submitted_by`: the signed-in e-mail,
    the proxy's user, or the role of a token sign-in), else the OS user running it in a
    terminal, else None."""
    job_dir = os.environ.get(JOB_ENV)
    if job_dir:
        try:
            who = json.loads((Path(job_dir) / "job.json").read_text()).get("submitted_by")
        except (OSError, ValueError, AttributeError):
            who = None
        if isinstance(who, str) and who.strip() and who != "terminal":
            return who.strip()
    import getpass

    try:
        return getpass.getuser() or None
    except (KeyError, OSError):  # no name for this uid (containers)
        return None


class JobReporter:
    """Progress callback for code running inside a job: writes progress.json (throttled)
    and raises JobCancelled when a cancel was requested. Outside a job it does nothing."""

    def __init__(self, job_dir: str | None = None, *, min_interval_s: float = 0.5):
        job_dir = job_dir or os.environ.get(JOB_ENV)
        self.dir = Path(job_dir) if job_dir else None
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int, **extra: Any) -> None:
        """`extra`: more fields of the record (the engine's shards_done, shards_total,
        docs_per_s, eta_s), shown on the Jobs page."""
        if self.dir is None:
            return
        if (self.dir / "cancel").exists():
            raise JobCancelled("the job was cancelled")
        now = time.monotonic()
        if now - self._last >= self.min_interval_s or (total and done >= total):
            self._last = now
            _write_json(
                self.dir / "progress.json",
                {"stage": stage, "done": done, "total": total, **extra, "updated": _now()},
            )
