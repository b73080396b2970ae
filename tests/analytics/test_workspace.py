"""Workspace lifecycle: missing, corrupted, newer and older schema versions, write lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from analytics.db import scalar
from analytics.errors import WorkspaceError
from analytics.migrations import LATEST_VERSION
from analytics.workspace import Workspace


def test_missing_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="no mixscope workspace here"):
        Workspace.open(tmp_path / "nothing")


def test_create_then_open(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    assert ws.schema_version() == LATEST_VERSION
    assert scalar(ws.cursor(), "SELECT count(*) FROM documents") == 0


def test_corrupted_file_is_detected(tmp_path):
    (tmp_path / "mixscope.duckdb").write_bytes(b"this is not a database" * 100)
    with pytest.raises(WorkspaceError, match="not a readable mixscope workspace"):
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
    backups = list((tmp_path / "backups").glob(f"mixscope-v{LATEST_VERSION}-*.duckdb"))
    assert len(backups) == 1


def test_a_killed_writer_leaves_the_workspace_consistent(tmp_path):
    """SIGKILL half-way through a job: the published file is untouched, the lock released."""
    ws = Workspace.open(tmp_path, create=True)
    before = ws.db_path.read_bytes()
    code = textwrap.dedent(
        f"""
        import os, signal
        from analytics.workspace import Workspace
        ws = Workspace({str(tmp_path)!r})
        with ws.write(job="doomed") as con:
            con.execute("INSERT INTO meta VALUES ('half', 'written')")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd())
    assert proc.returncode == -9
    assert ws.db_path.read_bytes() == before
    with ws.write(job="next", timeout=5) as con:  # lock is free, stale temp file is swept
        con.execute("INSERT INTO meta VALUES ('after', 'ok')")
    assert not list(tmp_path.glob(".*.tmp*"))
    assert ws.meta()["after"] == "ok" and "half" not in ws.meta()


def test_second_writer_waits_then_reports_the_holder(tmp_path):
    ws = Workspace.open(tmp_path, create=True)
    with ws.write_lock("first"):
        with pytest.raises(WorkspaceError, match="being written by .*first"):
            with ws.write(job="second", timeout=0.5):
                pass


def test_checkpoint_publishes_partial_progress_of_a_job(tmp_path):
    ws = Workspace.open(tmp_path, create=True)
    try:
        with ws.write(job="resumable") as con:
            con.execute("INSERT INTO meta VALUES ('step', '1')")
            ws.checkpoint(con)
            assert ws.meta()["step"] == "1"  # readers see it while the job runs
            con.execute("INSERT INTO meta VALUES ('step2', '2')")
            raise RuntimeError("killed after the first checkpoint")
    except RuntimeError:
        pass
    meta = ws.meta()
    assert meta["step"] == "1" and "step2" not in meta
    assert not list(tmp_path.glob(".*.tmp*"))
