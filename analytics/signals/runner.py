"""Compute signals for every document not yet scored at the signal's current version.

`run_signals` streams `doc_id, text, url` of the documents that miss at least one requested
signal as Arrow record batches from DuckDB (never the whole corpus in memory), computes each
signal on the rows that miss it, and appends the results in one transaction per batch, so an
interruption keeps every finished batch and a rerun continues where it stopped. Global
signals (duplicate clusters) store per-document sketches per batch, then run their global
pass once the scan is complete.

The connection is used through its own cursors (one reading, one writing), so a caller's
open transaction is not disturbed. Note for workspaces whose writer publishes a private copy
only on success: to keep progress across interruptions, call `run_signals` repeatedly with
`max_docs` inside separate write sessions; each call picks up where the previous one ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.db import table_exists
from analytics.engine import DEFAULT_SHARD_SIZE
from analytics.params import default_of, option
from analytics.signals.base import Signal, SignalError
from analytics.signals.registry import resolve_signals, signal_names
from analytics.signals.store import (
    catalog,
    count_rows,
    ensure_tables,
    insert_arrow,
    query_reader,
    sub_cursor,
    update_catalog,
)

#: progress(stage, done, total): stage is "scan" (documents) or "finalize:<signal>"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SignalRunOptions:
    """The options of a signals run (`mixscope signals run`), written once."""

    batch_size: int = option(2048, "Documents per Arrow batch and per committed transaction.")
    jobs: int = option(1, "Worker processes per batch.")
    checkpoint_every: int = option(
        10_000, "Publish finished work every this many documents (resume point)."
    )
    shard_size: int = option(DEFAULT_SHARD_SIZE, "Engine: documents per shard (one commit).")


def _pending_sql(signals: list[Signal]) -> tuple[str, list[str]]:
    """SELECT of documents missing at least one signal, with a need_<i> flag per signal."""
    joins, needs, params = [], [], []
    for i, sig in enumerate(signals):
        table = sig.sketch_table if sig.kind == "global" else sig.table
        joins.append(
            f"LEFT JOIN (SELECT doc_id FROM {table} WHERE version = ?) h{i} "
            f"ON h{i}.doc_id = d.doc_id"
        )
        needs.append(f"h{i}.doc_id IS NULL")
        params.append(sig.version)
    flags = ", ".join(f"{n} AS need_{i}" for i, n in enumerate(needs))
    sql = (
        f"SELECT d.doc_id, x.text, d.url, {flags} FROM documents d "
        f"JOIN document_text x ON x.doc_id = d.doc_id {' '.join(joins)} "
        f"WHERE {' OR '.join(needs)}"
    )
    return sql, params


def _compute_all(signals: list[Signal], data: pa.Table, needs: list[pa.ChunkedArray]) -> list:
    """Compute every signal on the rows that need it: [(table or None, seconds), ...]."""
    out = []
    for sig, need in zip(signals, needs, strict=True):
        sub = data if pc.all(need).as_py() else data.filter(need)
        if sub.num_rows == 0:
            out.append((None, 0.0))
            continue
        t0 = time.perf_counter()
        res = sig.compute(sub)
        if res.num_rows != sub.num_rows:
            raise SignalError(
                f"signal {sig.name!r} returned {res.num_rows} rows for {sub.num_rows}"
            )
        out.append((res, time.perf_counter() - t0))
    return out


def _compute_parallel(pool, n_jobs: int, signals: list[Signal], tbl: pa.Table) -> list:
    """Split the batch into n_jobs contiguous slices, compute them in worker processes and
    concatenate the results in order."""
    size = -(-tbl.num_rows // n_jobs)
    futures = []
    for lo in range(0, tbl.num_rows, size):
        part = tbl.slice(lo, size)
        needs = [part.column(f"need_{i}") for i in range(len(signals))]
        futures.append(
            pool.submit(_compute_all, signals, part.select(["doc_id", "text", "url"]), needs)
        )
    results = [f.result() for f in futures]
    merged = []
    for i in range(len(signals)):
        tables = [r[i][0] for r in results if r[i][0] is not None]
        secs = max(r[i][1] for r in results)
        merged.append((pa.concat_tables(tables) if tables else None, secs))
    return merged


@contextmanager
def _transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT on ``cur``; ROLLBACK (and re-raise) on any exception."""
    cur.begin()
    try:
        yield
        cur.commit()
    except BaseException:
        cur.rollback()
        raise


