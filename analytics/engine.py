"""One engine for per-document jobs: shard by shard, on this machine or on a Ray cluster.

A job is a :class:`ShardTask`: it names the documents it still has to do (`pending_sql`, an
anti-join against its own results), computes a result table from the text of a shard of
documents (`compute`, run in a worker process) and commits one shard's result (`commit`, run
by the driver inside the shard's own short write transaction). The engine:

1. lists the pending documents in the order their text is stored (file, row, id) and cuts
   them into contiguous shards of `shard_size` documents;
2. runs the shards on workers that read their text through analytics.text (from wherever
   the corpus lives: the workspace's `texts` copy or the original files, local or remote);
3. commits finished shards in short transactions (every shard finished since the last
   commit goes into the next one, so commits keep up with many workers), recording each in
   `engine_shards` (job key, shard, documents, seconds, engine), so a killed job resumes at
   the next unfinished shard: finished shards are not pending any more;
4. reports shards and documents done, documents/s and an ETA to a progress callback (the
   CLI's bars and the job's progress.json on the Jobs page).

Engines:

* ``local`` (default): a process pool of `workers` processes (default: every core).
* ``ray``: Ray tasks on an existing cluster (``ray_address="auto"`` or ``"HOST:PORT"``), or a
  local Ray instance when no address is given. Workers open the workspace by its path, so on
  a multi-machine cluster the workspace (a PostgreSQL catalog, or a shared filesystem) and the
  corpus (object store or shared filesystem) must be reachable from every node.

Both engines run the same `compute` on the same shards, so their results are identical.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from analytics.errors import MixscopeError

ENGINES = ("local", "ray")
DEFAULT_SHARD_SIZE = 2_000

#: progress(stage, done, total)
Progress = Callable[[str, int, int], None]

ENGINE_SHARDS_DDL = """CREATE TABLE IF NOT EXISTS engine_shards(
    job_key VARCHAR NOT NULL, shard INTEGER, first_doc VARCHAR, last_doc VARCHAR,
    n_docs BIGINT, seconds DOUBLE, engine VARCHAR, worker VARCHAR, committed_at TIMESTAMP)"""


class EngineError(MixscopeError):
    """A job cannot run on the engine asked for (unknown engine, Ray not reachable...)."""


class ShardTask(Protocol):
    """What the engine needs of a per-document job (a picklable object)."""

    #: identifies the job's results (e.g. "tokenize:smollm2"); done shards are kept under it
    key: str
    #: what the progress lines call it
    label: str
    #: columns of `documents` that `compute` needs besides doc_id and text (e.g. ("url",))
    columns: tuple[str, ...]

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Driver, inside a write transaction, before any shard: create result tables."""

    def pending_sql(self) -> tuple[str, list]:
        """SELECT doc_id FROM documents d WHERE <no result yet> (with its parameters)."""

    def compute(self, batch: pa.Table) -> pa.Table:
        """Worker: the result rows of a shard; `batch` holds doc_id, text and `columns`."""

    def commit(self, con: duckdb.DuckDBPyConnection, result: pa.Table) -> int:
        """Driver, inside the shard's write transaction: store `result`; rows written."""


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int
    doc_ids: tuple[str, ...]


@dataclasses.dataclass
class EngineReport:
    """What one run did: shards/documents done by this run, and how long it took."""

    job_key: str
    engine: str
    workers: int
    shards: int
    docs: int
    skipped_docs: int  # documents already done before this run (resume)
    seconds: float
    shard_seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------- planning
def plan_shards(con: duckdb.DuckDBPyConnection, task: ShardTask, shard_size: int) -> list[Shard]:
    """The pending documents of `task`, in storage order, cut into contiguous shards."""
    if shard_size < 1:
        raise EngineError(f"--shard-size {shard_size}: expected a positive number of documents")
    sql, params = task.pending_sql()
    rows = con.execute(
        f"SELECT p.doc_id FROM ({sql}) p JOIN documents d USING (doc_id) "
        "ORDER BY d.file_id NULLS FIRST, d.text_row NULLS FIRST, p.doc_id",
        params,
    ).fetchall()
    ids = [r[0] for r in rows]
    return [
        Shard(i, tuple(ids[lo : lo + shard_size]))
        for i, lo in enumerate(range(0, len(ids), shard_size))
    ]


