"""Fast reader views: per-snapshot plain DuckDB views over the lake's own Parquet files.

Reading a table through the DuckLake extension costs 2-4x a raw `read_parquet` of the same
files (catalog lookups, row-id and delete bookkeeping on every scan). For the snapshot a reader
pins, this module reads the DuckLake catalog (the SQLite catalog file, read-only) and builds,
in the reader's in-memory DuckDB, a database `lake_s<N>` that holds one object per lake table
and view:

* ``files``: a plain view over ``read_parquet([...the table's data files...])`` (plus the rows
  DuckLake inlined in the catalog, copied into memory), for tables whose visible rows are
  exactly their files: no delete file nor inlined delete, no column added, dropped, renamed
  or retyped since the oldest file was written, no partitioning, name mapping or encryption;
* ``copy``: a small table (at most `SMALL_ROWS` rows) copied into memory through the DuckLake
  path once and reused by later snapshots as long as the table does not change;
* ``lake``: everything else reads through DuckLake, pinned to the same snapshot
  (``SELECT * FROM ws.main.t AT (VERSION => N)``).

Lake views are recreated from their SQL so that they read the fast objects; the macro
``ducklake_current_snapshot`` answers N there. A cursor that `USE`s ``lake_s<N>`` therefore
sees exactly snapshot N, whatever commits later. `MIXSCOPE_LAKE_VIEWS=0` switches it off;
so does a PostgreSQL catalog (not yet planned here) or anything unexpected in the catalog
(the reader then keeps the DuckLake path).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

ENV = "MIXSCOPE_LAKE_VIEWS"
SMALL_ROWS = 50_000
#: per-snapshot databases kept (older ones are detached once unused for `KEEP_S` seconds)
KEEP = 4
KEEP_S = 600.0
META = "__ducklake_metadata_{alias}"


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _vis(s: int, prefix: str = "") -> str:
    return (
        f"{prefix}begin_snapshot <= {int(s)} AND ({prefix}end_snapshot IS NULL "
        f"OR {prefix}end_snapshot > {int(s)})"
    )


@dataclass
class TablePlan:
    name: str
    table_id: int
    kind: str  # files | copy | lake
    reason: str = ""
    files: list[str] = field(default_factory=list)
    rows: int = 0
    #: the last snapshot <= N that changed this table (its content at N == at `stamp`)
    stamp: int = 0
    #: the last snapshot <= N that changed its columns
    schema_stamp: int = 0
    #: inlined tables holding visible rows: (catalog table name, its column names)
    inlined: list[tuple[str, list[str]]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    #: DuckDB types of the columns (None: a type this module does not map)
    types: list[str] | None = None


@dataclass
class Plan:
    snapshot: int
    tables: list[TablePlan]
    views: list[tuple[str, str, str | None]]  # name, sql, column aliases


_TYPES = {
    "boolean": "BOOLEAN", "int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER",
    "int64": "BIGINT", "int128": "HUGEINT", "uint8": "UTINYINT", "uint16": "USMALLINT",
    "uint32": "UINTEGER", "uint64": "UBIGINT", "uint128": "UHUGEINT", "float32": "FLOAT",
    "float64": "DOUBLE", "varchar": "VARCHAR", "blob": "BLOB", "json": "JSON", "uuid": "UUID",
    "date": "DATE", "time": "TIME", "timetz": "TIMETZ", "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ", "timestamp_s": "TIMESTAMP_S", "timestamp_ms": "TIMESTAMP_MS",
    "timestamp_ns": "TIMESTAMP_NS", "interval": "INTERVAL",
}  # fmt: skip


#: types whose values read back from the SQLite catalog's inlined rows by a plain CAST (the
#: tests compare them with DuckLake's answers); inlined rows of other types are read through
#: DuckLake
INLINED_TYPES = {
    "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
    "UINTEGER", "FLOAT", "DOUBLE", "VARCHAR", "JSON", "DATE", "TIMESTAMP", "TIMESTAMPTZ",
}  # fmt: skip


def _duck_types(cols: list[tuple]) -> list[str] | None:
    """DuckDB types of the top-level columns from DuckLake's (column_id, name, type, parent)
    rows; None when one is not mapped here."""
    children: dict[int, list[tuple]] = {}
    for c in cols:
        if c[3] is not None:
            children.setdefault(c[3], []).append(c)

    def one(c) -> str | None:
        t = (c[2] or "").lower()
        if t in _TYPES:
            return _TYPES[t]
        if t.startswith("decimal("):
            return t.upper()
        kids = [one(k) for k in children.get(c[0], [])]
        if None in kids:
            return None
        if t == "list" and len(kids) == 1:
            return kids[0] + "[]"
        if t == "struct" and kids:
            names = [k[1] for k in children[c[0]]]
            return "STRUCT(" + ", ".join(f"{_q(n)} {k}" for n, k in zip(names, kids)) + ")"
        if t == "map" and len(kids) == 2:
            return f"MAP({kids[0]}, {kids[1]})"
        return None

    out = [one(c) for c in cols if c[3] is None]
    return None if None in out else out


def _join(*parts: tuple[str, bool]) -> str:
    """data_path + schema path + table path + file path, each relative to the one before."""
    out = ""
    for path, relative in parts:
        out = out + path if relative else path
    return out


class Catalog:
    """Read-only access to a DuckLake SQLite catalog file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        """A read transaction on a fresh connection (a long-lived one in this process does
        not see commits made through DuckDB's own SQLite library)."""
        con = sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None
        )
        try:
            con.execute("BEGIN")
            self._con = con
            yield
        finally:
            self._con = None
            con.close()

    def latest(self) -> int:
        with self._read():
            return int(self._all("SELECT max(snapshot_id) FROM ducklake_snapshot")[0][0])

    def _all(self, sql: str, params=()) -> list[tuple]:
        return self._con.execute(sql, params).fetchall()

    def plan(self, s: int, data_path: str) -> Plan | None:
        """What each table and view of schema `main` is at snapshot `s` (None: not plannable)."""
        with self._read():
            return self._plan(int(s), data_path)

    def _plan(self, s: int, data_path: str) -> Plan | None:
        if not self._all("SELECT 1 FROM ducklake_snapshot WHERE snapshot_id = ?", (s,)):
            return None
        schema = self._all(
            f"SELECT schema_id, path, path_is_relative FROM ducklake_schema "
            f"WHERE schema_name = 'main' AND {_vis(s)}"
        )
        if len(schema) != 1:
            return None
        schema_id, schema_path, schema_rel = schema[0]
        # lake macros would not resolve from the fast database: keep the DuckLake path
        with contextlib.suppress(sqlite3.OperationalError):
            if self._all(f"SELECT 1 FROM ducklake_macro WHERE {_vis(s)} LIMIT 1"):
                return None
        tables = self._all(
            f"SELECT table_id, table_name, path, path_is_relative, begin_snapshot "
            f"FROM ducklake_table WHERE schema_id = ? AND {_vis(s)} ORDER BY table_id",
            (schema_id,),
        )
        files: dict[int, list[tuple]] = {}
        for row in self._all(
            "SELECT table_id, data_file_id, path, path_is_relative, record_count, begin_snapshot,"
            " partition_id, encryption_key, mapping_id, partial_max, file_format "
            f"FROM ducklake_data_file WHERE {_vis(s)} ORDER BY table_id, file_order, data_file_id"
        ):
            files.setdefault(row[0], []).append(row[1:])
        deletes = dict(
            self._all(
                f"SELECT table_id, count(*) FROM ducklake_delete_file WHERE {_vis(s)} "
                "GROUP BY table_id"
            )
        )
        changed, schema_changed, cols = self._changes(s)
        inlined = self._inlined(s, changed)
        base = data_path.rstrip("/") + "/"
        plans = []
        for tid, name, tpath, trel, tbegin in tables:
            p = self._table_plan(
                s, tid, name, files.get(tid, []), cols.get(tid, []), changed,
                schema_changed.get(tid, 0), tbegin, inlined.get(tid, []), deletes.get(tid),
            )  # fmt: skip
            if p.kind == "files":
                p.files = [
                    _join((base, True), (schema_path, bool(schema_rel)), (tpath, bool(trel)),
                          (f[1], bool(f[2])))
                    for f in files.get(tid, [])
                ]  # fmt: skip
            plans.append(p)
        views = self._views(s, schema_id)
        return None if views is None else Plan(snapshot=s, tables=plans, views=views)

    def _changes(self, s: int) -> tuple[dict[int, int], dict[int, int], dict[int, list[tuple]]]:
        """Per table: the last change <= s of its files and deletes, of its columns, and its
        columns at s (column_id, name, type, parent)."""
        changed: dict[int, int] = {}
        schema_changed: dict[int, int] = {}
        for tbl in ("ducklake_data_file", "ducklake_delete_file"):
            for tid, b, e in self._all(
                f"SELECT table_id, max(begin_snapshot), max(CASE WHEN end_snapshot <= {s} "
                f"THEN end_snapshot END) FROM {tbl} WHERE begin_snapshot <= {s} GROUP BY 1"
            ):
                _bump(changed, tid, b, s)
                _bump(changed, tid, e, s)
        cols: dict[int, list[tuple]] = {}
        for tid, b, e, cid, name, ctype, parent in self._all(
            "SELECT table_id, begin_snapshot, end_snapshot, column_id, column_name, "
            f"column_type, parent_column FROM ducklake_column WHERE begin_snapshot <= {s} "
            "ORDER BY table_id, column_order"
        ):
            _bump(schema_changed, tid, b, s)
            _bump(schema_changed, tid, e, s)
            if e is None or e > s:
                cols.setdefault(tid, []).append((cid, name, ctype, parent))
        return changed, schema_changed, cols

    def _inlined(self, s: int, changed: dict[int, int]) -> dict[int, list[tuple[str, int]]]:
        """Per table, its inlined-data tables holding rows visible at s (name, rows); their
        changes bump `changed`."""
        inlined: dict[int, list[tuple[str, int]]] = {}
        for tid, name, _v in self._all(
            "SELECT table_id, table_name, schema_version FROM ducklake_inlined_data_tables"
        ):
            n, b, e = self._all(
                f"SELECT count(*) FILTER (WHERE {_vis(s)}), max(begin_snapshot), "
                f"max(CASE WHEN end_snapshot <= {s} THEN end_snapshot END) "
                f"FROM {_q(name)} WHERE begin_snapshot <= {s}"
            )[0]
            _bump(changed, tid, b, s)
            _bump(changed, tid, e, s)
            if n:
                inlined.setdefault(tid, []).append((name, n))
        return inlined

    def _table_plan(
        self,
        s: int,
        tid: int,
        name: str,
        tfiles: list[tuple],
        tcols: list[tuple],
        changed: dict[int, int],
        sch: int,
        tbegin: int,
        inlined: list[tuple[str, int]],
        n_deletes: int | None,
    ) -> TablePlan:
        """How table `tid` is read at s: its files, a copy, or through DuckLake (why)."""
        _bump(changed, tid, tbegin, s)
        _bump(changed, tid, sch, s)
        n_inline_del, b_del = 0, None
        with contextlib.suppress(sqlite3.OperationalError):
            ids = {f[0] for f in tfiles}
            rows = self._all(
                f"SELECT file_id, begin_snapshot FROM ducklake_inlined_delete_{int(tid)} "
                f"WHERE begin_snapshot <= {s}"
            )
            n_inline_del = sum(1 for fid, _ in rows if fid in ids)
            b_del = max((b for _, b in rows), default=None)
        _bump(changed, tid, b_del, s)
        p = TablePlan(
            name=name,
            table_id=tid,
            kind="files",
            stamp=changed.get(tid, 0),
            schema_stamp=sch,
            columns=[c[1] for c in tcols if c[3] is None],
            types=_duck_types(tcols),
            rows=sum(f[3] or 0 for f in tfiles) + sum(n for _, n in inlined),
        )
        why = []
        if n_deletes or n_inline_del:
            why.append("rows deleted from its files")
        if tfiles and sch > min(f[4] for f in tfiles):
            why.append("columns changed since its files were written")
        if any(f[5] is not None or f[6] or f[7] is not None for f in tfiles):
            why.append("partitioned, encrypted or mapped files")
        if any((f[9] or "parquet") != "parquet" or f[8] is not None for f in tfiles):
            why.append("partial or non-Parquet files")
        for iname, _n in inlined:
            icols = [r[1] for r in self._all(f"PRAGMA table_info({_q(iname)})")][3:]
            if icols != p.columns:
                why.append("inlined rows of an older schema")
            p.inlined.append((iname, icols))
        if p.inlined and (p.types is None or not set(p.types) <= INLINED_TYPES):
            why.append("inlined rows with nested or unmapped columns")
        if why:
            p.kind = "copy" if p.rows <= SMALL_ROWS else "lake"
            p.reason = "; ".join(why)
        return p

    def _views(self, s: int, schema_id: int) -> list[tuple[str, str, str | None]] | None:
        """The DuckDB-dialect views of the schema at s (None: one of another dialect)."""
        views = [
            (name, sql, aliases)
            for name, sql, aliases, dialect in self._all(
                "SELECT view_name, sql, column_aliases, dialect FROM ducklake_view "
                f"WHERE schema_id = ? AND {_vis(s)} ORDER BY view_id",
                (schema_id,),
            )
            if (dialect or "duckdb") == "duckdb"
        ]
        if len(views) != len(
            self._all(
                f"SELECT 1 FROM ducklake_view WHERE schema_id = ? AND {_vis(s)}", (schema_id,)
            )
        ):
            return None
        return views


