"""Signals that a workspace defines rather than the code: imported scores and classifier outputs.

A built-in signal is a class registered by name (`registry.SIGNALS`). An *external* signal is
described by a row of `signals_external(name, version, origin, columns, params, provenance,
created_at)` in the workspace: `origin` is "import" (scores computed elsewhere and imported by
`analytics.signals.importer`) or "classify" (a model's outputs, `analytics.signals.classifier`).
`sync_external(con)` turns each described signal into a Signal class registered under its name,
so every reader that goes through the registry (signals view, Explore conditions, filter
impact, mixture groupings, `list_signals`) treats it exactly like a computed one: its values
live in `signal_<name>(doc_id, version, <columns>)` and its versions in `signals_catalog`.

The registry is per process and follows the workspace last synced (`store.current_versions`
syncs first): external signals of another workspace are dropped from it.

`signals_throughput` records per-signal throughput of the last runs (documents, seconds of
compute, worker processes, device) for the cost projections of the Signals page.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, ClassVar

import duckdb
import pandas as pd

from analytics.db import table_exists
from analytics.signals.base import Column, Signal, SignalError, canonical_json
from analytics.signals.registry import SIGNALS, signal_names

EXTERNAL_DDL = """CREATE TABLE IF NOT EXISTS signals_external(
    name VARCHAR NOT NULL, version VARCHAR NOT NULL, origin VARCHAR NOT NULL,
    columns JSON NOT NULL, params JSON, provenance JSON, created_at TIMESTAMP)"""

THROUGHPUT_DDL = """CREATE TABLE IF NOT EXISTS signals_throughput(
    name VARCHAR NOT NULL, version VARCHAR, docs BIGINT, seconds DOUBLE, n_jobs INTEGER,
    device VARCHAR, measured_at TIMESTAMP)"""

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
ORIGINS = ("import", "classify")
_WHAT = {"import": "imported signal", "classify": "classifier signal"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class ExternalSignal(Signal):
    """Base of the classes made from `signals_external` rows (one class per signal name).

    `definition` holds the row: version, origin, columns, params, provenance. An instance
    takes no parameters: its parameters and version are those of the definition.
    """

    external: ClassVar[bool] = True
    origin: ClassVar[str] = ""
    definition: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        if params:
            raise SignalError(
                f"{_WHAT[self.origin]} {self.name!r} takes no parameters "
                f"(got {', '.join(sorted(params))})"
            )
        self.params = dict(self.definition.get("params") or {})

    @property
    def version(self) -> str:
        return str(self.definition["version"])

    def __reduce__(self):  # picklable for worker processes, although the class is dynamic
        run = {
            k: getattr(type(self), k) for k in ("run_device", "run_batch_size") if hasattr(self, k)
        }
        return (_rebuild, (self.name, self.origin, self.definition, run))

    def compute(self, batch):  # imported signals are not computed here
        raise SignalError(
            f"signal {self.name!r} was imported from {self.params.get('source', '?')}: import "
            "it again to refresh it (mixscope signals import ... --replace)"
        )


def make_class(name: str, origin: str, definition: dict[str, Any]) -> type[ExternalSignal]:
    """A Signal class for the external signal `name` described by `definition`."""
    if origin not in ORIGINS:
        raise SignalError(f"signal {name!r}: unknown origin {origin!r}")
    base: type[ExternalSignal] = ExternalSignal
    if origin == "classify":
        from analytics.signals.classifier import ClassifierSignal

        base = ClassifierSignal
    cols = tuple(
        Column(c["name"], c["type"], c.get("description", "")) for c in definition["columns"]
    )
    what = definition.get("provenance", {}).get("source") or definition.get("params", {}).get(
        "model", ""
    )
    desc = f"imported from {what}" if origin == "import" else f"classifier outputs of {what}"
    return type(
        f"External_{name}",
        (base,),
        {
            "name": name,
            "origin": origin,
            "definition": dict(definition),
            "columns": cols,
            "description": desc,
            "code_version": origin,
        },
    )


def _rebuild(
    name: str, origin: str, definition: dict[str, Any], run: dict[str, Any] | None = None
) -> ExternalSignal:
    cls = SIGNALS.get(name, None)
    if cls is None or getattr(cls, "definition", None) != definition:
        cls = make_class(name, origin, definition)
        SIGNALS.replace(name, cls)
    for key, value in (run or {}).items():
        setattr(cls, key, value)
    return cls()


def is_external(name: str) -> bool:
    return bool(getattr(SIGNALS.get(name, None), "external", False))


def builtin_names() -> list[str]:
    return [n for n in signal_names() if not is_external(n)]


def definitions(
    con: duckdb.DuckDBPyConnection, *, exists: bool | None = None
) -> dict[str, dict[str, Any]]:
    """name -> the latest definition row of every external signal of the workspace
    (`exists`: whether the caller already knows the table exists)."""
    if exists is None:
        exists = table_exists(con, "signals_external")
    if not exists:
        return {}
    rows = con.execute(
        "SELECT name, version, origin, CAST(columns AS VARCHAR), CAST(params AS VARCHAR), "
        "CAST(provenance AS VARCHAR), created_at FROM signals_external ORDER BY created_at"
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for name, version, origin, cols, params, prov, created in rows:
        out[name] = {
            "version": version,
            "origin": origin,
            "columns": json.loads(cols),
            "params": json.loads(params or "{}"),
            "provenance": json.loads(prov or "{}"),
            "created_at": str(created),
        }
    return out


def sync_external(con: duckdb.DuckDBPyConnection) -> None:
    """Make the registry hold exactly the external signals of `con`'s workspace."""
    register_definitions(definitions(con))


