"""Geometry in the workspace: the run registry, probe sets and stored results.

* :func:`add_run` registers checkpoints under a run name (``mixscope checkpoints add``):
  it resolves every spec with :func:`discover_checkpoints`, checks each checkpoint
  (config readable, tokenizer present, not encoder-decoder), fingerprints it, and keeps
  the loss log of the newest ``trainer_state.json``. Adding to an existing run merges.
* :func:`build_probe` draws the probe set from the ``documents`` table (stratified,
  seeded) and :func:`record_probe` stores it (documents in order + hash).
* :class:`WorkspaceCache` is the :class:`~analytics.geometry.run.GeometryCache` of a
  write job: ``get`` reads a stored result of this run back by its cache key, ``put``
  appends the rows of a new one (skipping keys already present), so a re-run computes
  only what is new (checkpoint, probe hash, parameters).
* :func:`save_result` appends a whole :class:`GeometryResult` the same way.
* :func:`compute_run` is the job: checks first (nothing is written on bad input), then
  computes inside ``ws.write()`` and publishes with ``ws.checkpoint(con)`` after each
  finished checkpoint, so a killed run keeps what it finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.db import one, scalar, table_exists
from analytics.params import SEED_HELP, default_of, option

from .checkpoints import Checkpoint, checkpoint_fingerprint, discover_checkpoints, require_tokenizer
from .errors import ArchitectureError, CheckpointError, GeometryInputError, ProbeError
from .probe import probe_hash, select_probe
from .schema import SCHEMA

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
STRATIFY_COLUMNS = ("source", "domain", "lang")
#: stored result kind -> {frame name: table}
KIND_TABLES: dict[str, dict[str, str]] = {
    "checkpoint": {
        "info": "geometry_checkpoints",
        "metrics": "geometry_metrics",
        "spectra": "geometry_spectra",
        "loss": "geometry_loss",
        "cka": "geometry_cka",
        "weights": "geometry_weights",
    },
    "pair": {"cka": "geometry_cka", "intruders": "geometry_intruders"},
}
_INT_COLUMNS = ("step", "step_a", "step_b")
Progress = Callable[[int, int, str], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ensure_schema(con: Any) -> None:
    """Create the geometry tables that are missing (idempotent; for write connections of
    workspaces migrated before a table was added)."""
    for ddl in SCHEMA:
        con.execute(ddl)


def has_tables(con: Any, *tables: str) -> bool:
    """True when every named table exists in the connection's current database."""
    return all(table_exists(con, t) for t in tables)