def _bump(d: dict, tid: int, v, s: int) -> None:
    """Raise `d[tid]` to snapshot `v` if `v` is at or before `s`."""
    if v is not None and v <= s:
        d[tid] = max(d.get(tid, 0), int(v))


class LakeViews:
    """The fast databases of one reader connection (thread-safe; one per `Snapshot`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog_path: Path, data_path: str,
                 *, alias: str = "ws", at: int | None = None):  # fmt: skip
        self._con = con
        self.alias = alias
        self.data_path = data_path
        self.at = at
        self.catalog = Catalog(catalog_path)
        self._lock = threading.Lock()
        self._built: dict[int, tuple[str, float]] = {}  # snapshot -> (database, last used)
        self._failed: set[int] = set()
        self._cache: dict[tuple, str] = {}  # (kind, table_id, stamp) -> lake_cache table
        self._types: dict[tuple, list[tuple[str, str, str]]] = {}
        self.plans: dict[int, Plan] = {}
        self._cache_db = False

    # ------------------------------------------------------------------ public
    def database(self) -> str | None:
        """The fast database of the snapshot this reader should see now (None: DuckLake)."""
        try:
            s = self.at if self.at is not None else self.catalog.latest()
        except (sqlite3.Error, TypeError):  # catalog unreadable now: DuckLake will say why
            return None
        with self._lock:
            if s in self._built:
                db, _ = self._built[s]
                self._built[s] = (db, time.monotonic())
                return db
            if s in self._failed:
                return None
            try:
                db = self._build(s)
            except (duckdb.Error, sqlite3.Error, OSError, ValueError):
                self._failed.add(s)
                return None
            if db is None:
                self._failed.add(s)
                return None
            self._built[s] = (db, time.monotonic())
            self._evict()
            return db

    def plan(self, s: int) -> Plan | None:
        return self.plans.get(s)

    # ------------------------------------------------------------------ building
    def _cur(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def _build(self, s: int) -> str | None:
        plan = self.catalog.plan(s, self.data_path)
        if plan is None:
            return None
        cur = self._cur()
        try:
            if not self._cache_db:
                cur.execute("ATTACH IF NOT EXISTS ':memory:' AS lake_cache")
                self._cache_db = True
            db = f"lake_s{s}"
            cur.execute(f"DETACH DATABASE IF EXISTS {db}")
            cur.execute(f"ATTACH ':memory:' AS {db}")
            try:
                # one transaction: DuckLake loads its catalog once for every copy (a single
                # transaction may write one database only: the copies go to lake_cache)
                cur.execute("BEGIN TRANSACTION")
                bodies = [(t.name, self._table(cur, s, t)) for t in plan.tables]
                cur.execute("COMMIT")
                for name, body in bodies:
                    cur.execute(f"CREATE VIEW {db}.main.{_q(name)} AS {body}")
                cur.execute(
                    f"CREATE MACRO {db}.main.ducklake_current_snapshot(catalog) AS TABLE "
                    f"SELECT CAST({s} AS BIGINT) AS id"
                )
                for name, sql, aliases in plan.views:
                    self._view(cur, db, s, name, sql, aliases)
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                with contextlib.suppress(duckdb.Error):
                    cur.execute(f"DETACH DATABASE IF EXISTS {db}")
                raise
            self.plans[s] = plan
            return db
        finally:
            cur.close()

    def _lake_ref(self, name: str, s: int) -> str:
        return f"{self.alias}.main.{_q(name)} AT (VERSION => {int(s)})"

    def _table(self, cur, s: int, t: TablePlan) -> str:
        """The body of the view that stands for table `t` at snapshot `s` (copies made)."""
        if t.kind == "lake":
            return f"SELECT * FROM {self._lake_ref(t.name, s)}"
        if t.kind == "copy":  # through DuckLake, once per version of the table
            return self._copied(cur, ("copy", t.table_id, t.stamp),
                                f"SELECT * FROM {self._lake_ref(t.name, s)}")  # fmt: skip
        types = self._column_types(cur, s, t)
        parts = []
        if t.files:
            sel = ", ".join(
                (f"CAST({_q(c)} AS {want}) AS {_q(c)}" if want != have else _q(c))
                for c, want, have in types
            )
            files = "[" + ", ".join(_lit(f) for f in t.files) + "]"
            parts.append(f"SELECT {sel} FROM read_parquet({files}, hive_partitioning = false)")
        if t.inlined:  # rows DuckLake keeps in the catalog: copied into memory
            meta = META.format(alias=self.alias)
            casts = ", ".join(f"CAST({_q(c)} AS {want}) AS {_q(c)}" for c, want, _ in types)
            inl = " UNION ALL ".join(
                f"SELECT {casts} FROM {meta}.main.{_q(iname)} WHERE {_vis(s)}"
                for iname, _cols in t.inlined
            )
            parts.append(self._copied(cur, ("inlined", t.table_id, t.stamp), inl))
        if not parts:
            sel = ", ".join(f"CAST(NULL AS {want}) AS {_q(c)}" for c, want, _ in types)
            return f"SELECT {sel} WHERE false"
        body = " UNION ALL ".join(parts)
        if t.files and t.rows <= SMALL_ROWS:  # small: read its files once
            return self._copied(cur, ("copy", t.table_id, t.stamp), body)
        return body

    def _copied(self, cur, key: tuple, body: str) -> str:
        """`body` copied into a lake_cache table (once per key); a query reading it."""
        if key not in self._cache:
            name = f"lake_cache.main.{key[0][0]}{key[1]}_{key[2]}"
            cur.execute(f"CREATE OR REPLACE TABLE {name} AS {body}")
            self._cache[key] = name
        return f"SELECT * FROM {self._cache[key]}"

    def _column_types(self, cur, s: int, t: TablePlan) -> list[tuple[str, str, str]]:
        """(column, its DuckDB type, its type in the Parquet files), cached per schema version
        of the table."""
        key = (t.table_id, t.schema_stamp, t.files[0] if t.files else None)
        if key not in self._types:
            if t.types is not None:
                want = list(zip(t.columns, t.types, strict=True))
            else:
                want = [
                    (r[0], r[1])
                    for r in cur.execute(
                        f"DESCRIBE SELECT * FROM {self._lake_ref(t.name, s)}"
                    ).fetchall()
                ]
            have = dict(want)
            if t.files:
                have = {
                    r[0]: r[1]
                    for r in cur.execute(
                        f"DESCRIBE SELECT * FROM read_parquet({_lit(t.files[0])}, "
                        "hive_partitioning = false)"
                    ).fetchall()
                }
            if [c for c, _ in want] != t.columns or any(c not in have for c, _ in want):
                raise ValueError(f"{t.name}: the files' columns differ from the table's")
            self._types[key] = [(c, w, have[c]) for c, w in want]
        return self._types[key]

    def _view(self, cur, db: str, s: int, name: str, sql: str, aliases: str | None) -> None:
        cols = ""
        if aliases:
            cols = "(" + ", ".join(_q(a) for a in aliases.split(",")) + ")"
        # recreated from its SQL, it reads the fast objects of `db`; where that cannot bind
        # (e.g. it reads files that this connection may not open), the lake's own view
        for stmt in (
            f"CREATE VIEW {db}.main.{_q(name)}{cols} AS {sql}",
            f"CREATE VIEW {db}.main.{_q(name)} AS SELECT * FROM {self._lake_ref(name, s)}",
        ):
            try:
                cur.execute(stmt)
                return
            except duckdb.Error:
                continue
        # neither binds here (it fails on the DuckLake path too): leave it out

    def _evict(self) -> None:
        """Detach per-snapshot databases beyond the newest `KEEP` once unused for KEEP_S
        seconds, and cached tables no kept snapshot uses."""
        now = time.monotonic()
        newest = sorted(self._built, reverse=True)[:KEEP]
        cur = self._cur()
        try:
            for s, (db, used) in list(self._built.items()):
                if s in newest or now - used < KEEP_S:
                    continue
                with contextlib.suppress(duckdb.Error):
                    cur.execute(f"DETACH DATABASE IF EXISTS {db}")
                del self._built[s]
                self.plans.pop(s, None)
            live = set()
            for s in self._built:
                for t in self.plans[s].tables:
                    live.add(("copy", t.table_id, t.stamp))
                    live.add(("inlined", t.table_id, t.stamp))
            for key in [k for k in self._cache if k not in live]:
                with contextlib.suppress(duckdb.Error):
                    cur.execute(f"DROP TABLE IF EXISTS {self._cache.pop(key)}")
        finally:
            cur.close()


def _lost(exc: duckdb.Error) -> bool:
    """Whether `exc` says the cursor's fast database or the files under it are gone (its
    snapshot was evicted, or the lake's files of that snapshot were removed)."""
    text = str(exc)
    if isinstance(exc, (duckdb.BinderException, duckdb.CatalogException)):
        return "lake_s" in text and "does not exist" in text
    if isinstance(exc, duckdb.IOException):
        return any(s in text for s in ("No such file", "No files found", "Cannot open file"))
    return False


