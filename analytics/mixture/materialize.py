"""Materialise a manifest: write the selected documents, repeated for their epochs, as shards.

Deterministic from the seed, computed inside DuckDB (no per-row Python):

1. every group's selection (the manifest SQL) is collected into a temporary table;
2. per group with available tokens A and target tokens T: ``passes = T // A`` whole epochs,
   and for the remaining ``T - passes * A`` tokens a seeded subset: documents ordered by
   ``md5_number(seed:phase:group-key || doc_id)`` (ties by doc_id), taken while the tokens
   *before* a document are below the remainder (so the subset reaches the remainder and
   overshoots by less than one document);
   ``repeats(doc) = passes + [doc in subset]``;
3. rows are expanded by ``repeats`` and ordered within the phase:
   ``shuffled`` by ``md5_number(seed:phase:order: || doc_id || ':' || repeat)``;
   ``ascending-quality``/``descending-quality`` pass by pass (all first copies, then the second
   copies, ...) by ``order_column`` (NULLs first / last), ties shuffled; ``as-is`` by group, doc_id;
4. shards of ``shard_rows`` rows (or ``shard_tokens`` tokens) are written with one DuckDB
   ``COPY`` each into a temporary directory next to ``out_dir``, together with
   ``<phase>/samples.parquet`` (doc_id, group, repeats) and ``materialize.json`` (counts,
   realised tokens, files); the directory is then renamed into place atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .errors import MixtureError, ReproductionError, SelectionError
from .manifest import Manifest, Phase
from .selection import (
    DOC_REF,
    _check_select,
    _digest,
    _quote,
    reproduce,
    snapshot_hash,
    table_columns,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Format = Literal["jsonl", "parquet"]
Progress = Callable[[str, int, int], None]


@dataclass
class MaterializeResult:
    """Where the shards went and what each group received."""

    out_dir: Path
    files: list[Path]
    groups: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _safe_name(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return s or "phase"


def _quality_expr(
    phase: Phase, cols: list[str], derived: Mapping[str, str] | None, doc_ref: str
) -> str:
    """SQL of the phase's ``order_column``: a column of the table or a derived value."""
    col = phase.order_column or ""
    if col in cols:
        return f"{doc_ref}.{_quote(col)}"
    if derived and col in derived:
        return "(" + derived[col].replace(DOC_REF, doc_ref) + ")"
    raise SelectionError(
        f"phases[{phase.name!r}].order_column: {col!r} is not a column of the documents table"
        + (f" nor one of the derived values {sorted(derived)}" if derived else "")
    )