# --------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _die_with_parent(parent: int) -> None:
    """A pool worker exits when its driver dies (even by SIGKILL): Linux's parent-death
    signal, and a watchdog thread elsewhere (the worker is reparented when the driver dies)."""
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mixscope-parent-watch").start()


def _worker_init(
    ws_path: str, task: ShardTask, parent: int | None = None, at: int | None = None
) -> None:
    if parent is not None:
        _die_with_parent(parent)
    # one process per core: the tokenizers' own thread pool would only oversubscribe
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    _WORKER.clear()
    _WORKER.update(ws_path=ws_path, task=task, at=at)
    _open_early(ws_path)


def _open_early(ws_path: str) -> None:
    """Open the workspace now, once per process (DuckDB's extensions, the catalog, the lake's
    reader views: about a second), while the driver still plans the shards, instead of
    inside the first shard. A failure here is left to that shard, which says what failed."""
    try:
        _worker_cursor(ws_path).close()
    except Exception:  # noqa: BLE001 - reported by the first shard
        _WORKER.pop(("ws", ws_path), None)


def _worker_cursor(ws_path: str) -> duckdb.DuckDBPyConnection:
    from analytics.workspace import Workspace

    ws = _WORKER.get(("ws", ws_path))
    if ws is None:
        ws = _WORKER[("ws", ws_path)] = Workspace(ws_path)
    # a pool's workers read the snapshot the job started from (its documents and texts do
    # not change while it runs): no reader views rebuilt after each of the job's commits
    return ws.snapshot(at=_WORKER.get("at")).cursor()


def run_shard(ws_path: str, task: ShardTask, shard: Shard) -> tuple[int, pa.Table, float, str]:
    """Read the shard's text and compute it: (index, result, seconds, worker name)."""
    from analytics.text import fetch_texts

    t0 = time.perf_counter()
    texts = fetch_texts(_worker_cursor(ws_path), list(shard.doc_ids))
    missing = [d for d in shard.doc_ids if d not in texts]
    if missing:
        raise MixscopeError(
            f"{len(missing)} document(s) of shard {shard.index} have no readable text "
            f"(first: {missing[0]!r}); re-ingest their files."
        )
    ids = list(shard.doc_ids)
    batch = {"doc_id": pa.array(ids, pa.string()), "text": [texts[d] for d in ids]}
    extra = tuple(getattr(task, "columns", ()) or ())
    if extra:
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in extra)
        rows = dict(
            (r[0], r[1:])
            for r in _worker_cursor(ws_path)
            .execute(
                f"SELECT doc_id, {cols} FROM documents WHERE doc_id IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [ids],
            )
            .fetchall()
        )
        for j, c in enumerate(extra):
            batch[c] = [rows[d][j] for d in ids]
    result = task.compute(pa.table(batch))
    return shard.index, result, time.perf_counter() - t0, f"{socket.gethostname()}:{os.getpid()}"


def _local_shard(shard: Shard) -> tuple[int, pa.Table, float, str]:
    return run_shard(_WORKER["ws_path"], _WORKER["task"], shard)


# --------------------------------------------------------------------------- engines
def _noop() -> None:
    return None


