"""Commands started in a terminal appear on the Jobs page like queued jobs."""

from __future__ import annotations

import json
import subprocess
import sys

from analytics.jobs import JobStore


def test_a_terminal_ingest_is_recorded_with_its_outcome(tmp_path):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(5)))
    ws = tmp_path / "ws"
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "ingest", str(src), "--source", "s",
         "--workspace", str(ws)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    jobs = JobStore(ws).list()
    assert len(jobs) == 1
    job = jobs[0]
    assert job.kind == "ingest" and job.submitted_by == "terminal" and job.status == "done"
    assert job.progress["stage"] == "insert"  # progress flowed to the job's record
    bad = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "ingest", str(tmp_path / "none.jsonl"),
         "--source", "s", "--workspace", str(ws)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2
    assert [j.id for j in JobStore(ws).list()] == [job.id]  # a mistake leaves no record
    src.write_text(src.read_text() + "{not json\n")
    mid = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "ingest", str(src), "--source", "t",
         "--workspace", str(ws)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert mid.returncode == 2 and "line 6" in mid.stderr, mid.stderr
    # the file is checked before any work starts: a mistake, not a failed job
    assert [j.id for j in JobStore(ws).list()] == [job.id]