def _start_pool(n_jobs: int) -> Any:
    """A spawn process pool with its ``n_jobs`` workers already started."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from analytics.engine import _noop, _plain_main

    pool = ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn"))
    with _plain_main():  # start the workers now, without re-running the caller's __main__
        for _ in range(n_jobs):
            pool.submit(_noop)
    return pool


def _pending_batches(
    reader: duckdb.DuckDBPyConnection,
    sql: str,
    sql_params: list[str],
    batch_size: int,
    max_docs: int | None,
) -> Iterator[pa.Table]:
    """The pending documents as Arrow tables of ``batch_size`` rows, at most ``max_docs``."""
    batches = query_reader(reader, sql, sql_params, batch_size)
    done = 0
    for rb in batches:
        if max_docs is not None and done >= max_docs:
            break
        tbl = pa.Table.from_batches([rb])
        if max_docs is not None and done + tbl.num_rows > max_docs:
            tbl = tbl.slice(0, max_docs - done)
        done += tbl.num_rows
        yield tbl
    del batches


def _write_batch(
    writer: duckdb.DuckDBPyConnection,
    signals: list[Signal],
    results: list[tuple[Any, float]],
    computed: dict[str, int],
    seconds: dict[str, float],
) -> None:
    """Insert one batch's values of every signal in one transaction (sketches for global
    signals), adding to the ``computed`` and ``seconds`` tallies."""
    with _transaction(writer):
        for sig, (out, secs) in zip(signals, results, strict=True):
            if out is None:
                continue
            seconds[sig.name] += secs
            table = sig.sketch_table if sig.kind == "global" else sig.table
            computed[sig.name] += insert_arrow(writer, table, sig.version, out)
            update_catalog(writer, sig)


def _finalize_globals(
    writer: duckdb.DuckDBPyConnection,
    signals: list[Signal],
    computed: dict[str, int],
    seconds: dict[str, float],
    progress: Progress | None,
) -> None:
    """The global pass of each global signal whose sketches changed since its last one."""
    for sig in signals:
        if sig.kind != "global":
            continue
        n_sketch = count_rows(writer, sig.sketch_table, sig.version)
        if computed[sig.name] == 0 and count_rows(writer, sig.table, sig.version) == n_sketch:
            continue
        if progress:
            progress(f"finalize:{sig.name}", 0, n_sketch)
        t0 = time.perf_counter()
        with _transaction(writer):
            sig.finalize(writer, sig.version)
            update_catalog(writer, sig)
        seconds[sig.name] += time.perf_counter() - t0
        if progress:
            progress(f"finalize:{sig.name}", n_sketch, n_sketch)


def _summary(
    writer: duckdb.DuckDBPyConnection,
    signals: list[Signal],
    computed: dict[str, int],
    seconds: dict[str, float],
) -> pd.DataFrame:
    """One row per signal: name, version, computed, n_docs, seconds."""
    rows = [
        {
            "name": s.name,
            "version": s.version,
            "computed": computed[s.name],
            "n_docs": count_rows(writer, s.table, s.version),
            "seconds": round(seconds[s.name], 3),
        }
        for s in signals
    ]
    return pd.DataFrame(rows)


def run_signals(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str | Signal] | str | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = default_of(SignalRunOptions, "batch_size"),
    max_docs: int | None = None,
    n_jobs: int = default_of(SignalRunOptions, "jobs"),
    progress: Progress | None = None,
    finalize: bool = True,
) -> pd.DataFrame:
    """Compute `names` (default: every registered signal) for unscored documents.

    Args:
        con: a read-write DuckDB connection holding a `documents` table.
        names: signal names and/or Signal instances; an unknown name raises SignalError
            (a ValueError) listing the valid names, before anything is written.
        params: per-signal parameters, e.g. {"near_dup": {"threshold": 0.7}} (a new version).
        batch_size: documents per Arrow batch and per committed transaction (default 2048).
        max_docs: stop scanning after about this many documents (default: all); global
            passes still run on what has been sketched so far.
        n_jobs: worker processes computing each batch in parallel (default 1: in process).
        progress: optional callback progress(stage, done, total).
        finalize: run the global pass of global signals (duplicate clusters) after the scan
            (default True). A caller that scans in chunks (`max_docs`) passes False for all
            but the last call, so the global pass runs once instead of once per chunk.

    Returns:
        one row per signal: name, version, computed (documents newly scored), n_docs
        (documents with a row at this version), seconds.
    """
    if isinstance(names, str):
        names = [names]
    signals = resolve_signals(names, params)
    if batch_size < 1:
        raise SignalError("batch_size must be >= 1")
    if n_jobs < 1:
        raise SignalError("n_jobs must be >= 1")
    if not table_exists(con, "documents"):
        raise SignalError("the workspace has no documents table: ingest documents first")
    writer = sub_cursor(con)
    reader = sub_cursor(con)
    with _transaction(writer):
        ensure_tables(writer, signals)

    sql, sql_params = _pending_sql(signals)
    total = int(reader.execute(f"SELECT count(*) FROM ({sql})", sql_params).fetchall()[0][0])
    if max_docs is not None:
        total = min(total, max_docs)
    computed = {s.name: 0 for s in signals}
    seconds = {s.name: 0.0 for s in signals}
    done = 0
    if progress:
        progress("scan", 0, total)
    pool = _start_pool(n_jobs) if total and n_jobs > 1 else None
    try:
        if total:
            for tbl in _pending_batches(reader, sql, sql_params, batch_size, max_docs):
                if pool is not None and tbl.num_rows >= 2 * n_jobs:
                    results = _compute_parallel(pool, n_jobs, signals, tbl)
                else:
                    needs = [tbl.column(f"need_{i}") for i in range(len(signals))]
                    results = _compute_all(signals, tbl.select(["doc_id", "text", "url"]), needs)
                _write_batch(writer, signals, results, computed, seconds)
                done += tbl.num_rows
                if progress:
                    progress("scan", done, total)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    reader.close()
    if finalize:
        _finalize_globals(writer, signals, computed, seconds, progress)
    summary = _summary(writer, signals, computed, seconds)
    writer.close()
    return summary


def count_pending(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str | Signal] | str | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> int:
    """Documents that miss at least one of `names` (default: all) at its current version.

    Unknown names raise SignalError; a workspace without signal tables counts every document.
    """
    if isinstance(names, str):
        names = [names]
    signals = resolve_signals(names, params)
    if not table_exists(con, "documents"):
        return 0
    if not all(
        table_exists(con, s.sketch_table if s.kind == "global" else s.table) for s in signals
    ):
        return int(con.execute("SELECT count(*) FROM documents").fetchall()[0][0])
    sql, sql_params = _pending_sql(signals)
    return int(con.execute(f"SELECT count(*) FROM ({sql})", sql_params).fetchall()[0][0])


def list_signals(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every registered signal and every computed version, with coverage.

    Columns: name, version, is_default (the version of the default parameters), params
    (JSON), description, computed_at, n_docs, coverage (n_docs / documents). A registered
    signal that was never computed appears once, at its default version, with n_docs 0.
    """
    from analytics.signals.registry import get_signal

    n_total = 0
    if table_exists(con, "documents"):
        n_total = int(con.execute("SELECT count(*) FROM documents").fetchall()[0][0])
    cat = catalog(con)
    rows = []
    for name in signal_names():
        default = get_signal(name)
        sub = cat[cat["name"] == name]
        seen = set()
        for rec in sub.itertuples(index=False):
            rows.append(
                {
                    "name": name,
                    "version": rec.version,
                    "is_default": rec.version == default.version,
                    "params": rec.params,
                    "description": default.description,
                    "computed_at": rec.computed_at,
                    "n_docs": int(rec.n_docs),
                }
            )
            seen.add(rec.version)
        if default.version not in seen:
            from analytics.signals.base import canonical_json

            rows.append(
                {
                    "name": name,
                    "version": default.version,
                    "is_default": True,
                    "params": canonical_json(default.params),
                    "description": default.description,
                    "computed_at": None,
                    "n_docs": 0,
                }
            )
    out = pd.DataFrame(rows)
    out["coverage"] = out["n_docs"] / n_total if n_total else 0.0
    return out
