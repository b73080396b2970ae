"""The workspace: a DuckLake lakehouse (catalog + Parquet data files) plus job artefacts.

Layout of a workspace directory::

    workspace.json     which catalog and data path this workspace uses (no secrets)
    catalog.sqlite     the DuckLake catalog (embedded default; SQLite in WAL mode)
    data/              the DuckLake Parquet data files (or --data s3://bucket/prefix/)
    jobs/ embeddings/ exports/ uploads/ backups/ .tmp/   artefacts of jobs

The catalog may instead be a PostgreSQL database (`--catalog postgresql://user@host/db`,
password from PGPASSWORD or ~/.pgpass), for a team server or a cluster of writers.

Documents' text stays where the corpus lives: `documents` holds metadata and a locator; the
text is read on demand (analytics.text). `--copy-text` keeps a copy in the `texts` table.

Concurrency (many writers, readers never blocked):

* Readers (the dashboard, `mixscope sql`) share one in-memory DuckDB per process that ATTACHes
  the lake READ_ONLY, then disables external access (except the lake's own data files) and
  locks its configuration. Every new cursor sees the last committed snapshot.
* Writers run one DuckLake transaction per `write()` block: it commits atomically or leaves no
  trace (files written by a failed transaction are removed; those of a killed process are
  swept by the next writer). With the SQLite catalog, SQLite allows one writer at a time, so
  a workspace lock is held for the duration of each write transaction only; long jobs
  compute outside it and commit in short transactions (`checkpoint()` commits and lets a
  waiting writer in). A writer that waits says for whom and since when. With a PostgreSQL
  catalog, DuckLake's own optimistic concurrency lets writers on several machines commit.
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
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from analytics import __version__, lake_views
from analytics.db import one, scalar
from analytics.errors import WorkspaceError
from analytics.jobs import _alive as alive
from analytics.lake import configure_remote, is_remote, load_extension, postgres_dsn
from analytics.lake_views import LakeViews, ReaderCursor
from analytics.migrations import LATEST_VERSION, MIGRATIONS, statements

CONFIG_NAME = "workspace.json"
CATALOG_NAME = "catalog.sqlite"
LEGACY_DB_NAME = "mixscope.duckdb"
ENV_VAR = "MIXSCOPE_WORKSPACE"
DEFAULT_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
ALIAS = "ws"

#: on_wait(holder) is called once when a writer has to wait; holder = {"job", "pid", "since"}
OnWait = Callable[[dict], None]


def default_workspace_dir() -> Path:
    """`$MIXSCOPE_WORKSPACE` if set, else `~/.mixscope/workspace`."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".mixscope" / "workspace"


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Insert or replace one `meta` row (DuckLake tables have no primary keys)."""
    con.execute("DELETE FROM meta WHERE key = ?", [key])
    con.execute("INSERT INTO meta VALUES (?, ?)", [key, value])


class Snapshot:
    """A process-wide read-only connection on the lake; each cursor sees the latest commit.

    `locked=True` (the connection of user SQL): external access off except the lake's own
    data files, configuration locked, no object-store secrets. `locked=False` (trusted
    library code: pages' fixed queries, reading documents' text where the corpus lives):
    read-only too, with httpfs and the environment's credentials.
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        locked: bool,
        at: int | None = None,
        threads: int = 2,
        memory_limit: str = "2GB",
    ):
        con = duckdb.connect(":memory:")
        try:
            ws._attach(con, read_only=True, snapshot=at, scoped=locked)
            con.execute(f"SET threads={int(threads)}")
            con.execute("SET memory_limit=?", [memory_limit])
            if locked:
                self._lock(con, ws)
            else:
                ws._local_temp(con)
                with contextlib.suppress(WorkspaceError):
                    configure_remote(con)
        except BaseException:
            con.close()
            raise
        self._con = con
        self.views: LakeViews | None = None
        if lake_views.enabled() and ws.uses_sqlite:
            self.views = LakeViews(con, ws.db_path, ws.data_path, alias=ALIAS, at=at)

    @staticmethod
    def _lock(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
        tmp = ws.path / ".tmp" / f"sql-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory=?", [str(tmp)])
        con.execute("SET max_temp_directory_size='4GB'")
        allowed = [ws.data_path]
        if not is_remote(ws.data_path):
            allowed.append(str(Path(ws.data_path).resolve()) + "/")
        con.execute(f"SET allowed_directories=[{', '.join(_lit(a) for a in allowed)}]")
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the latest committed snapshot (or the pinned one): through the fast
        views of `analytics.lake_views` when they can be built, else through DuckLake. A
        fast cursor stays on the snapshot it started on."""
        cur = self._con.cursor()
        db = self.views.database() if self.views is not None else None
        cur.execute(f"USE {db or ALIAS}")
        if db is None:
            return cur
        return ReaderCursor(cur, self.views, ALIAS)  # re-opened if its snapshot is evicted


class Workspace:
    """A mixscope workspace directory. Cheap to construct; open one per process."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser().resolve() if path else default_workspace_dir()
        self.config_path = self.path / CONFIG_NAME
        self.legacy_db_path = self.path / LEGACY_DB_NAME
        self._config: dict | None = None
        self._snapshots: dict[tuple[bool, int | None], Snapshot] = {}
        self._snap_lock = threading.Lock()
        self._held: dict[int, object] = {}
        self._temps: dict[int, Path] = {}

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> dict:
        if self._config is None:
            try:
                self._config = json.loads(self.config_path.read_text())
            except FileNotFoundError:
                raise WorkspaceError(self._missing_message()) from None
            except (OSError, ValueError) as exc:
                raise WorkspaceError(
                    f"{self.config_path}: not a readable mixscope workspace file ({exc})."
                ) from exc
        return self._config

    @property
    def catalog(self) -> str:
        """`sqlite:<path>` or `postgres:<libpq string>` (the DuckLake metadata location)."""
        cat = self.config.get("catalog", "sqlite")
        if cat == "sqlite":
            return f"sqlite:{self.path / CATALOG_NAME}"
        return cat

    @property
    def uses_sqlite(self) -> bool:
        return self.catalog.startswith("sqlite:")

    @property
    def data_path(self) -> str:
        data = self.config.get("data") or "data/"
        if is_remote(data):
            return data.rstrip("/") + "/"
        p = Path(data)
        return str(p if p.is_absolute() else self.path / p).rstrip("/") + "/"

    @property
    def db_path(self) -> Path:
        """The file whose snapshot identity matters for the embedded catalog."""
        return self.path / CATALOG_NAME

    def _missing_message(self) -> str:
        if self.legacy_db_path.exists():
            return (
                f"{self.path}: this workspace is in the single-file format of mixscope 0.1 "
                f"({LEGACY_DB_NAME}); convert it with `mixscope migrate --workspace {self.path}` "
                "(the old file is kept as a backup)."
            )
        return (
            f"{self.path}: no mixscope workspace here (expected {CONFIG_NAME}). Create one "
            "with `mixscope ingest PATH --source NAME --workspace DIR`, or run "
            "`mixscope demo`."
        )

    # ------------------------------------------------------------------ creation
    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        *,
        create: bool = False,
        catalog: str | None = None,
        data: str | None = None,
    ) -> Workspace:
        """Open an existing workspace (or create an empty one with `create=True`)."""
        ws = cls(path)
        if not ws.exists:
            if not create:
                raise WorkspaceError(ws._missing_message())
            ws.initialise(catalog=catalog, data=data)
        ws.check_version()
        return ws

    @property
    def exists(self) -> bool:
        return self.config_path.exists()

    def initialise(
        self,
        *,
        tokenizer: str = DEFAULT_TOKENIZER,
        catalog: str | None = None,
        data: str | None = None,
    ) -> None:
        """Create the workspace directory, its catalog and a fully migrated schema."""
        if self.exists:
            return
        if self.legacy_db_path.exists():
            raise WorkspaceError(self._missing_message())
        self._create(tokenizer=tokenizer, catalog=catalog, data=data)
        self._publish_config()

    def _create(self, *, tokenizer: str, catalog: str | None, data: str | None) -> None:
        """Create the catalog and schema (the workspace exists once its config is written)."""
        self.path.mkdir(parents=True, exist_ok=True)
        config: dict = {"format": "ducklake", "created_by": f"mixscope {__version__}"}
        if catalog and catalog != "sqlite":
            config["catalog"] = "postgres:" + postgres_dsn(catalog)
        else:
            config["catalog"] = "sqlite"
        config["data"] = data or "data/"
        self._config = config
        if self.uses_sqlite:
            self._init_sqlite()
        with self.write(job="initialise") as con:
            set_meta(con, "tokenizer", tokenizer)
            set_meta(con, "created_at", dt.datetime.now(dt.UTC).isoformat())
            set_meta(con, "created_by", f"mixscope {__version__}")

    def _publish_config(self) -> None:
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.config, indent=2))
        os.replace(tmp, self.config_path)

    def _init_sqlite(self) -> None:
        """Create the SQLite catalog in WAL mode (readers never block the one writer)."""
        import sqlite3

        path = self.path / CATALOG_NAME
        con = sqlite3.connect(path)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()

    # ------------------------------------------------------------------ connections
    def _attach(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        read_only: bool,
        snapshot: int | None = None,
        alias: str = ALIAS,
        use: bool = True,
        scoped: bool = False,
    ) -> None:
        """ATTACH the lake. `scoped`: object-store credentials only for the lake's prefix."""
        load_extension(con, "ducklake")
        load_extension(con, "sqlite_scanner" if self.uses_sqlite else "postgres_scanner")
        if is_remote(self.data_path):
            configure_remote(con, scope=self.data_path if scoped else None)
        opts = [f"DATA_PATH {_lit(self.data_path)}"]
        if not is_remote(self.data_path):
            # a local lake lives inside the workspace directory: keep it relocatable
            opts.append("OVERRIDE_DATA_PATH true")
        if not self.uses_sqlite:
            # PostgreSQL: no inlined-data tables (their column names, e.g. a result column
            # `xmin`, may clash with PostgreSQL's system columns); every write is a file
            opts.append("DATA_INLINING_ROW_LIMIT 0")
        if read_only:
            opts.append("READ_ONLY")
        if snapshot is not None:
            opts.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        try:
            con.execute(f"ATTACH {_lit('ducklake:' + self.catalog)} AS {alias} ({', '.join(opts)})")
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            if snapshot is not None and "snapshot" in first.lower():
                raise WorkspaceError(
                    f"{self.path}: snapshot {snapshot} does not exist in this workspace."
                ) from exc
            raise WorkspaceError(
                f"{self.path}: not a readable mixscope workspace catalog ({first}). If it is "
                "corrupted, restore it from backups/."
            ) from exc
        if use:
            con.execute(f"USE {alias}")

    def connect(
        self, *, read_only: bool = True, snapshot: int | None = None, remote: bool = False
    ) -> duckdb.DuckDBPyConnection:
        """A private connection with the lake attached (for jobs; external access stays on).

        `snapshot` pins the view to one committed snapshot (time travel). httpfs and the
        environment's object-store credentials are set up when available; `remote=True`
        makes their absence an error (the job reads s3/gs/hf/https URIs).
        """
        con = duckdb.connect(":memory:")
        try:
            self._attach(con, read_only=read_only, snapshot=snapshot)
            self._local_temp(con)
            if remote:
                configure_remote(con)
            else:
                with contextlib.suppress(WorkspaceError):
                    configure_remote(con)
        except BaseException:
            con.close()
            raise
        return con

    def _local_temp(self, con: duckdb.DuckDBPyConnection) -> None:
        """Spill files of this connection in a directory of its own, `.tmp/w-<pid>-<id>`
        (DuckDB names its spill files alike in every database: never share a directory).
        DuckDB creates it on the first spill and removes it on close; `close()` removes it
        in any case, and the next writer sweeps those of dead processes."""
        root = self.path / ".tmp"
        root.mkdir(exist_ok=True)
        tmp = root / f"w-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        con.execute("SET temp_directory=?", [str(tmp)])
        self._temps[id(con)] = tmp

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close a connection of `connect()` and remove its spill directory."""
        try:
            con.close()
        finally:
            tmp = self._temps.pop(id(con), None)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def sweep_temp(self) -> list[Path]:
        """Remove spill directories (`.tmp/w-<pid>-*`, `.tmp/sql-<pid>`) of processes that
        are gone (a killed job or server); returns what was removed."""
        removed = []
        root = self.path / ".tmp"
        if not root.is_dir():
            return removed
        for p in root.iterdir():
            parts = p.name.split("-")
            if len(parts) < 2 or parts[0] not in ("w", "sql") or not parts[1].isdigit():
                continue
            pid = int(parts[1])
            if pid == os.getpid() or alive(pid):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed

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
                f"{self.path}: schema version {version} is newer than this mixscope "
                f"understands ({LATEST_VERSION}); upgrade mixscope to open it."
            )
        return version

    # ------------------------------------------------------------------ reading
    def snapshot(self, *, locked: bool = False, at: int | None = None) -> Snapshot:
        """The process-wide read-only connection of its kind (created once), following the
        latest commit or pinned to snapshot `at`."""
        with self._snap_lock:
            key = (locked, at)
            if key not in self._snapshots:
                if not self.exists:
                    raise WorkspaceError(self._missing_message())
                self._snapshots[key] = Snapshot(self, locked=locked, at=at)
            return self._snapshots[key]

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A read-only cursor on the last committed snapshot for trusted library code (it can
        read documents' text where the corpus lives). Never run user-typed SQL on it."""
        return self.snapshot().cursor()

    def user_cursor(self, *, at: int | None = None) -> duckdb.DuckDBPyConnection:
        """A cursor for user-typed SQL (or SQL that came in a file, like a manifest's
        selections): read-only, no file access but the lake's own data files, no
        credentials, configuration locked; pinned to snapshot `at` when given."""
        return self.snapshot(locked=True, at=at).cursor()

    def snapshot_id(self) -> int:
        """The id of the last committed DuckLake snapshot (changes with every commit)."""
        return int(scalar(self.cursor(), f"SELECT * FROM ducklake_current_snapshot('{ALIAS}')"))

    def meta(self) -> dict[str, str]:
        return dict(self.cursor().execute("SELECT key, value FROM meta").fetchall())

    # ------------------------------------------------------------------ writing
    def _lock_file(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path / ".write.lock"

    def holder(self) -> dict | None:
        """Who holds the write lock now ({"job", "pid", "since"}), or None."""
        path = self.path / ".write.lock"
        if not path.exists():
            return None
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                try:
                    return json.loads(fh.read() or "{}") or {"job": "another job"}
                except ValueError:
                    return {"job": "another job"}
            fcntl.flock(fh, fcntl.LOCK_UN)
        return None

    @contextlib.contextmanager
    def write_lock(
        self, job: str, *, timeout: float = 600.0, on_wait: OnWait | None = None
    ) -> Iterator[None]:
        """The workspace's commit lock (SQLite catalog only), released by the OS on death."""
        if not self.uses_sqlite:
            yield
            return
        fh = open(self._lock_file(), "a+")
        try:
            self._acquire(fh, job, timeout, on_wait)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def _acquire(self, fh, job: str, timeout: float, on_wait: OnWait | None) -> None:
        deadline = time.monotonic() + timeout
        told = False
        waiting = self.path / f".wait.{os.getpid()}.{threading.get_ident()}"
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    fh.seek(0)
                    try:
                        holder = json.loads(fh.read() or "{}")
                    except ValueError:
                        holder = {}
                    holder.setdefault("job", "another job")
                    if not told:
                        waiting.write_text(json.dumps({"job": job, "pid": os.getpid()}))
                        (on_wait or _tell_waiting)(holder)
                        told = True
                    if time.monotonic() > deadline:
                        raise WorkspaceError(
                            f"{self.path}: waited {timeout:.0f}s for {holder['job']} "
                            f"(pid {holder.get('pid', '?')}, writing since "
                            f"{holder.get('since', '?')}) to commit; try again later."
                        ) from None
                    time.sleep(0.05)
        finally:
            waiting.unlink(missing_ok=True)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"job": job, "pid": os.getpid(), "since": _now()}))
        fh.flush()

    def _waiters(self) -> bool:
        return any(self.path.glob(".wait.*"))

    @contextlib.contextmanager
    def write(
        self,
        *,
        job: str,
        timeout: float = 600.0,
        on_wait: OnWait | None = None,
        remote: bool = False,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection in one DuckLake transaction, committed on success.

        On any exception (or if the process is killed) nothing is committed. Pending schema
        migrations are applied first, in the same transaction. `con` reuses a connection of
        `connect(read_only=False)` whose temporary tables hold work done before the lock
        (it is left open for the caller).
        """
        own = con is None
        fh = open(self._lock_file(), "a+") if self.uses_sqlite else None
        try:
            if fh is not None:
                self._acquire(fh, job, timeout, on_wait)
            if con is None:
                con = self.connect(read_only=False, remote=remote)
            self._held[id(con)] = (fh, job, timeout)
            try:
                self._sweep_orphans(con)
                con.execute("BEGIN TRANSACTION")
                self._migrate(con)
                con.execute(
                    f"CALL ducklake_set_commit_message('{ALIAS}', ?, ?)",
                    [f"mixscope pid {os.getpid()}", job],
                )
                yield con
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            finally:
                self._held.pop(id(con), None)
                if own:
                    with contextlib.suppress(Exception):
                        self.close(con)
                self._writer_done()
        finally:
            if fh is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()

    def checkpoint(self, con: duckdb.DuckDBPyConnection) -> None:
        """Commit what a running `write()` job has done so far and start a new transaction.

        Readers see the partial result at once; a killed job keeps every checkpoint. A writer
        waiting for the lock gets its turn here.
        """
        held = self._held.get(id(con))
        if held is None:
            raise WorkspaceError("checkpoint() needs the connection of a running write() job.")
        con.execute("COMMIT")
        fh, job, timeout = held
        if fh is not None and self._waiters():
            fcntl.flock(fh, fcntl.LOCK_UN)
            deadline = time.monotonic() + 5.0
            while self._waiters() and time.monotonic() < deadline:
                time.sleep(0.02)
            self._acquire(fh, job, timeout, None)
        con.execute("BEGIN TRANSACTION")

    # ------------------------------------------------------------------ housekeeping
    def _marker(self) -> Path:
        return self.path / f".writer.{os.getpid()}"

    def _sweep_orphans(self, con: duckdb.DuckDBPyConnection) -> None:
        """Delete data files left by writers that died before committing (SQLite catalog:
        we hold the only write lock, so no live transaction owns an uncommitted file)."""
        dead = []
        for m in self.path.glob(".writer.*"):
            try:
                pid = int(m.name.split(".")[-1])
            except ValueError:
                continue
            if pid != os.getpid() and not alive(pid):
                dead.append(m)
        if dead and self.uses_sqlite:
            con.execute(f"CALL ducklake_delete_orphaned_files('{ALIAS}', cleanup_all => true)")
            for m in dead:
                m.unlink(missing_ok=True)
        self.sweep_temp()
        self._marker().write_text(_now())

    def _writer_done(self) -> None:
        self._marker().unlink(missing_ok=True)

    def compact(self) -> dict:
        """Merge small data files, expire old snapshots' files (keeps time travel to the
        snapshots that saved mixtures pin) and delete unreferenced files."""
        with self.write(job="compact") as con:
            con.execute(f"CALL ducklake_merge_adjacent_files('{ALIAS}')")
        return {"snapshot": self.snapshot_id()}

    def _backup_catalog(self, version: int) -> Path:
        """Copy the SQLite catalog (consistently, through SQLite's backup API) to backups/."""
        import sqlite3

        backups = self.path / "backups"
        backups.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        dst_path = backups / f"catalog-v{version}-{stamp}.sqlite"
        src = sqlite3.connect(self.path / CATALOG_NAME)
        dst = sqlite3.connect(dst_path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return dst_path

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            row = one(con, "SELECT value FROM meta WHERE key = 'schema_version'")
            current = int(row[0]) if row else 0
        except duckdb.CatalogException:
            current = 0
        if current > LATEST_VERSION:
            raise WorkspaceError(
                f"{self.path}: schema version {current} is newer than this mixscope "
                f"understands ({LATEST_VERSION}); upgrade mixscope."
            )
        if current == LATEST_VERSION:
            return
        if current > 0 and self.uses_sqlite:
            self._backup_catalog(current)
        for version, _desc, entry in MIGRATIONS:
            if version <= current:
                continue
            for sql in statements(entry):
                con.execute(sql)
            set_meta(con, "schema_version", str(version))


def _tell_waiting(holder: dict) -> None:
    """Default on_wait: one line on stderr and, inside a queued job, its progress stage (so
    the Jobs page shows what the job waits for and since when)."""
    import sys

    line = (
        f"waiting for {holder.get('job')} (pid {holder.get('pid', '?')}, writing since "
        f"{holder.get('since', '?')}) to commit"
    )
    print(line, file=sys.stderr, flush=True)
    job_dir = os.environ.get("MIXSCOPE_JOB_DIR")
    if job_dir:
        from analytics.jobs import _write_json

        with contextlib.suppress(OSError):
            _write_json(
                Path(job_dir) / "progress.json",
                {"stage": line, "done": 0, "total": 0, "updated": _now()},
            )


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
