"""Workspace lifecycle on the lake: missing, corrupted, newer and older schema versions,
killed writers, concurrent writers, checkpoints and time travel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from analytics.db import scalar
from analytics.errors import WorkspaceError
from analytics.migrations import LATEST_VERSION
from analytics.workspace import Workspace
from tests.conftest import fingerprint


def test_missing_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="no mixscope workspace here"):
        Workspace.open(tmp_path / "nothing")


def test_create_then_open(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    assert ws.schema_version() == LATEST_VERSION
    assert scalar(ws.cursor(), "SELECT count(*) FROM documents") == 0
    assert (tmp_path / "ws" / "catalog.sqlite").exists()


def test_corrupted_catalog_is_detected(tmp_path):
    Workspace.open(tmp_path, create=True)
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    with pytest.raises(WorkspaceError, match="not a readable mixscope workspace"):
        Workspace.open(tmp_path)


def test_single_file_workspace_asks_for_migrate(tmp_path):
    (tmp_path / "mixscope.duckdb").write_bytes(b"old")
    with pytest.raises(WorkspaceError, match="mixscope migrate"):
        Workspace.open(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    ws = Workspace.open(tmp_path, create=True)
    with ws.write(job="t") as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(WorkspaceError, match="newer than this mixscope"):
        Workspace.open(tmp_path)


def test_older_schema_is_migrated_with_a_backup(tmp_path, monkeypatch):
    import analytics.migrations as mig
    import analytics.workspace as wsmod

    ws = Workspace.open(tmp_path, create=True)
    extra = (LATEST_VERSION + 1, "test table", ["CREATE TABLE test_extra(a INTEGER)"])
    monkeypatch.setattr(wsmod, "MIGRATIONS", [*mig.MIGRATIONS, extra])
    monkeypatch.setattr(wsmod, "LATEST_VERSION", LATEST_VERSION + 1)
    with ws.write(job="migrate"):
        pass
    assert ws.schema_version() == LATEST_VERSION + 1
    assert scalar(ws.cursor(), "SELECT count(*) FROM test_extra") == 0
    backups = list((tmp_path / "backups").glob(f"catalog-v{LATEST_VERSION}-*.sqlite"))
    assert len(backups) == 1


def test_a_killed_writer_leaves_no_trace(tmp_path):
    """SIGKILL half-way through a job that wrote data files: nothing committed, the lock
    released, and the next writer removes the orphaned files."""
    ws = Workspace.open(tmp_path, create=True)
    before = fingerprint(ws)
    code = textwrap.dedent(
        f"""
        import os, signal
        from analytics.workspace import Workspace
        ws = Workspace({str(tmp_path)!r})
        with ws.write(job="doomed") as con:
            con.execute("INSERT INTO meta SELECT 'half' || i, 'x' FROM range(200000) t(i)")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd())
    assert proc.returncode == -9
    assert ws.snapshot_id() == before[0]
    assert len(fingerprint(ws)[1]) > len(before[1])  # the killed job left a data file
    with ws.write(job="next", timeout=5) as con:  # the lock is free
        con.execute("INSERT INTO meta VALUES ('after', 'ok')")
    meta = ws.meta()
    assert meta["after"] == "ok" and "half0" not in meta
    assert fingerprint(ws)[1] == before[1]  # orphans swept (the small row is inlined)


def test_second_writer_waits_and_says_for_whom(tmp_path):
    ws = Workspace.open(tmp_path, create=True)
    told = []
    with ws.write_lock("first"):
        with pytest.raises(WorkspaceError, match="waited .* for first"):
            with ws.write(job="second", timeout=0.5, on_wait=told.append):
                pass
    assert told and told[0]["job"] == "first" and told[0]["since"]


def test_concurrent_writers_all_commit(tmp_path):
    """Four processes committing 10 transactions each at once through the SQLite catalog."""
    Workspace.open(tmp_path, create=True)
    code = textwrap.dedent(
        """
        import sys
        from analytics.workspace import Workspace
        ws = Workspace(sys.argv[1])
        for k in range(10):
            with ws.write(job=f"w{sys.argv[2]}") as con:
                con.execute("INSERT INTO meta VALUES (?, ?)", [f"w{sys.argv[2]}-{k}", "x"])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(i)]) for i in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    ws = Workspace(tmp_path)
    n = scalar(ws.cursor(), "SELECT count(*) FROM meta WHERE key LIKE 'w%-%'")
    assert n == 40


def test_checkpoint_commits_partial_progress_and_lets_a_waiter_in(tmp_path):
    ws = Workspace.open(tmp_path, create=True)
    other_done = threading.Event()

    def other():
        with ws.write(job="small save") as con:
            con.execute("INSERT INTO meta VALUES ('saved', 'yes')")
        other_done.set()

    try:
        with ws.write(job="resumable") as con:
            con.execute("INSERT INTO meta VALUES ('step', '1')")
            t = threading.Thread(target=other)
            t.start()
            time.sleep(0.5)  # the small save is now waiting for the lock
            assert not other_done.is_set()
            ws.checkpoint(con)
            assert other_done.wait(10)  # it got its turn at the checkpoint
            assert ws.meta()["step"] == "1"  # readers see the checkpoint while the job runs
            con.execute("INSERT INTO meta VALUES ('step2', '2')")
            raise RuntimeError("killed after the first checkpoint")
    except RuntimeError:
        pass
    t.join()
    meta = ws.meta()
    assert meta["step"] == "1" and meta["saved"] == "yes" and "step2" not in meta
