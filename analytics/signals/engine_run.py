"""Signals on the shard engine (`mixscope signals run --engine local|ray`).

Same signals, versions and tables as analytics.signals.runner; the documents that miss at
least one requested signal are cut into shards (analytics.engine), each shard is scored on a
worker (a local process or a Ray task) and committed in its own transaction; global signals
(duplicate clusters) store their sketches per shard and run their global pass once, after
the last shard. A killed run resumes at the next unfinished shard.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.engine import DEFAULT_SHARD_SIZE, EngineReport, Progress, run_job
from analytics.signals.base import Signal, SignalError
from analytics.signals.registry import resolve_signals
from analytics.signals.store import count_rows, ensure_tables, insert_arrow, update_catalog


def _target(sig: Signal) -> str:
    return sig.sketch_table if sig.kind == "global" else sig.table


@dataclasses.dataclass
class SignalsTask:
    """The engine task: compute `signals` on each pending document."""

    signals: list[Signal]
    columns: tuple[str, ...] = ("url",)
    #: driver side, filled by `commit`: rows stored and compute seconds per signal
    computed: dict[str, int] = dataclasses.field(default_factory=dict)
    spent: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return "signals:" + ",".join(f"{s.name}@{s.version}" for s in self.signals)

    @property
    def label(self) -> str:
        return "signals " + ", ".join(s.name for s in self.signals)

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        ensure_tables(con, self.signals)

    def pending_sql(self) -> tuple[str, list]:
        conds, params = [], []
        for sig in self.signals:
            conds.append(f"d.doc_id NOT IN (SELECT doc_id FROM {_target(sig)} WHERE version = ?)")
            params.append(sig.version)
        return f"SELECT d.doc_id FROM documents d WHERE {' OR '.join(conds)}", params

    def compute(self, batch: pa.Table) -> list[tuple[pa.Table, float]]:
        data = batch.select(["doc_id", "text", "url"])
        out = []
        for sig in self.signals:
            t0 = time.perf_counter()
            res = sig.compute(data)
            if res.num_rows != data.num_rows:
                raise SignalError(
                    f"signal {sig.name!r} returned {res.num_rows} rows for {data.num_rows}"
                )
            out.append((res, time.perf_counter() - t0))
        return out

    def commit(self, con: duckdb.DuckDBPyConnection, result: list) -> int:
        """Store each signal's rows for the documents that still miss it (a document that
        misses only some of the signals keeps its other rows)."""
        n = 0
        for sig, (res, secs) in zip(self.signals, result, strict=True):
            self.spent[sig.name] = self.spent.get(sig.name, 0.0) + secs
            table = _target(sig)
            have = con.execute(
                f"SELECT doc_id FROM {table} WHERE version = ? AND doc_id IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [sig.version, res.column("doc_id").to_pylist()],
            ).fetchall()
            if have:
                import pyarrow.compute as pc

                done = pa.array([h[0] for h in have], pa.string())
                res = res.filter(pc.invert(pc.is_in(res.column("doc_id"), value_set=done)))
            stored = insert_arrow(con, table, sig.version, res)
            self.computed[sig.name] = self.computed.get(sig.name, 0) + stored
            n += stored
            update_catalog(con, sig)
        return n


def run_signals_engine(
    ws,
    names: Iterable[str | Signal] | str | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: Progress | None = None,
    on_line=None,
    on_commit=None,
) -> tuple[pd.DataFrame, EngineReport]:
    """Compute `names` (default: every registered signal) for unscored documents of `ws` on
    the engine; then the global pass of global signals. Returns (one row per signal: name,
    version, n_docs; the engine's report)."""
    if isinstance(names, str):
        names = [names]
    signals = resolve_signals(names, params)
    task = SignalsTask(signals)
    report = run_job(
        ws,
        task,
        engine=engine,
        workers=workers,
        ray_address=ray_address,
        shard_size=shard_size,
        progress=progress,
        on_line=on_line,
        on_commit=on_commit,
    )
    for sig in signals:
        if sig.kind != "global":
            continue
        cur = ws.cursor()
        n_sketch = count_rows(cur, sig.sketch_table, sig.version)
        if report.docs == 0 and count_rows(cur, sig.table, sig.version) == n_sketch:
            continue
        if progress:
            progress(f"finalize:{sig.name}", 0, n_sketch)
        with ws.write(job=f"signals {sig.name} (global pass)") as con:
            sig.finalize(con, sig.version)
            update_catalog(con, sig)
        if progress:
            progress(f"finalize:{sig.name}", n_sketch, n_sketch)
    if task.computed:  # the Signals page's throughput and projected cost
        from analytics.signals.external import record_run

        with ws.write(job="signals run (throughput)") as con:
            record_run(
                con, {s.name: s.version for s in signals}, task.computed, task.spent,
                n_jobs=report.workers,
            )  # fmt: skip
    cur = ws.cursor()
    rows = [
        {"name": s.name, "version": s.version, "n_docs": count_rows(cur, s.table, s.version)}
        for s in signals
    ]
    return pd.DataFrame(rows), report
