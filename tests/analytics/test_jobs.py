"""The job queue: jobs run the real CLI, report progress, fail and cancel cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from analytics.db import scalar
from analytics.jobs import JobReporter, JobStore
from analytics.workspace import Workspace
from tests.conftest import fingerprint


def test_queued_ingest_job_runs_and_reports(tmp_path, jsonl_file):
    ws = Workspace.open(tmp_path / "ws", create=True)
    store = JobStore(ws.path)
    job = store.submit("ingest", ["ingest", str(jsonl_file), "--source", "web"])
    assert store.get(job.id).status == "queued"
    assert store.work() == 1
    done = store.get(job.id)
    assert done.status == "done" and done.returncode == 0, store.log(job.id)
    assert done.progress["stage"] in ("tokenize", "insert")
    assert scalar(ws.cursor(), "SELECT count(*) FROM documents") == 4


def test_failed_job_keeps_its_error(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    store = JobStore(ws.path)
    job = store.submit("ingest", ["ingest", str(tmp_path / "missing.jsonl"), "--source", "x"])
    store.work()
    failed = store.get(job.id)
    assert failed.status == "failed"
    assert "missing.jsonl: no such file" in failed.error


def test_cancel_queued_and_dead_process_is_failed(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    store = JobStore(ws.path)
    job = store.submit("ingest", ["info"])
    assert store.cancel(job.id).status == "cancelled"
    assert store.work() == 0
    ghost = store.submit("ingest", ["info"])
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    store._update(ghost.id, status="running", pid=proc.pid)
    assert store.refresh(store.get(ghost.id)).status == "failed"


def test_reporter_writes_progress_and_honours_cancel(tmp_path):
    rep = JobReporter(str(tmp_path), min_interval_s=0)
    rep("embed", 3, 10)
    assert json.loads((tmp_path / "progress.json").read_text())["done"] == 3
    (tmp_path / "cancel").touch()
    try:
        rep("embed", 4, 10)
    except Exception as exc:  # JobCancelled
        assert "cancelled" in str(exc)
    else:
        raise AssertionError("cancel was ignored")


def test_cancelling_a_running_job_leaves_the_workspace_unchanged(tmp_path, jsonl_file):
    ws = Workspace.open(tmp_path / "ws", create=True)
    before = fingerprint(ws)
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"text": f"doc {i} " * 200}) + "\n" for i in range(30000)))
    store = JobStore(ws.path)
    job = store.submit("ingest", ["ingest", str(big), "--source", "big"])
    runner = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "worker", "--workspace", str(ws.path)]
    )
    for _ in range(600):
        if store.get(job.id).status == "running" and store.get(job.id).progress:
            break
        time.sleep(0.1)
    store.cancel(job.id)
    runner.wait(timeout=120)
    assert store.get(job.id).status == "cancelled"
    assert fingerprint(ws) == before


def test_jobs_run_in_parallel_and_wait_for_their_predecessors(tmp_path):
    """Two independent jobs run at once; a job queued `after` another starts only when it
    is done, and fails (without running) when its predecessor failed."""
    store = JobStore(tmp_path)
    a = store.submit("t", ["--help"])
    b = store.submit("t", ["--help"])
    c = store.submit("t", ["--help"], after=[a.id])
    d = store.submit("t", ["--no-such-option"])
    e = store.submit("t", ["--help"], after=[d.id])
    assert store.work(max_parallel=3) == 4
    jobs = {j.id: j for j in store.list()}
    assert jobs[a.id].status == jobs[b.id].status == jobs[c.id].status == "done"
    assert jobs[c.id].started >= jobs[a.id].finished
    assert jobs[b.id].started <= jobs[a.id].finished  # a and b overlapped
    assert jobs[d.id].status == "failed"
    assert jobs[e.id].status == "failed" and "did not finish" in jobs[e.id].error
    assert jobs[e.id].started is None