def _order_by(
    phase: Phase, cols: list[str], derived: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    shuffle = "md5_number(? || doc_id || ':' || CAST(rep AS VARCHAR))"
    if phase.order == "shuffled":
        return shuffle, []
    if phase.order == "as-is":
        return '"group", doc_id, rep', []
    _quality_expr(phase, cols, derived, "d")  # raises for an unknown column
    direction = "ASC NULLS FIRST" if phase.order == "ascending-quality" else "DESC NULLS LAST"
    return f"rep, q {direction}, {shuffle}", []


def _verify_selected(con: Any, phase: Phase, sel: str) -> None:
    """Compare the collected selection (temp table ``sel``) with the manifest's counts and
    hashes.
    """
    got = {
        grp: (int(n), int(tok or 0), _digest(n, x, y))
        for grp, n, tok, x, y in con.execute(
            f"SELECT grp, count(*), sum(n_tokens), bit_xor(h), sum((h >> 64)::HUGEINT) "
            f"FROM (SELECT grp, n_tokens, md5_number(doc_id) AS h FROM {sel}) GROUP BY grp"
        ).fetchall()
    }
    diffs = []
    for g in phase.groups:
        if g.target_tokens == 0 or g.selection is None:
            continue
        n, tok, h = got.get(g.id, (0, 0, None))
        if n == 0 and g.documents > 0:
            diffs.append(
                f"phase {phase.name!r} group {g.id!r}: no longer exists (0 documents selected)"
            )
        elif (n, tok, h) != (g.documents, g.tokens, g.selection.doc_ids_hash):
            diffs.append(
                f"phase {phase.name!r} group {g.id!r}: documents {g.documents} -> {n}, tokens "
                f"{g.tokens} -> {tok}"
                + ("" if h == g.selection.doc_ids_hash else ", doc_ids_hash differs")
            )
    if diffs:
        raise ReproductionError(
            f"the workspace does not reproduce the manifest: {len(diffs)} group(s) differ:\n  "
            + "\n  ".join(diffs),
            diffs,
        )


def _phase_samples(
    con: Any, phase: Phase, *, seed: int, sel: str, smp: str, verify: bool
) -> pd.DataFrame:
    """Fill temp table ``smp`` (group, doc_id, n_tokens, repeats) for one phase; return per-group
    stats.
    """
    _select_groups(con, phase, sel)
    if verify:
        _verify_selected(con, phase, sel)
    _sample_groups(con, phase, seed=seed, sel=sel, smp=smp)
    stats = _group_stats(con, sel, smp)
    _check_groups(phase, stats)
    stats.insert(0, "phase", phase.name)
    return stats


def _select_groups(con: Any, phase: Phase, sel: str) -> None:
    """Temp table ``sel`` (grp, doc_id, n_tokens, target): every group's selected documents."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {sel} (grp VARCHAR, doc_id VARCHAR, n_tokens BIGINT, "
        "target BIGINT)"
    )
    for g in phase.groups:
        if g.target_tokens == 0:
            continue
        if g.selection is None:
            raise MixtureError(
                f"phase {phase.name!r} group {g.id!r}: no selection recorded; cannot materialise it"
            )
        _check_select(
            con, g.selection.sql, what=f"phase {phase.name!r} group {g.id!r} selection.sql"
        )
        con.execute(
            f"INSERT INTO {sel} SELECT ?, doc_id, coalesce(n_tokens, 0), ? FROM "
            f"({g.selection.sql}) AS s",
            [g.id, g.target_tokens, *g.selection.params],
        )


def _sample_groups(con: Any, phase: Phase, *, seed: int, sel: str, smp: str) -> None:
    """Temp table ``smp``: whole epochs of each group, then the seeded prefix of one more
    pass that reaches its target."""
    key = f"{seed}:{phase.name}:subset:"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {smp} AS
        WITH a AS (
            SELECT grp, sum(n_tokens) AS avail, any_value(target) AS target FROM {sel} GROUP BY grp
        ), t AS (
            SELECT grp, avail, target,
                   CASE WHEN avail > 0 THEN target // avail ELSE 0 END AS passes,
                   target - (CASE WHEN avail > 0 THEN target // avail ELSE 0 END) * avail AS rem
            FROM a
        ), whole AS (   -- groups used for whole epochs only: no ordering needed
            SELECT s.grp, s.doc_id, s.n_tokens, CAST(t.passes AS BIGINT) AS repeats
            FROM {sel} s JOIN t USING (grp) WHERE t.rem = 0 AND t.passes > 0
        ), o AS (       -- groups with a fractional epoch: seeded order, running token sum
            SELECT s.grp, s.doc_id, s.n_tokens, t.passes, t.rem,
                   sum(s.n_tokens) OVER (
                       PARTITION BY s.grp
                       ORDER BY md5_number(? || s.grp || ':' || s.doc_id), s.doc_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum
            FROM {sel} s JOIN t USING (grp) WHERE t.rem > 0
        ), part AS (
            SELECT grp, doc_id, n_tokens,
                   CAST(passes + CASE WHEN cum - n_tokens < rem THEN 1 ELSE 0 END AS BIGINT)
                       AS repeats
            FROM o
        )
        SELECT grp AS "group", doc_id, n_tokens, repeats FROM whole
        UNION ALL
        SELECT grp AS "group", doc_id, n_tokens, repeats FROM part WHERE repeats > 0
        """,
        [key],
    )