@contextlib.contextmanager
def _plain_main() -> Iterator[None]:
    """While workers start, hide the caller's `__main__`: `spawn` would otherwise re-run it
    in every worker (a Streamlit page, a notebook, a script). Tasks live in importable
    modules, so workers never need it."""
    import sys
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def start_pool(ws_path: str, task: ShardTask, workers: int, at: int | None = None):
    """A spawn process pool whose `workers` processes start now, in the background (they
    import, load the task and open the workspace while the driver plans the shards), each
    reading snapshot `at` (None: the latest commit)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(ws_path, task, os.getpid(), at)
    )
    with _plain_main():  # the pool starts processes on demand: ask for all of them now
        for _ in range(workers):
            pool.submit(_noop)
    return pool


def _run_local(pool, shards: list[Shard], workers: int) -> Iterator:
    from concurrent.futures import FIRST_COMPLETED, wait

    todo = list(reversed(shards))
    running = set()
    try:
        while todo or running:
            while todo and len(running) < 2 * workers:
                running.add(pool.submit(_local_shard, todo.pop()))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            yield [fut.result() for fut in finished]  # every shard done by now: one commit
    finally:
        for fut in running:
            fut.cancel()


def check_ray_address(address: str | None) -> None:
    """A HOST:PORT that does not answer -> EngineError at once (Ray itself waits long)."""
    if not address or address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as exc:
        raise EngineError(
            f"--ray-address {address}: no Ray cluster answers there ({exc}); expected the "
            "HOST:PORT of a running head node (`ray start --head` prints it) or `auto`."
        ) from None


def ray_connect(address: str | None):
    """Import Ray and connect to `address` (None: a local instance). One-line errors."""
    try:
        import ray
    except ImportError as exc:
        raise EngineError("the Ray engine needs Ray: pip install 'ray[data]'") from exc
    from analytics.ray_hook import runtime_env, setup_worker

    setup_worker()  # the driver's Ray Data threads race for the same import
    check_ray_address(address)
    if not ray.is_initialized():
        extra: dict[str, Any] = {}
        if address and address.rsplit(":", 1)[0] in ("127.0.0.1", "localhost"):
            # A head bound to loopback is on this machine: advertise loopback too, so its
            # workers reach this driver (the owner of the task object) the same way.
            extra["_node_ip_address"] = "127.0.0.1"
        try:
            ray.init(
                address=address,
                ignore_reinit_error=True,
                log_to_driver=False,
                include_dashboard=False if address in (None, "local") else None,
                runtime_env=runtime_env(),  # every worker imports fsspec first (ray_hook)
                **extra,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(
                f"--ray-address {address}: cannot connect to a Ray cluster "
                f"({' '.join(str(exc).split())[:200]})."
            ) from exc
    return ray


_RAY_FN = None


def _ray_fn(ray):
    global _RAY_FN
    if _RAY_FN is None:
        _RAY_FN = ray.remote(num_cpus=1, max_retries=2)(run_shard)
    return _RAY_FN


def _run_ray(
    ws_path: str, task: ShardTask, shards: list[Shard], address: str | None, workers: int
) -> Iterator:
    ray = ray_connect(address)
    fn = _ray_fn(ray)
    task_ref = ray.put(task)
    todo = list(reversed(shards))
    running: list = []
    limit = max(2, 2 * workers)
    try:
        while todo or running:
            while todo and len(running) < limit:
                running.append(fn.remote(ws_path, task_ref, todo.pop()))
            ready, running = ray.wait(running, num_returns=1)
            if running:  # and every other shard done by now: one commit
                more, running = ray.wait(running, num_returns=len(running), timeout=0)
                ready += more
            yield ray.get(ready)
    finally:
        for ref in running:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


def ray_workers(address: str | None) -> int:
    ray = ray_connect(address)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# --------------------------------------------------------------------------- units
#: engines of :func:`map_units` (jobs whose units are not document shards: materialise)
UNIT_ENGINES = ("in-process", "local", "ray")


def check_engine(engine: str, engines: tuple[str, ...] = ENGINES) -> None:
    if engine not in engines:
        raise EngineError(f"--engine {engine!r}: expected one of {', '.join(engines)}")


def _unit_init(fn: Callable, payload: Any, parent: int | None = None) -> None:
    if parent is not None:
        _die_with_parent(parent)
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    _WORKER.clear()
    _WORKER.update(unit_fn=fn, unit_payload=payload)


def _unit_call(index: int, unit: Any) -> tuple[int, Any, float]:
    t0 = time.perf_counter()
    res = _WORKER["unit_fn"](_WORKER["unit_payload"], unit)
    return index, res, time.perf_counter() - t0


def _unit_remote(fn: Callable, payload: Any, index: int, unit: Any) -> tuple[int, Any, float]:
    t0 = time.perf_counter()
    res = fn(payload, unit)
    return index, res, time.perf_counter() - t0


_RAY_UNIT_FN = None


def map_units(
    fn: Callable[[Any, Any], Any],
    payload: Any,
    units: list,
    *,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> Iterator[list[tuple[int, Any, float]]]:
    """Run ``fn(payload, unit)`` for every unit on the engine; yield lists of finished
    ``(unit index, result, seconds)`` as they complete (every unit finished since the last
    yield). `fn` is a module-level function and `payload` a picklable object, shipped once
    per worker (process pool initializer, or one Ray object). Engines: ``in-process`` (one
    unit after the other in this process), ``local`` (a spawn process pool of `workers`
    processes, default every core) or ``ray`` (Ray tasks on `ray_address`).

    Closing the generator early cancels the units not started yet."""
    check_engine(engine, UNIT_ENGINES)
    if workers is not None and workers < 1:
        raise EngineError(f"--workers {workers}: expected at least 1")
    if not units:
        return
    if engine == "in-process":
        for i, unit in enumerate(units):
            t0 = time.perf_counter()
            res = fn(payload, unit)
            yield [(i, res, time.perf_counter() - t0)]
        return
    if engine == "local":
        yield from _map_local(fn, payload, units, workers or os.cpu_count() or 1)
    else:
        yield from _map_ray(fn, payload, units, ray_address, workers)


def _map_local(fn, payload, units: list, workers: int) -> Iterator:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    workers = max(1, min(workers, len(units)))
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_unit_init, initargs=(fn, payload, os.getpid())
    )
    todo = list(reversed(list(enumerate(units))))
    running: set = set()
    try:
        with _plain_main():
            while todo and len(running) < 2 * workers:
                running.add(pool.submit(_unit_call, *todo.pop()))
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            while todo and len(running) < 2 * workers:
                running.add(pool.submit(_unit_call, *todo.pop()))
            yield [fut.result() for fut in finished]
    finally:
        for fut in running:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _map_ray(fn, payload, units: list, address: str | None, workers: int | None) -> Iterator:
    global _RAY_UNIT_FN
    ray = ray_connect(address)
    if _RAY_UNIT_FN is None:
        _RAY_UNIT_FN = ray.remote(num_cpus=1, max_retries=2)(_unit_remote)
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    payload_ref = ray.put(payload)
    todo = list(reversed(list(enumerate(units))))
    running: list = []
    limit = max(2, 2 * workers)
    try:
        while todo or running:
            while todo and len(running) < limit:
                running.append(_RAY_UNIT_FN.remote(fn, payload_ref, *todo.pop()))
            ready, running = ray.wait(running, num_returns=1)
            if running:
                more, running = ray.wait(running, num_returns=len(running), timeout=0)
                ready += more
            yield ray.get(ready)
    finally:
        for ref in running:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


# --------------------------------------------------------------------------- driver
def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def progress_line(label: str, shards: tuple[int, int], docs: tuple[int, int], secs: float) -> str:
    """'LABEL: shards 3/10, documents 6,000/20,000, 1,234 docs/s, ETA 11s'."""
    rate = docs[0] / secs if secs > 0 else 0.0
    eta = (docs[1] - docs[0]) / rate if rate > 0 else float("nan")
    return (
        f"{label}: shards {shards[0]:,}/{shards[1]:,}, documents {docs[0]:,}/{docs[1]:,}, "
        f"{rate:,.0f} docs/s, ETA {_fmt_eta(eta)}"
    )


def progress_columns(record: dict) -> dict[str, str | None]:
    """The Jobs page's engine columns of a job's progress record: shards ('3/10'), docs/s
    and ETA; None where the job is not an engine job (its record has no shards)."""
    if "shards_total" not in record:
        return {"shards": None, "docs/s": None, "ETA": None}
    rate, eta = record.get("docs_per_s"), record.get("eta_s")
    return {
        "shards": f"{record.get('shards_done', 0):,}/{record['shards_total']:,}",
        "docs/s": None if rate is None else f"{rate:,.0f}",
        "ETA": "?" if eta is None else _fmt_eta(eta),
    }


class _Tracker:
    """Tells a run's progress after each commit: the caller's `progress` bar and `on_line`,
    then the job's progress.json (last, so that it is the record the Jobs page shows): the
    line of :func:`progress_line` as its stage, documents done/total, and shards_done,
    shards_total, docs_per_s and eta_s."""

    def __init__(
        self, label: str, progress: Progress | None, on_line: Callable[[str], None] | None
    ) -> None:
        from analytics.jobs import JobReporter

        self.label, self.progress, self.on_line = label, progress, on_line
        self.job = JobReporter(min_interval_s=0.0)
        self.t0 = time.perf_counter()
        self.n_shards = self.n_docs = 0

    def start(self, shards: list[Shard]) -> None:
        self.n_shards, self.n_docs = len(shards), sum(len(s.doc_ids) for s in shards)
        self(0, 0)

    def __call__(self, shards_done: int, docs_done: int) -> None:
        secs = time.perf_counter() - self.t0
        line = progress_line(
            self.label, (shards_done, self.n_shards), (docs_done, self.n_docs), secs
        )
        if self.progress:
            self.progress(self.label, docs_done, self.n_docs)
        if self.on_line:
            self.on_line(line)
        rate = docs_done / secs if secs > 0 else 0.0
        eta = (self.n_docs - docs_done) / rate if rate > 0 else None
        self.job(
            line, docs_done, self.n_docs, unit="documents", shards_done=shards_done,
            shards_total=self.n_shards, docs_per_s=round(rate, 1),
            eta_s=None if eta is None else round(eta, 1),
        )  # fmt: skip


def _check_run(engine: str, workers: int | None, ray_address: str | None) -> None:
    """Bad engine or workers -> EngineError; a Ray address that does not answer fails now,
    before anything is written."""
    check_engine(engine)
    if workers is not None and workers < 1:
        raise EngineError(f"--workers {workers}: expected at least 1")
    if engine == "ray":
        ray_connect(ray_address)


def _prepare(ws, task: ShardTask) -> int:
    """Create the job's tables (and engine_shards); the number of pending documents."""
    with ws.write(job=f"{task.label} (prepare)") as wcon:
        wcon.execute(ENGINE_SHARDS_DDL)
        task.prepare(wcon)
    sql, params = task.pending_sql()
    return int(ws.cursor().execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0])