def register_definitions(defs: dict[str, dict[str, Any]]) -> None:
    """Make the registry hold exactly the external signals `defs` (from `definitions`)."""
    builtin = set(builtin_names())
    for name in [n for n in SIGNALS if is_external(n) and n not in defs]:
        SIGNALS.unregister(name)
    for name, d in defs.items():
        if name in builtin:
            continue  # a built-in signal added later with the same name wins
        cls = SIGNALS.get(name, None)
        if cls is not None and getattr(cls, "definition", None) == d:
            continue
        SIGNALS.replace(name, make_class(name, d["origin"], d))


def check_new_name(
    con: duckdb.DuckDBPyConnection, name: str, origin: str, *, replace: bool = False
) -> None:
    """Raise SignalError unless `name` can be given to a new external signal of `origin`."""
    if not NAME_RE.match(name or ""):
        raise SignalError(
            f"--name {name!r}: expected lower-case letters, digits and _ starting with a letter "
            "(at most 48 characters)"
        )
    if name in builtin_names():
        raise SignalError(
            f"--name {name!r} clashes with the built-in signal {name!r}; pick another name"
        )
    defs = definitions(con)
    if name in defs:
        if not replace:
            raise SignalError(
                f"--name {name!r} clashes with the existing {_WHAT[defs[name]['origin']]} "
                f"{name!r}; pick another name, or pass --replace to store a new version"
            )
        if defs[name]["origin"] != origin:
            raise SignalError(
                f"--replace: {name!r} is an {_WHAT[defs[name]['origin']]}, not an "
                f"{_WHAT[origin]}; pick another name"
            )


def check_columns(name: str, columns: list[Column]) -> None:
    """Raise SignalError when a column name is used by another signal (columns are unique)."""
    signal_names()
    taken = {c.name: n for n, cls in SIGNALS.items() if n != name for c in cls.columns}
    for col in columns:
        if col.name in taken:
            raise SignalError(
                f"column {col.name!r} of signal {name!r} clashes with a column of signal "
                f"{taken[col.name]!r}; pick another --name"
            )
        if col.name in ("doc_id", "version"):
            raise SignalError(f"column name {col.name!r} is reserved")


def define(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    origin: str,
    version: str,
    columns: list[Column],
    params: dict[str, Any],
    provenance: dict[str, Any],
) -> ExternalSignal:
    """Record the definition of an external signal (in `con`'s transaction), register its
    class and create its table; return an instance."""
    from analytics.signals.schema import CATALOG_DDL, signal_ddl

    con.execute(EXTERNAL_DDL)
    con.execute(CATALOG_DDL)
    definition = {
        "version": version,
        "origin": origin,
        "columns": [
            {"name": c.name, "type": c.type, "description": c.description} for c in columns
        ],
        "params": json.loads(canonical_json(params)),
        "provenance": json.loads(canonical_json(provenance)),
    }
    created = _now()
    con.execute(
        "INSERT INTO signals_external VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            name,
            version,
            origin,
            json.dumps(definition["columns"]),
            canonical_json(definition["params"]),
            canonical_json(definition["provenance"]),
            created,
        ],
    )
    definition["created_at"] = str(created)
    cls = make_class(name, origin, definition)
    SIGNALS.replace(name, cls)
    for sql in signal_ddl(cls):
        con.execute(sql)
    # a new version of an existing signal may bring new columns (older versions keep NULLs)
    have = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
            "AND NOT internal AND database_name = current_database()",
            [cls().table],
        ).fetchall()
    )
    for col in columns:
        if col.name not in have:
            con.execute(f"ALTER TABLE {cls().table} ADD COLUMN {col.name} {col.type}")
        elif str(have[col.name]).upper() != col.type:
            raise SignalError(
                f"column {col.name!r} of signal {name!r} was {have[col.name]} in an earlier "
                f"version and is {col.type} now; pick another --name"
            )
    return cls()