def _group_stats(con: Any, sel: str, smp: str) -> pd.DataFrame:
    """Per group: target, available tokens/docs, sampled docs, rows and realised tokens."""
    return con.execute(
        f"""
        SELECT a.grp AS "group", any_value(a.target) AS target_tokens,
               CAST(sum(a.n_tokens) AS BIGINT) AS available_tokens,
               count(*) AS available_docs,
               CAST(coalesce(any_value(m.docs), 0) AS BIGINT) AS sampled_docs,
               CAST(coalesce(any_value(m.rows), 0) AS BIGINT) AS rows,
               CAST(coalesce(any_value(m.toks), 0) AS BIGINT) AS realised_tokens
        FROM {sel} a LEFT JOIN (
            SELECT "group", count(*) AS docs, sum(repeats) AS rows, sum(repeats * n_tokens) AS toks
            FROM {smp} GROUP BY "group") m ON m."group" = a.grp
        GROUP BY a.grp ORDER BY a.grp
        """
    ).df()


def _check_groups(phase: Phase, stats: pd.DataFrame) -> None:
    """A group with a target but no document, or no token, selected: one line."""
    for g in phase.groups:
        if g.target_tokens > 0 and g.id not in set(stats["group"]):
            raise MixtureError(
                f"phase {phase.name!r} group {g.id!r}: the selection returns no documents"
            )
        if (
            g.target_tokens > 0
            and int(stats.loc[stats["group"] == g.id, "available_tokens"].iloc[0]) == 0
        ):
            raise MixtureError(
                f"phase {phase.name!r} group {g.id!r}: the selected documents hold no tokens"
            )


def _shard_ranges(
    con: Any, rows_t: str, *, shard_rows: int | None, shard_tokens: int | None
) -> list[tuple[int, int]]:
    """Inclusive rowid ranges of the shards of ``rows_t`` (rows in output order)."""
    (n,) = con.execute(f"SELECT count(*) FROM {rows_t}").fetchone()
    if n == 0:
        return []
    if shard_tokens is None:
        size = int(shard_rows or 1)
        return [(lo, min(lo + size, n) - 1) for lo in range(0, n, size)]
    rows = con.execute(
        f"""
        SELECT shard, min(rowid), max(rowid) FROM (
            SELECT rowid, coalesce(sum(n_tokens) OVER (
                   ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING
                   AND 1 PRECEDING), 0) // {int(shard_tokens)} AS shard
            FROM {rows_t}) GROUP BY shard ORDER BY shard
        """
    ).fetchall()
    return [(int(lo), int(hi)) for _, lo, hi in rows]


def open_for_materialize(workspace: Any, *, snapshot: int | None = None, threads: int = 2) -> Any:
    """A read-only connection on the workspace lake *with* file access (and object-store
    credentials from the environment), pinned to `snapshot` when given.

    :func:`materialize` writes files with ``COPY``, which the locked reader of user SQL
    refuses; this connection can read the workspace and the corpus and write the shards.
    """
    from analytics.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    con = ws.connect(read_only=True, snapshot=snapshot, remote=True)
    con.execute(f"SET threads={int(threads)}")
    return con