def config_id(probe: str, params: Mapping[str, Any]) -> str:
    """Short name of one computation setting: 12 hex of sha256(probe hash + params JSON)."""
    blob = json.dumps({"probe": probe, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------- registry
def _config_facts(ck: Checkpoint) -> dict[str, Any]:
    """model_type, hidden size and layer count from config.json (local checkpoints)."""
    if ck.is_hub:
        return {"model_type": None, "hidden_size": None, "num_layers": None}
    path = Path(ck.path) / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the model config ({exc})") from exc
    if cfg.get("is_encoder_decoder"):
        raise ArchitectureError(
            f"{ck.path}: encoder-decoder architecture ({cfg.get('model_type')}) is not "
            "supported; use an encoder or a decoder-only model"
        )

    def first(*keys: str) -> int | None:
        for k in keys:
            v = cfg.get(k)
            if isinstance(v, int):
                return v
        return None

    return {
        "model_type": cfg.get("model_type"),
        "hidden_size": first("hidden_size", "n_embd", "d_model", "dim"),
        "num_layers": first("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    }


def check_checkpoint(ck: Checkpoint) -> dict[str, Any]:
    """Raise a clear error for a checkpoint that cannot be used; return its config facts."""
    if not ck.is_hub:
        if not (Path(ck.path) / "config.json").is_file():
            raise CheckpointError(
                f"{ck.path}: holds no checkpoint (no config.json); was it moved or deleted?"
            )
        require_tokenizer(ck)
    return _config_facts(ck)


def _train_log(cks: Sequence[Checkpoint]) -> pd.DataFrame:
    """Loss log from the newest checkpoint's trainer_state.json (empty when none)."""
    cols = ["step", "loss", "learning_rate", "grad_norm"]
    for ck in sorted(cks, key=lambda c: -(c.step or -1)):
        if ck.is_hub:
            continue
        f = Path(ck.path) / "trainer_state.json"
        if not f.is_file():
            continue
        try:
            hist = json.loads(f.read_text()).get("log_history") or []
        except (OSError, ValueError):
            continue
        rows = [
            {c: h.get(c) for c in cols}
            for h in hist
            if isinstance(h, dict) and "loss" in h and "step" in h
        ]
        if rows:
            return pd.DataFrame(rows, columns=cols)
    return pd.DataFrame(columns=cols)


def add_run(
    con: Any,
    name: str,
    specs: Sequence[str | Path],
    *,
    tokenizer: str | Path | None = None,
    replace: bool = False,
) -> pd.DataFrame:
    """Register checkpoints under run ``name``; returns the run's checkpoints (merged with
    those already registered, deduplicated by path and revision, sorted by step).

    ``specs``: run directories, model directories, hub ``org/name@rev1,rev2``; see
    :func:`discover_checkpoints`. ``tokenizer`` overrides where tokenizers are read from.
    ``replace=True`` drops the run's previously registered checkpoints (stored results
    stay, keyed by content). Raises :class:`CheckpointError` / :class:`TokenizerMissingError` /
    :class:`ArchitectureError` before writing anything.
    """
    if not RUN_NAME.match(name or ""):
        raise GeometryInputError(
            f"run name {name!r}: expected 1-64 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    specs = [str(s) for s in specs]
    if not specs:
        raise CheckpointError(
            "no checkpoint given: pass a run directory, model directory or hub id"
        )
    new = discover_checkpoints(specs, tokenizer=tokenizer)
    ensure_schema(con)
    old = [] if replace else run_checkpoints(con, name)
    seen: dict[tuple[str, str | None], Checkpoint] = {(c.path, c.revision): c for c in old}
    for c in new:
        seen[(c.path, c.revision)] = c
    cks = sorted(
        seen.values(), key=lambda c: (c.step is None, c.step if c.step is not None else 0, c.name)
    )
    names = [c.name for c in cks]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise CheckpointError(
            f"run {name}: checkpoint names must be unique within a run, {dups} appear more "
            "than once; register the series as separate runs"
        )
    rows = []
    for i, c in enumerate(cks):
        facts = check_checkpoint(c)
        rows.append(
            {
                "run": name,
                "ordinal": i,
                "checkpoint": c.name,
                "path": c.path,
                "revision": c.revision,
                "step": c.step,
                "tokens_b": c.tokens_b,
                "fingerprint": checkpoint_fingerprint(c),
                "tokenizer_path": c.tokenizer_path,
                "source": c.source,
                **facts,
            }
        )
    df = pd.DataFrame(rows)
    prev_specs = one(con, "SELECT specs FROM geometry_runs WHERE run = ?", [name])
    all_specs = json.loads(prev_specs[0]) if prev_specs and prev_specs[0] and not replace else []
    all_specs += [s for s in specs if s not in all_specs]
    con.execute("DELETE FROM geometry_run_checkpoints WHERE run = ?", [name])
    con.execute("DELETE FROM geometry_train_log WHERE run = ?", [name])
    con.execute("DELETE FROM geometry_runs WHERE run = ?", [name])
    con.execute(
        "INSERT INTO geometry_runs VALUES (?, ?, ?, ?)",
        [name, json.dumps(all_specs), str(tokenizer) if tokenizer else None, _now()],
    )
    _insert(con, "geometry_run_checkpoints", df)
    log = _train_log(cks)
    if len(log):
        _insert(con, "geometry_train_log", log.assign(run=name))
    return df.drop(columns=["run"])


def run_checkpoints(con: Any, name: str) -> list[Checkpoint]:
    """The registered checkpoints of run ``name`` in step order (empty when unknown)."""
    if not has_tables(con, "geometry_run_checkpoints"):
        return []
    rows = con.execute(
        """SELECT checkpoint, path, revision, step, tokens_b, tokenizer_path, source
           FROM geometry_run_checkpoints WHERE run = ? ORDER BY ordinal""",
        [name],
    ).fetchall()
    return [
        Checkpoint(
            name=r[0],
            path=r[1],
            revision=r[2],
            step=None if r[3] is None else int(r[3]),
            tokens_b=r[4],
            tokenizer_path=r[5],
            source=r[6] or "dir",
        )
        for r in rows
    ]


def remove_run(con: Any, name: str) -> int:
    """Delete a run's registry entry and every stored result of it; returns rows removed
    from the registry (0 when the run did not exist)."""
    ensure_schema(con)
    n = scalar(con, "SELECT count(*) FROM geometry_runs WHERE run = ?", [name]) or 0
    tables = {t for kinds in KIND_TABLES.values() for t in kinds.values()}
    for t in sorted(tables) + [
        "geometry_results",
        "geometry_run_checkpoints",
        "geometry_train_log",
        "geometry_runs",
    ]:
        con.execute(f"DELETE FROM {t} WHERE run = ?", [name])
    return int(n)


# ---------------------------------------------------------------------- probe sets
def build_probe(
    con: Any, *, size: int, stratify_by: str | None = "source", seed: int = 0
) -> pd.DataFrame:
    """The probe set (doc_id, group, text) drawn from the ``documents`` table by
    :func:`select_probe` (stratified by ``stratify_by``: source, domain, lang or None).
    Raises :class:`ProbeError` when ``size`` exceeds the corpus."""
    if stratify_by is not None and stratify_by not in STRATIFY_COLUMNS:
        raise ProbeError(
            f"stratify_by: expected one of {', '.join(STRATIFY_COLUMNS)} or none, "
            f"got {stratify_by!r}"
        )
    col = stratify_by or "NULL"
    ids = con.execute(
        f"SELECT doc_id, {col} AS grp, '' AS text FROM documents ORDER BY doc_id"
    ).df()
    ids = ids.rename(columns={"grp": stratify_by}) if stratify_by else ids.drop(columns="grp")
    if size > len(ids):
        raise ProbeError(
            f"--probe-size {size} is larger than the corpus ({len(ids):,} documents); "
            "use a smaller probe"
        )
    probe = select_probe(ids, size=size, stratify_by=stratify_by, seed=seed)
    texts = con.execute(
        """SELECT p.i, d.text FROM (SELECT unnest(?::VARCHAR[]) AS doc_id,
               generate_subscripts(?::VARCHAR[], 1) AS i) p
           JOIN document_text d USING (doc_id) ORDER BY p.i""",
        [probe["doc_id"].tolist(), probe["doc_id"].tolist()],
    ).fetchall()
    out = probe.assign(text=[t for _, t in texts])
    out.attrs.update(size=size, stratify_by=stratify_by, seed=seed, n_corpus=len(ids))
    return out


def record_probe(con: Any, probe: pd.DataFrame) -> str:
    """Store a probe set from :func:`build_probe` (once per hash); returns its hash."""
    ph = probe_hash(probe["text"].tolist(), probe["group"].tolist())
    ensure_schema(con)
    if scalar(con, "SELECT count(*) FROM geometry_probes WHERE probe_hash = ?", [ph]):
        return ph
    a = probe.attrs
    con.execute(
        "INSERT INTO geometry_probes VALUES (?, ?, ?, ?, ?, ?)",
        [ph, len(probe), a.get("stratify_by"), a.get("seed"), a.get("n_corpus"), _now()],
    )
    docs = pd.DataFrame(
        {
            "probe_hash": ph,
            "ordinal": range(len(probe)),
            "doc_id": probe["doc_id"].astype(str).to_numpy(),
            "group": probe["group"].astype(str).to_numpy(),
        }
    )
    _insert(con, "geometry_probe_docs", docs)
    return ph


# ---------------------------------------------------------------------- results
def _insert(con: Any, table: str, frame: pd.DataFrame, **constants: Any) -> None:
    if frame is None or not len(frame):
        return
    f = frame.copy()
    for c in _INT_COLUMNS:
        if c in f.columns:
            f[c] = pd.to_numeric(f[c], errors="coerce").astype("Int64")  # None -> NULL
    names = list(constants)
    select = ", ".join([f"? AS {n}" for n in names] + ["*"])
    con.register("_geometry_frame", f)
    try:
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT {select} FROM _geometry_frame",
            [constants[n] for n in names],
        )
    finally:
        con.unregister("_geometry_frame")


def stored_keys(con: Any, run: str) -> set[str]:
    """Cache keys of the results stored for ``run``."""
    if not has_tables(con, "geometry_results"):
        return set()
    rows = con.execute("SELECT cache_key FROM geometry_results WHERE run = ?", [run]).fetchall()
    return {r[0] for r in rows}


def _put(
    con: Any,
    run: str,
    key: str,
    frames: Mapping[str, pd.DataFrame],
    *,
    probe: str,
    params: Mapping[str, Any],
) -> bool:
    if scalar(
        con, "SELECT count(*) FROM geometry_results WHERE run = ? AND cache_key = ?", [run, key]
    ):
        return False
    kind = "checkpoint" if "info" in frames else "pair"
    for fname, table in KIND_TABLES[kind].items():
        f = frames.get(fname)
        if f is not None and len(f):
            _insert(con, table, f, run=run, cache_key=key)
    if kind == "checkpoint":
        a, b = str(frames["info"]["checkpoint"].iloc[0]), None
    else:
        c = frames.get("cka")
        src = c if c is not None and len(c) else frames.get("intruders")
        a = str(src["checkpoint_a"].iloc[0]) if src is not None and len(src) else None
        b = str(src["checkpoint_b"].iloc[0]) if src is not None and len(src) else None
    con.execute(
        "INSERT INTO geometry_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run,
            key,
            kind,
            a,
            b,
            config_id(probe, params),
            probe,
            json.dumps(dict(params), sort_keys=True, default=str),
            _now(),
        ],
    )
    return True


class WorkspaceCache:
    """:class:`~analytics.geometry.run.GeometryCache` over a write connection, scoped to
    one run and one computation setting (``probe`` hash + ``params`` from
    :func:`~analytics.geometry.run.geometry_params`).

    ``get`` returns a stored result of this run by key; ``put`` appends a new one unless
    the key is present. ``dirty`` turns True after a put (reset it after publishing);
    ``hits``/``misses``/``added`` count what happened, ``stored`` names the checkpoints
    whose own result was added."""

    def __init__(self, con: Any, run: str, *, probe: str, params: Mapping[str, Any]) -> None:
        ensure_schema(con)
        self.con = con
        self.run = run
        self.probe = probe
        self.params = dict(params)
        self.dirty = False
        self.hits = 0
        self.misses = 0
        self.added = 0
        self.stored: list[str] = []  # checkpoints whose own result was stored by this cache

    def get(self, key: str) -> dict[str, pd.DataFrame] | None:
        row = one(
            self.con,
            "SELECT kind FROM geometry_results WHERE run = ? AND cache_key = ?",
            [self.run, key],
        )
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        frames = {}
        for fname, table in KIND_TABLES[row[0]].items():
            frames[fname] = self.con.execute(
                f"SELECT * EXCLUDE (run, cache_key) FROM {table} WHERE run = ? AND cache_key = ?",
                [self.run, key],
            ).df()
        return frames

    def put(self, key: str, frames: dict[str, pd.DataFrame]) -> None:
        if _put(self.con, self.run, key, frames, probe=self.probe, params=self.params):
            self.added += 1
            self.dirty = True
            if "info" in frames:
                self.stored.append(str(frames["info"]["checkpoint"].iloc[0]))


def result_keys(result: Any) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Cache keys of a :class:`GeometryResult`: checkpoint name -> key, and
    (checkpoint_a, checkpoint_b) -> key for consecutive pairs (as compute_geometry forms them)."""
    from .run import cache_key

    params = {k: v for k, v in result.params.items() if k != "probe_hash"}
    ph = result.params["probe_hash"]
    info = result.checkpoints
    names = info["checkpoint"].astype(str).tolist()
    fps = info["fingerprint"].astype(str).tolist()
    single = {n: cache_key(fp, ph, params) for n, fp in zip(names, fps, strict=True)}
    pairs = {
        (names[i - 1], names[i]): cache_key(f"{fps[i - 1]}->{fps[i]}", ph, params)
        for i in range(1, len(names))
    }
    return single, pairs


def save_result(con: Any, run: str, result: Any) -> int:
    """Append a :class:`GeometryResult` to the workspace tables under ``run``, one group
    of rows per cache key, skipping keys already stored for the run. Returns the number
    of keys added (0 on a repeat)."""
    ensure_schema(con)
    params = {k: v for k, v in result.params.items() if k != "probe_hash"}
    ph = result.params["probe_hash"]
    single, pairs = result_keys(result)
    have = stored_keys(con, run)
    added = 0
    for name, key in single.items():
        if key in have:
            continue
        frames = {"info": result.checkpoints[result.checkpoints["checkpoint"] == name]}
        for fname in ("metrics", "spectra", "loss", "weights"):
            f = getattr(result, fname)
            frames[fname] = f[f["checkpoint"] == name] if len(f) else f
        c = result.cka
        frames["cka"] = c[(c["kind"] == "layers") & (c["checkpoint_a"] == name)]
        added += _put(con, run, key, frames, probe=ph, params=params)
    for (a, b), key in pairs.items():
        if key in have:
            continue
        c, it = result.cka, result.intruders
        frames = {
            "cka": c[
                (c["kind"] == "checkpoints") & (c["checkpoint_a"] == a) & (c["checkpoint_b"] == b)
            ],
            "intruders": it[(it["checkpoint_a"] == a) & (it["checkpoint_b"] == b)]
            if len(it)
            else it,
        }
        if not any(len(f) for f in frames.values()):
            continue
        added += _put(con, run, key, frames, probe=ph, params=params)
    return added


# ---------------------------------------------------------------------- the job
@dataclass
class RunReport:
    """What :func:`compute_run` did: result keys added; checkpoints computed, cached, or
    re-extracted (own result stored, states needed again for CKA with a new neighbour);
    seconds per extracted checkpoint; the probe hash, the config id and notes."""

    run: str
    probe_hash: str
    config: str
    n_checkpoints: int
    computed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    reextracted: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    added: int = 0
    notes: list[str] = field(default_factory=list)
    total_seconds: float = 0.0


def preflight(
    con: Any,
    run: str,
    *,
    probe_size: int,
    stratify_by: str | None,
    seed: int,
) -> tuple[list[Checkpoint], pd.DataFrame, list[str]]:
    """Everything :func:`compute_run` checks before writing: the run exists, each
    checkpoint is usable, the probe fits the corpus. Returns (checkpoints, probe, notes)."""
    cks = run_checkpoints(con, run)
    if not cks:
        known = []
        if has_tables(con, "geometry_runs"):
            known = [
                r[0] for r in con.execute("SELECT run FROM geometry_runs ORDER BY run").fetchall()
            ]
        raise CheckpointError(
            f"no checkpoint run named {run!r} in this workspace"
            + (f" (runs: {', '.join(known)})" if known else "")
            + f"; register one with `mixscope checkpoints add {run} PATH...`"
        )
    facts = [check_checkpoint(c) for c in cks]
    notes = []
    sizes = sorted({f["hidden_size"] for f in facts if f["hidden_size"] is not None})
    if len(sizes) > 1:
        notes.append(
            f"checkpoints of run {run} have different hidden sizes {sizes}: CKA compares them "
            "(it needs only the same probe texts); spectra are not directly comparable"
        )
    probe = build_probe(con, size=probe_size, stratify_by=stratify_by, seed=seed)
    return cks, probe, notes


@dataclass(frozen=True)
class ProbeOptions:
    """How :func:`compute_run` draws the probe set (the one place these options are written)."""

    probe_size: int = option(256, "Documents in the probe set.")
    stratify_by: str | None = option(
        "source", "Stratify the probe by source, domain, lang or none."
    )
    seed: int = option(0, SEED_HELP)


def compute_run(
    ws: Any,
    run: str,
    *,
    probe_size: int = default_of(ProbeOptions, "probe_size"),
    stratify_by: str | None = default_of(ProbeOptions, "stratify_by"),
    seed: int = default_of(ProbeOptions, "seed"),
    progress: Progress | None = None,
    job: str | None = None,
    **options: Any,
) -> RunReport:
    """Compute geometry for a registered run and store it in the workspace ``ws``.

    ``options`` go to :func:`~analytics.geometry.run.compute_geometry` (pooling,
    max_tokens, layers, rankme_eps, alpha_fit_range, per_group, device, batch_size, ...).
    Checks run on the published snapshot first; then, inside one ``ws.write()`` job, the
    probe set is recorded and each finished checkpoint is published with
    ``ws.checkpoint(con)``. Results already stored for the same (checkpoint, probe hash,
    parameters) are reused, so a re-run adds only what is new.
    """
    from .run import cache_key, compute_geometry, geometry_params

    t0 = time.perf_counter()
    params = geometry_params(
        **{k: v for k, v in options.items() if k not in ("batch_size", "cache", "progress")}
    )
    cks, probe, notes = preflight(
        ws.cursor(), run, probe_size=probe_size, stratify_by=stratify_by, seed=seed
    )
    texts, groups = probe["text"].tolist(), probe["group"].tolist()
    ph = probe_hash(texts, groups)
    report = RunReport(run, ph, config_id(ph, params), len(cks), notes=notes)
    fps = [checkpoint_fingerprint(c) for c in cks]
    wanted = {cache_key(fp, ph, params) for fp in fps} | {
        cache_key(f"{fps[i - 1]}->{fps[i]}", ph, params) for i in range(1, len(fps))
    }
    if wanted <= stored_keys(ws.cursor(), run):  # nothing new: don't even open a write job
        report.cached = [c.name for c in cks]
        report.total_seconds = time.perf_counter() - t0
        return report
    with ws.write(job=job or f"geometry {run}") as con:
        record_probe(con, probe)
        cache = WorkspaceCache(con, run, probe=ph, params=params)
        started: dict[str, float] = {}

        def on_progress(done: int, total: int, message: str) -> None:
            name, _, what = message.partition(": ")
            if what == "extracting hidden states":
                started[name] = time.perf_counter()
            elif what == "done":
                report.seconds[name] = time.perf_counter() - started.get(name, t0)
                if name in cache.stored:
                    report.computed.append(name)
                else:  # its own result was stored; extracted again for a new CKA pair
                    report.reextracted.append(name)
            elif what == "cached":
                report.cached.append(name)
            if cache.dirty:  # a checkpoint (and its pair with the previous one) was stored
                ws.checkpoint(con)
                cache.dirty = False
            if progress is not None:
                progress(done, total, message)

        result = compute_geometry(cks, texts, groups, cache=cache, progress=on_progress, **options)
        report.added = cache.added + save_result(con, run, result)
    report.total_seconds = time.perf_counter() - t0
    return report