# ---------------------------------------------------------------------- throughput
def record_throughput(
    con: duckdb.DuckDBPyConnection,
    name: str,
    version: str,
    *,
    docs: int,
    seconds: float,
    n_jobs: int = 1,
    device: str = "cpu",
) -> None:
    """Store one run's throughput (documents and seconds of compute) of signal `name`."""
    if docs <= 0 or seconds <= 0:
        return
    con.execute(THROUGHPUT_DDL)
    con.execute(
        "INSERT INTO signals_throughput VALUES (?, ?, ?, ?, ?, ?, ?)",
        [name, version, int(docs), float(seconds), int(n_jobs), device, _now()],
    )


def in_own_transaction(con: duckdb.DuckDBPyConnection, fn, *args, **kwargs):
    """Run fn(cursor, ...) in a transaction of its own on a new cursor of `con` (as the signal
    runner commits), committed at once."""
    from analytics.signals.store import sub_cursor

    cur = sub_cursor(con)
    cur.begin()
    try:
        out = fn(cur, *args, **kwargs)
        cur.commit()
    except BaseException:
        cur.rollback()
        raise
    finally:
        cur.close()
    return out


def record_run(
    con: duckdb.DuckDBPyConnection,
    versions: dict[str, str],
    computed: dict[str, int],
    seconds: dict[str, float],
    *,
    n_jobs: int = 1,
) -> None:
    """`record_throughput` for every signal of a `signals run` that scored documents."""
    for name, docs in computed.items():
        in_own_transaction(con, record_throughput,
            name, versions.get(name, ""), docs=docs, seconds=seconds.get(name, 0.0),
            n_jobs=n_jobs,
        )  # fmt: skip


PROJECT_DOCS = 100_000_000


def throughput(con: duckdb.DuckDBPyConnection, *, n_docs: int | None = None) -> pd.DataFrame:
    """The last measured throughput of every signal and the projected cost.

    Columns: signal, version, device, measured_at, docs (documents of the measured run),
    seconds (its compute time), n_jobs, docs_per_s (= docs / seconds, the wall rate over
    n_jobs processes), docs_per_cpu_s (= docs / (seconds * n_jobs), per process),
    hours_workspace (= n_docs / docs_per_cpu_s / 3600: CPU-hours, or device-hours for a
    classifier on a GPU, to score the whole workspace), hours_100m (same for 100M documents).
    """
    cols = ["signal", "version", "device", "measured_at", "docs", "seconds", "n_jobs",
            "docs_per_s", "docs_per_cpu_s", "hours_workspace", "hours_100m"]  # fmt: skip
    if not table_exists(con, "signals_throughput"):
        return pd.DataFrame(columns=cols)
    if n_docs is None:
        n_docs = 0
        if table_exists(con, "documents"):
            n_docs = int(con.execute("SELECT count(*) FROM documents").fetchall()[0][0])
    df = con.execute(
        "SELECT name AS signal, version, device, measured_at, docs, seconds, n_jobs "
        "FROM signals_throughput QUALIFY row_number() OVER "
        "(PARTITION BY name ORDER BY measured_at DESC) = 1 ORDER BY name"
    ).df()
    df["docs_per_s"] = df["docs"] / df["seconds"]
    per_unit = df["docs"] / (df["seconds"] * df["n_jobs"].clip(lower=1))
    df["docs_per_cpu_s"] = per_unit
    df["hours_workspace"] = n_docs / per_unit / 3600.0
    df["hours_100m"] = PROJECT_DOCS / per_unit / 3600.0
    return df[cols]