def _local_workers(workers: int | None, n_shards: int) -> int:
    """Processes of the local pool: `workers` (default every core), no more than shards."""
    return max(1, min(workers or os.cpu_count() or 1, n_shards or 1))


def _shard_results(
    engine: str, pool, ws_path: str, task: ShardTask, shards: list[Shard], ray_address, workers
) -> Iterator:
    if engine == "local":
        return _run_local(pool, shards, workers)
    return _run_ray(ws_path, task, shards, ray_address, workers)


def _commit_batch(ws, con, task: ShardTask, engine: str, batch: list, by_index: dict) -> None:
    """The shards finished since the last commit, committed together (each recorded): when
    commits are the bottleneck, fewer and larger transactions keep up."""
    with ws.write(job=f"{task.label} shards", con=con) as wcon:
        for index, result, secs, worker in batch:
            shard = by_index[index]
            task.commit(wcon, result)
            wcon.execute(
                "INSERT INTO engine_shards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [task.key, index, shard.doc_ids[0], shard.doc_ids[-1], len(shard.doc_ids),
                 secs, engine, worker, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )  # fmt: skip


def _close_run(results, pool, con=None) -> None:
    close = getattr(results, "close", None)
    if close:
        close()
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
    if con is not None:
        con.close()


def run_job(
    ws,
    task: ShardTask,
    *,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: Progress | None = None,
    on_line: Callable[[str], None] | None = None,
    on_commit: Callable[[int, int], None] | None = None,
) -> EngineReport:
    """Run `task` over every pending document of workspace `ws`, shard by shard.

    After each committed shard: `progress(task.label, docs_done, docs_total)` (the CLI's
    bar), `on_line(line)` with the line of :func:`progress_line` (shards, documents, docs/s,
    ETA), the same line and shards done/total, docs/s and ETA to the job's progress.json when
    run as a job (the Jobs page; a cancel request stops the job there, between shards), and
    `on_commit(shards_done, docs_done)`.
    """
    _check_run(engine, workers, ray_address)
    tracker = _Tracker(task.label, progress, on_line)
    ws_path = str(ws.path)
    pool = con = results = None
    try:
        n_pending = _prepare(ws, task)
        if engine == "local":
            workers = _local_workers(workers, -(-n_pending // max(shard_size, 1)))
            if n_pending:  # starts while the shards are planned
                pool = start_pool(ws_path, task, workers, at=ws.snapshot_id())
        else:
            workers = workers or ray_workers(ray_address)
        cur = ws.cursor()
        shards = plan_shards(cur, task, shard_size)
        n_total = int(cur.execute("SELECT count(*) FROM documents").fetchall()[0][0])
        tracker.start(shards)
        report = EngineReport(task.key, engine, workers, 0, 0, n_total - tracker.n_docs, 0.0)
        if not shards:
            report.seconds = time.perf_counter() - tracker.t0
            return report
        results = _shard_results(engine, pool, ws_path, task, shards, ray_address, workers)
        by_index = {s.index: s for s in shards}
        con = ws.connect(read_only=False)
        for batch in results:
            _commit_batch(ws, con, task, engine, batch, by_index)
            for index, _result, secs, _worker in batch:
                report.shards += 1
                report.docs += len(by_index[index].doc_ids)
                report.shard_seconds.append(secs)
                if on_commit:
                    on_commit(report.shards, report.docs)
            tracker(report.shards, report.docs)
    finally:
        _close_run(results, pool, con)
    report.seconds = time.perf_counter() - tracker.t0
    return report


def scan_job(
    ws,
    task: ShardTask,
    *,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: Progress | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[list[Any], EngineReport]:
    """Run `task.compute` over the documents of `task.pending_sql` shard by shard, writing
    nothing (a read-only job such as a contamination scan): (the shards' results in shard
    order, the report). `task.prepare` and `task.commit` are not called. Progress goes where
    :func:`run_job`'s goes (the bar, `on_line`, the job's progress.json)."""
    _check_run(engine, workers, ray_address)
    tracker = _Tracker(task.label, progress, on_line)
    shards = plan_shards(ws.cursor(), task, shard_size)
    ws_path = str(ws.path)
    if engine == "local":
        workers = _local_workers(workers, len(shards))
    else:
        workers = workers or ray_workers(ray_address)
    report = EngineReport(task.key, engine, workers, 0, 0, 0, 0.0)
    tracker.start(shards)
    out: dict[int, Any] = {}
    pool = results = None
    try:
        if shards:
            pool = (
                start_pool(ws_path, task, workers, at=ws.snapshot_id())
                if engine == "local"
                else None
            )
            results = _shard_results(engine, pool, ws_path, task, shards, ray_address, workers)
            for batch in results:
                for index, result, secs, _worker in batch:
                    out[index] = result
                    report.shards += 1
                    report.docs += len(shards[index].doc_ids)
                    report.shard_seconds.append(secs)
                tracker(report.shards, report.docs)
    finally:
        _close_run(results, pool)
    report.seconds = time.perf_counter() - tracker.t0
    return [out[i] for i in sorted(out)], report


def done_shards(con: duckdb.DuckDBPyConnection, job_key: str) -> int:
    """Shards committed under `job_key` (by every run of it)."""
    try:
        return int(
            con.execute(
                "SELECT count(*) FROM engine_shards WHERE job_key = ?", [job_key]
            ).fetchall()[0][0]
        )
    except duckdb.CatalogException:
        return 0
