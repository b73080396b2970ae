"""The workspace: a directory holding one DuckDB file plus the artefacts later jobs write.

Concurrency design (one writer, many readers, nobody blocked):

* Readers (the dashboard, `mixscope sql`, `mixscope info`) never open the database file for
  writing. A reader is an in-memory DuckDB instance that ATTACHes `mixscope.duckdb`
  READ_ONLY, then disables external access and locks its configuration. It keeps reading the
  snapshot it attached even while a job publishes a new one, and picks up the new snapshot on
  its next query (the file's identity, inode + mtime, is checked before each query).
* Writers (ingest and every other job) take an exclusive lock on `.write.lock`, copy the
  database to a private temporary file, do all their work there, CHECKPOINT, close, fsync and
  publish it with an atomic `os.replace`. A job that fails or is killed half-way leaves the
  published file untouched; its temporary file is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from analytics import __version__
from analytics.db import one
from analytics.errors import WorkspaceError
from analytics.migrations import LATEST_VERSION, MIGRATIONS, statements

DB_NAME = "mixscope.duckdb"
ENV_VAR = "MIXSCOPE_WORKSPACE"
DEFAULT_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"


def default_workspace_dir() -> Path:
    """`$MIXSCOPE_WORKSPACE` if set, else `~/.mixscope/workspace`."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".mixscope" / "workspace"


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Snapshot:
    """A read-only, locked view of one published version of the workspace database."""

    def __init__(self, db_path: Path, *, threads: int = 2, memory_limit: str = "2GB"):
        self.identity = _identity(db_path)
        con = duckdb.connect(":memory:")
        try:
            con.execute("ATTACH ? AS ws (READ_ONLY)", [str(db_path)])
        except duckdb.Error as exc:
            con.close()
            raise WorkspaceError(
                f"{db_path}: not a readable mixscope workspace database ({exc}). "
                "If the file is corrupted, restore it from backups/ or rebuild it with "
                "`mixscope ingest`."
            ) from exc
        con.execute("USE ws")
        con.execute(f"SET threads={int(threads)}")
        con.execute("SET memory_limit=?", [memory_limit])
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")
        self._con = con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        cur.execute("USE ws")
        return cur