def _partial_key(manifest: Manifest, options: Mapping[str, Any]) -> str:
    """What a partial output was made for: the manifest and every option that shapes it."""
    from .manifest import manifest_to_dict

    blob = json.dumps(
        {"manifest": manifest_to_dict(manifest), **options}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: cached connections of a worker (process pool, Ray task) by (workspace, snapshot)
_UNIT_CONS: dict[tuple[str, int | None], Any] = {}


def _unit_con(payload: Mapping[str, Any]) -> Any:
    if payload.get("con") is not None:  # in-process, on the caller's own connection
        return payload["con"]
    key = (payload["ws_path"], payload["snapshot"])
    con = _UNIT_CONS.get(key)
    if con is None:
        con = _UNIT_CONS[key] = open_for_materialize(
            payload["ws_path"], snapshot=payload["snapshot"], threads=1
        )
    return con


def _close_unit_cons() -> None:
    while _UNIT_CONS:
        _, con = _UNIT_CONS.popitem()
        try:
            con.close()
        except Exception:  # pragma: no cover - already closed
            pass


def write_shard(payload: Mapping[str, Any], unit: Mapping[str, Any]) -> str:
    """One materialisation unit (any engine): write the rows ``lo..hi`` of a phase's plan,
    joined with their columns and text, to ``unit['file']`` (through a temporary name, so a
    shard file exists only complete)."""
    con = _unit_con(payload)
    final = Path(unit["file"])
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    con.execute(
        f"COPY ({payload['select']} WHERE x.pos BETWEEN {int(unit['lo'])} AND {int(unit['hi'])}"
        f" ORDER BY x.pos) TO {_sql_str(tmp)} ({payload['copy_opts']})".replace(
            "{PLAN}", _sql_str(Path(unit["plan"]))
        )
    )
    os.replace(tmp, final)
    return final.name


def materialize(
    con: Any,
    manifest: Manifest,
    out_dir: str | os.PathLike[str],
    *,
    fmt: Format = "jsonl",
    shard_rows: int | None = 100_000,
    shard_tokens: int | None = None,
    columns: Sequence[str] = ("text",),
    phases: Sequence[str] | None = None,
    seed: int | None = None,
    table: str | None = None,
    verify: bool = True,
    overwrite: bool = False,
    derived: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    engine: str = "in-process",
    workers: int | None = None,
    ray_address: str | None = None,
) -> MaterializeResult:
    """Write the manifest's documents (with repeats) to ``out_dir/<phase>/part-NNNNN.<ext>``.

    ``con`` is a DuckDB connection that may write files (not a workspace reader, whose
    external access is off), or a workspace (its path or a Workspace), opened with
    :func:`open_for_materialize`.

    Each output row holds ``doc_id, group, repeat`` (0-based copy index), ``n_tokens`` and
    the requested ``columns`` of ``table``. ``shard_tokens`` (if given) takes precedence over
    ``shard_rows``. ``seed`` defaults to the manifest's seed. With ``verify`` (default) the
    corpus snapshot hash must match (else :func:`~analytics.mixture.selection.reproduce`
    raises, naming the groups that differ) and each materialised group's documents, tokens
    and doc_ids_hash are checked on the collected selection before anything is written
    (groups with 0 target tokens are not materialised and not checked).
    ``out_dir`` must not exist unless ``overwrite``; nothing appears there until the end.
    ``derived`` (name -> SQL template, see :mod:`.selection`) resolves an ``order_column`` that
    is not a column of ``table`` (e.g. a signal's score). ``progress(stage, done, total)`` is
    called after each phase's selection and each shard written; an exception it raises (a
    cancelled job) aborts the run and leaves nothing behind.

    Shards are engine units (:func:`analytics.engine.map_units`): ``engine`` ``in-process``
    writes them one after the other here, ``local`` on a process pool of ``workers``
    processes, ``ray`` as Ray tasks on ``ray_address`` (the workspace and ``out_dir`` must be
    reachable from every node). Every engine writes the same bytes. The plan (which rows go to
    which shard) and the finished shards are kept in a partial directory beside ``out_dir``;
    a killed process (SIGKILL, power loss) leaves it there and the same call resumes at the
    first unfinished shard (an exception, a cancel included, removes it).
    """
    from analytics.engine import UNIT_ENGINES, check_engine, check_ray_address
    from analytics.workspace import Workspace

    check_engine(engine, UNIT_ENGINES)
    if engine == "ray":
        check_ray_address(ray_address)  # a HOST:PORT that does not answer: before any write
    opts = dict(
        fmt=fmt, shard_rows=shard_rows, shard_tokens=shard_tokens, columns=columns,
        phases=phases, seed=seed, table=table, verify=verify, overwrite=overwrite,
        derived=derived, progress=progress, engine=engine, workers=workers,
        ray_address=ray_address,
    )  # fmt: skip
    if isinstance(con, (str, os.PathLike, Workspace)):
        ws = con if isinstance(con, Workspace) else Workspace.open(con)
        snapshot = getattr(manifest, "corpus_snapshot_id", None)
        own = open_for_materialize(ws, snapshot=snapshot)
        try:
            return _materialize(
                own, manifest, out_dir, unit_source=(str(ws.path), snapshot), **opts
            )
        finally:
            own.close()
    if engine != "in-process":
        raise MixtureError(
            f"engine {engine!r}: its workers open the workspace themselves; pass the "
            "workspace (or its path), not a connection"
        )
    return _materialize(con, manifest, out_dir, unit_source=None, **opts)


def _materialize(
    con: Any,
    manifest: Manifest,
    out_dir: str | os.PathLike[str],
    *,
    fmt: Format,
    shard_rows: int | None,
    shard_tokens: int | None,
    columns: Sequence[str],
    phases: Sequence[str] | None,
    seed: int | None,
    table: str | None,
    verify: bool,
    overwrite: bool,
    derived: Mapping[str, str] | None,
    progress: Progress | None,
    engine: str,
    workers: int | None,
    ray_address: str | None,
    unit_source: tuple[str, int | None] | None,
) -> MaterializeResult:
    table = _check_options(con, manifest, fmt, table, shard_rows, shard_tokens)
    cols = table_columns(con, table)
    for c in columns:
        if not _IDENT.match(c) or (c not in cols and c != "text"):
            raise SelectionError(f"columns: {c!r} is not a column of {table!r}")
    extra = [c for c in columns if c not in ("doc_id", "n_tokens")]
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise MixtureError(f"out_dir: {out} already exists; pass overwrite=True to replace it")
    wanted = _wanted_phases(manifest, phases)
    if verify and snapshot_hash(con, table=table) != manifest.corpus_snapshot_hash:
        reproduce(con, manifest, strict=True, table=table)  # raises, naming the groups that differ
    s = manifest.seed if seed is None else int(seed)
    for p in manifest.phases:  # an unknown order column fails before anything is written
        if p.name in wanted:
            _order_by(p, cols, derived)

    ext = "jsonl" if fmt == "jsonl" else "parquet"
    copy_opts = "FORMAT json" if fmt == "jsonl" else "FORMAT parquet, COMPRESSION zstd"
    select = _shard_select(table, cols, extra)
    key = _partial_key(
        manifest,
        {"fmt": fmt, "shard_rows": shard_rows, "shard_tokens": shard_tokens,
         "columns": list(columns), "phases": wanted, "seed": s, "table": table,
         "derived": dict(derived or {}), "select": select},
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{key}"
    lock = _lock_partial(out.parent / f".{out.name}.partial-{key}.lock", out)
    report = progress or (lambda stage, done, total: None)
    plan_dir = tmp / ".plan"
    try:
        plan = _load_plan(tmp, key)
        if plan is None:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            plan_dir.mkdir()
            plan = _plan(
                con, manifest, wanted, tmp, plan_dir, key=key, seed=s, table=table, cols=cols,
                derived=derived, verify=verify, shard_rows=shard_rows,
                shard_tokens=shard_tokens, ext=ext, fmt=fmt, extra=extra, report=report,
            )  # fmt: skip
        summary = plan["summary"]
        payload: dict[str, Any] = {"select": select, "copy_opts": copy_opts}
        if unit_source is None:
            payload["con"] = con
        else:
            payload.update(ws_path=unit_source[0], snapshot=unit_source[1])
        _write_shards(tmp, plan, payload, report, engine, workers, ray_address)
        shutil.rmtree(plan_dir, ignore_errors=True)
        _publish(tmp, out, summary)
    except BaseException:  # an error or a cancel leaves nothing; only a kill leaves a plan
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        lock.close()
    return _result(out, summary)


def _check_options(
    con: Any,
    manifest: Manifest,
    fmt: str,
    table: str | None,
    shard_rows: int | None,
    shard_tokens: int | None,
) -> str:
    """Bad format or shard size, or a connection that cannot write files: one line. The table
    read (default: the manifest's)."""
    if fmt not in ("jsonl", "parquet"):
        raise MixtureError(f"fmt: expected 'jsonl' or 'parquet', got {fmt!r}")
    if table is None:
        from analytics.mixture.selection import manifest_table

        table = manifest_table(manifest)
    if shard_tokens is None and (shard_rows is None or int(shard_rows) < 1):
        raise MixtureError(f"shard_rows: expected an integer >= 1, got {shard_rows!r}")
    if shard_tokens is not None and int(shard_tokens) < 1:
        raise MixtureError(f"shard_tokens: expected an integer >= 1, got {shard_tokens!r}")
    try:
        (ext_access,) = con.execute("SELECT current_setting('enable_external_access')").fetchone()
    except Exception:  # pragma: no cover - very old DuckDB
        ext_access = True
    if str(ext_access).lower() in ("false", "0"):
        raise MixtureError(
            "con: this connection cannot write files (external access is disabled, as on a "
            "workspace reader); pass the workspace database path or open_for_materialize(path)"
        )
    return table


def _wanted_phases(manifest: Manifest, phases: Sequence[str] | None) -> list[str]:
    """The phases asked for (default: all), each one of the manifest's."""
    wanted = list(phases) if phases is not None else [p.name for p in manifest.phases]
    known = [p.name for p in manifest.phases]
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise MixtureError(f"phases: unknown phase(s) {unknown}; manifest has {known}")
    return wanted


def _shard_select(table: str, cols: list[str], extra: list[str]) -> str:
    """What a worker selects for a shard: the plan's rows joined with their columns and text
    (``{PLAN}`` stands for the plan file)."""
    extra_sel = "".join(
        ", t.text" if c == "text" and "text" not in cols else f", d.{_quote(c)}" for c in extra
    )
    text_join = (
        " JOIN document_text t ON t.doc_id = x.doc_id"
        if "text" in extra and "text" not in cols
        else ""
    )
    return (
        f'SELECT x.doc_id, x."group", x.rep AS "repeat", x.n_tokens{extra_sel} '
        f"FROM read_parquet({{PLAN}}) x JOIN {_quote(table)} d ON d.doc_id = x.doc_id{text_join}"
    )


def _write_shards(
    tmp: Path,
    plan: dict[str, Any],
    payload: dict[str, Any],
    report: Progress,
    engine: str,
    workers: int | None,
    ray_address: str | None,
) -> None:
    """Write the plan's shards not written yet (a killed run's are kept) on the engine,
    reporting each phase's shards done."""
    from analytics.engine import map_units

    summary, units = plan["summary"], plan["units"]
    for stray in tmp.glob("*/.part-*.tmp"):  # a killed run's unfinished shard
        stray.unlink()
    todo = [u for u in units if not (tmp / u["file"]).exists()]
    per_phase: dict[str, list[int]] = {}
    for u in units:
        per_phase.setdefault(u["phase"], [0, 0])[1] += 1
        if (tmp / u["file"]).exists():
            per_phase[u["phase"]][0] += 1
    for ph in summary["phases"]:
        done, total = per_phase.get(ph["name"], [0, 0])
        report(f"phase {ph['name']}: writing shards", done, total)
    jobs = [
        {"file": str(tmp / u["file"]), "plan": str(tmp / u["plan"]), "lo": u["lo"],
         "hi": u["hi"]}
        for u in todo
    ]  # fmt: skip
    results = map_units(
        write_shard, payload, jobs, engine=engine, workers=workers, ray_address=ray_address
    )
    try:
        for batch in results:
            for i, _name, _secs in batch:
                ph = todo[i]["phase"]
                per_phase[ph][0] += 1
                report(f"phase {ph}: writing shards", *per_phase[ph])
    finally:
        results.close()
        if engine == "in-process":
            _close_unit_cons()


def _publish(tmp: Path, out: Path, summary: dict[str, Any]) -> None:
    """The finished partial directory (with materialize.json) renamed to `out`, replacing
    an older `out` only once the new one is in place."""
    (tmp / "plan.json").unlink(missing_ok=True)
    (tmp / "materialize.json").write_text(
        json.dumps(summary, indent=2, default=int) + "\n", encoding="utf-8"
    )
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _result(out: Path, summary: dict[str, Any]) -> MaterializeResult:
    files = []
    all_stats = []
    for ph in summary["phases"]:
        files += [out / ph["directory"] / f for f in ph["shards"]]
        files.append(out / ph["directory"] / "samples.parquet")
        g = pd.DataFrame(ph["groups"])
        g.insert(0, "phase", ph["name"])
        all_stats.append(g)
    files.append(out / "materialize.json")
    groups = pd.concat(all_stats, ignore_index=True) if all_stats else pd.DataFrame()
    return MaterializeResult(out_dir=out, files=files, groups=groups, summary=summary)


class _Lock:
    def __init__(self, path: Path, fh: Any):
        self.path, self.fh = path, fh

    def close(self) -> None:
        import fcntl

        try:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
        finally:
            self.fh.close()
            self.path.unlink(missing_ok=True)


def _lock_partial(path: Path, out: Path) -> _Lock:
    import fcntl

    fh = path.open("a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise MixtureError(
            f"out_dir: {out} is being materialised by another run (lock {path.name}); "
            "wait for it to finish"
        ) from None
    return _Lock(path, fh)


def _load_plan(tmp: Path, key: str) -> dict[str, Any] | None:
    """The plan of a killed run of the same materialisation, when it was completed."""
    try:
        plan = json.loads((tmp / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return plan if plan.get("key") == key else None


def _plan(
    con: Any,
    manifest: Manifest,
    wanted: list[str],
    tmp: Path,
    plan_dir: Path,
    *,
    key: str,
    seed: int,
    table: str,
    cols: list[str],
    derived: Mapping[str, str] | None,
    verify: bool,
    shard_rows: int | None,
    shard_tokens: int | None,
    ext: str,
    fmt: str,
    extra: list[str],
    report: Progress,
) -> dict[str, Any]:
    """Select, sample and order every phase; write each phase's rows in output order
    (``pos, doc_id, group, rep, n_tokens``) to ``.plan/<phase>.parquet`` and its
    ``samples.parquet``; return the summary and the shard units, saved in ``plan.json``."""
    (pio,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    ordered_scans = str(pio).lower() in ("true", "1")
    tag = uuid.uuid4().hex[:12]
    sel, smp, rows_t = f"_mx_sel_{tag}", f"_mx_smp_{tag}", f"_mx_out_{tag}"
    summary = _summary_head(manifest, seed, fmt, shard_rows, shard_tokens, extra)
    units: list[dict[str, Any]] = []
    try:
        for phase in manifest.phases:
            if phase.name not in wanted:
                continue
            pdir = tmp / _safe_name(phase.name)
            if pdir.exists():  # two phase names that sanitise to the same directory name
                pdir = tmp / f"{_safe_name(phase.name)}-{len(summary['phases'])}"
            pdir.mkdir()
            stage = f"phase {phase.name}"
            report(f"{stage}: selecting", 0, 1)
            stats = _phase_samples(con, phase, seed=seed, sel=sel, smp=smp, verify=verify)
            report(f"{stage}: selecting", 1, 1)
            ranges, plan_f = _plan_rows(
                con, phase, plan_dir / f"{pdir.name}.parquet", smp=smp, rows_t=rows_t,
                seed=seed, table=table, cols=cols, derived=derived, shard_rows=shard_rows,
                shard_tokens=shard_tokens, ordered_scans=ordered_scans,
            )  # fmt: skip
            shard_info = []
            for k, (lo, hi) in enumerate(ranges):
                name = f"part-{k:05d}.{ext}"
                shard_info.append(name)
                units.append(
                    {"phase": phase.name, "file": f"{pdir.name}/{name}",
                     "plan": f".plan/{plan_f.name}", "lo": lo, "hi": hi}
                )  # fmt: skip
            con.execute(
                f'COPY (SELECT doc_id, "group", repeats FROM {smp} ORDER BY "group", doc_id) '
                f"TO {_sql_str(pdir / 'samples.parquet')} (FORMAT parquet, COMPRESSION zstd)"
            )
            summary["phases"].append(
                {
                    "name": phase.name,
                    "directory": pdir.name,
                    "order": phase.order,
                    "shards": shard_info,
                    "groups": json.loads(stats.drop(columns="phase").to_json(orient="records")),
                }
            )
    finally:
        for t in (sel, smp, rows_t):
            try:
                con.execute(f"DROP TABLE IF EXISTS {t}")
            except Exception:  # pragma: no cover - connection already closed
                pass
    plan = {"key": key, "summary": summary, "units": units}
    (tmp / "plan.json").write_text(json.dumps(plan, default=int), encoding="utf-8")
    return plan


def _summary_head(
    manifest: Manifest,
    seed: int,
    fmt: str,
    shard_rows: int | None,
    shard_tokens: int | None,
    extra: list[str],
) -> dict[str, Any]:
    """materialize.json before its phases are planned."""
    return {
        "manifest_snapshot_hash": manifest.corpus_snapshot_hash,
        "seed": seed,
        "format": fmt,
        "shard_rows": None if shard_tokens is not None else int(shard_rows or 0),
        "shard_tokens": shard_tokens,
        "columns": ["doc_id", "group", "repeat", "n_tokens", *extra],
        "phases": [],
    }


def _plan_rows(
    con: Any,
    phase: Phase,
    plan_f: Path,
    *,
    smp: str,
    rows_t: str,
    seed: int,
    table: str,
    cols: list[str],
    derived: Mapping[str, str] | None,
    shard_rows: int | None,
    shard_tokens: int | None,
    ordered_scans: bool,
) -> tuple[list[tuple[int, int]], Path]:
    """The phase's sampled rows (with repeats) in output order, written to `plan_f` as
    ``pos, doc_id, group, rep, n_tokens``; (the shards' row ranges, `plan_f`)."""
    order_sql, _ = _order_by(phase, cols, derived)
    qsel = (
        f", {_quality_expr(phase, cols, derived, 'd')} AS q"
        if phase.order in ("ascending-quality", "descending-quality")
        else ""
    )
    okey = f"{seed}:{phase.name}:order:"
    params = [okey] if "?" in order_sql else []
    # one sort: the table is created in output order, so rowid is the output position
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {rows_t} AS
        SELECT * FROM (
            SELECT x.doc_id, x."group", x.n_tokens,
                   unnest(range(x.repeats)) AS rep{qsel}
            FROM {smp} x JOIN {_quote(table)} d
                 ON d.doc_id = x.doc_id
        ) e ORDER BY {order_sql}
        """,
        params,
    )
    ranges = _shard_ranges(con, rows_t, shard_rows=shard_rows, shard_tokens=shard_tokens)
    order_tail = "" if ordered_scans else " ORDER BY rowid"
    con.execute(
        f'COPY (SELECT rowid AS pos, doc_id, "group", rep, n_tokens FROM {rows_t}'
        f"{order_tail}) TO {_sql_str(plan_f)} (FORMAT parquet, COMPRESSION zstd)"
    )
    return ranges, plan_f