class ReaderCursor:
    """A reader cursor on a fast database `lake_s<N>` that survives losing it.

    A cursor idle while newer snapshots were built may find its database detached (beyond
    `KEEP`, unused for `KEEP_S`) or its files removed: `execute` and `sql` then re-open it
    on the snapshot the reader sees now (the newest, or the pinned one) and run the
    statement once more. Everything else is the wrapped DuckDB cursor's."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, views: LakeViews, fallback: str):
        self._cur = cur
        self._views = views
        self._fallback = fallback  # the DuckLake catalog, when no fast database can be built

    def _retry(self, method: str, *args, **kwargs):
        try:
            return getattr(self._cur, method)(*args, **kwargs)
        except duckdb.Error as exc:
            if not _lost(exc):
                raise
            self._cur.execute(f"USE {self._views.database() or self._fallback}")
            return getattr(self._cur, method)(*args, **kwargs)

    def execute(self, *args, **kwargs) -> ReaderCursor:
        self._retry("execute", *args, **kwargs)
        return self

    def sql(self, *args, **kwargs) -> duckdb.DuckDBPyRelation:
        return self._retry("sql", *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._cur, name)

    def __enter__(self) -> ReaderCursor:
        return self

    def __exit__(self, *exc) -> None:
        self._cur.close()