class Workspace:
    """A mixscope workspace directory. Cheap to construct; open one per process."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser().resolve() if path else default_workspace_dir()
        self.db_path = self.path / DB_NAME
        self._snapshot: Snapshot | None = None
        self._snap_lock = threading.Lock()

    # ------------------------------------------------------------------ creation
    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, create: bool = False) -> Workspace:
        """Open an existing workspace (or create an empty one with `create=True`)."""
        ws = cls(path)
        if not ws.db_path.exists():
            if not create:
                raise WorkspaceError(
                    f"{ws.path}: no mixscope workspace here (expected {DB_NAME}). Create one "
                    "with `mixscope ingest PATH --source NAME --workspace DIR`, or run "
                    "`mixscope demo`."
                )
            ws.initialise()
        ws.check_version()
        return ws

    @property
    def exists(self) -> bool:
        return self.db_path.exists()

    def initialise(self, *, tokenizer: str = DEFAULT_TOKENIZER) -> None:
        """Create the workspace directory and an empty, fully migrated database."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.db_path.exists():
            return
        with self.write(job="initialise", _allow_missing=True) as con:
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('tokenizer', ?), ('created_at', ?), "
                "('created_by', ?)",
                [
                    tokenizer,
                    dt.datetime.now(dt.UTC).isoformat(),
                    f"mixscope {__version__}",
                ],
            )

    # ------------------------------------------------------------------ versions
    def schema_version(self) -> int:
        cur = self.cursor()
        try:
            row = one(cur, "SELECT value FROM meta WHERE key = 'schema_version'")
        except duckdb.CatalogException:
            return 0
        return int(row[0]) if row else 0

    def check_version(self) -> int:
        """Raise a clear error for a workspace written by a newer mixscope."""
        version = self.schema_version()
        if version > LATEST_VERSION:
            raise WorkspaceError(
                f"{self.db_path}: schema version {version} is newer than this mixscope "
                f"understands ({LATEST_VERSION}); upgrade mixscope to open it."
            )
        return version

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> Snapshot:
        """The current published snapshot; re-attached when a writer has published anew."""
        if not self.db_path.exists():
            raise WorkspaceError(f"{self.path}: no mixscope workspace here (expected {DB_NAME}).")
        with self._snap_lock:
            ident = _identity(self.db_path)
            if self._snapshot is None or self._snapshot.identity != ident:
                self._snapshot = Snapshot(self.db_path)
            return self._snapshot

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the current snapshot: read-only, no file access, config locked."""
        return self.snapshot().cursor()

    def meta(self) -> dict[str, str]:
        return dict(self.cursor().execute("SELECT key, value FROM meta").fetchall())

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def write_lock(self, job: str, *, timeout: float = 600.0) -> Iterator[None]:
        """Exclusive, process-wide writer lock (released by the OS if the process dies)."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / ".write.lock"
        fh = open(lock_path, "a+")
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        fh.seek(0)
                        holder = fh.read().strip() or "another job"
                        raise WorkspaceError(
                            f"{self.path}: the workspace is being written by {holder}; "
                            f"waited {timeout:.0f}s."
                        ) from None
                    time.sleep(0.2)
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"job": job, "pid": os.getpid()}))
            fh.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    @contextlib.contextmanager
    def write(
        self, *, job: str, timeout: float = 600.0, _allow_missing: bool = False
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection on a private copy, published atomically on success.

        On any exception (or if the process is killed) the published database is unchanged.
        Migrations are applied first (an older workspace is backed up before migrating).
        """
        with self.write_lock(job, timeout=timeout):
            for stale in self.path.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
            tmp = self.path / f".{DB_NAME}.{os.getpid()}.tmp"
            if self.db_path.exists():
                shutil.copyfile(self.db_path, tmp)
            elif not _allow_missing:
                raise WorkspaceError(f"{self.path}: no mixscope workspace here.")
            try:
                con = duckdb.connect(str(tmp))
            except duckdb.Error as exc:
                tmp.unlink(missing_ok=True)
                raise WorkspaceError(
                    f"{self.db_path}: not a readable mixscope workspace database ({exc})."
                ) from exc
            try:
                self._migrate(con)
                yield con
                con.execute("CHECKPOINT")
                con.close()
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, self.db_path)
                _fsync_dir(self.path)
            except BaseException:
                with contextlib.suppress(Exception):
                    con.close()
                tmp.unlink(missing_ok=True)
                Path(str(tmp) + ".wal").unlink(missing_ok=True)
                raise

    def checkpoint(self, con: duckdb.DuckDBPyConnection) -> None:
        """Publish what a running `write()` job has done so far (for resumable jobs).

        Readers see the partial result at once, and if the job is then killed, a re-run
        starts from this point instead of from scratch. Costs one copy of the database.
        """
        con.execute("CHECKPOINT")
        path = one(
            con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        )
        if not path or not path[0]:
            raise WorkspaceError("checkpoint() needs the connection of a running write() job.")
        pub = Path(path[0] + ".pub")
        shutil.copyfile(path[0], pub)
        with open(pub, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pub, self.db_path)
        _fsync_dir(self.path)

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            row = one(con, "SELECT value FROM meta WHERE key = 'schema_version'")
            current = int(row[0]) if row else 0
        except duckdb.CatalogException:
            current = 0
        if current > LATEST_VERSION:
            raise WorkspaceError(
                f"{self.db_path}: schema version {current} is newer than this mixscope "
                f"understands ({LATEST_VERSION}); upgrade mixscope."
            )
        if current == LATEST_VERSION:
            return
        if current > 0 and self.db_path.exists():
            backups = self.path / "backups"
            backups.mkdir(exist_ok=True)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            shutil.copyfile(self.db_path, backups / f"mixscope-v{current}-{stamp}.duckdb")
        for version, _desc, entry in MIGRATIONS:
            if version <= current:
                continue
            for sql in statements(entry):
                con.execute(sql)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                [str(version)],
            )
