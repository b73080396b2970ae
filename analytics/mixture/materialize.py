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
    if verify:
        _verify_selected(con, phase, sel)
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
    stats = con.execute(
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
    stats.insert(0, "phase", phase.name)
    return stats


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
) -> MaterializeResult:
    """Write the manifest's documents (with repeats) to ``out_dir/<phase>/part-NNNNN.<ext>``.

    ``con`` is a DuckDB connection that may write files (not a workspace reader, whose
    external access is off) or the path of a workspace database, opened with
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
    """
    from analytics.workspace import Workspace

    if isinstance(con, (str, os.PathLike, Workspace)):
        own = open_for_materialize(con, snapshot=getattr(manifest, "corpus_snapshot_id", None))
        try:
            return materialize(
                own,
                manifest,
                out_dir,
                fmt=fmt,
                shard_rows=shard_rows,
                shard_tokens=shard_tokens,
                columns=columns,
                phases=phases,
                seed=seed,
                table=table,
                verify=verify,
                overwrite=overwrite,
                derived=derived,
                progress=progress,
            )
        finally:
            own.close()
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
    cols = table_columns(con, table)
    for c in columns:
        if not _IDENT.match(c) or (c not in cols and c != "text"):
            raise SelectionError(f"columns: {c!r} is not a column of {table!r}")
    extra = [c for c in columns if c not in ("doc_id", "n_tokens")]
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise MixtureError(f"out_dir: {out} already exists; pass overwrite=True to replace it")
    wanted = list(phases) if phases is not None else [p.name for p in manifest.phases]
    known = [p.name for p in manifest.phases]
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise MixtureError(f"phases: unknown phase(s) {unknown}; manifest has {known}")
    if verify and snapshot_hash(con, table=table) != manifest.corpus_snapshot_hash:
        reproduce(con, manifest, strict=True, table=table)  # raises, naming the groups that differ
    s = manifest.seed if seed is None else int(seed)
    (pio,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    ordered_scans = str(pio).lower() in ("true", "1")

    tag = uuid.uuid4().hex[:12]
    sel, smp, rows_t = f"_mx_sel_{tag}", f"_mx_smp_{tag}", f"_mx_out_{tag}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{tag}"
    tmp.mkdir()
    ext = "jsonl" if fmt == "jsonl" else "parquet"
    copy_opts = "FORMAT json" if fmt == "jsonl" else "FORMAT parquet, COMPRESSION zstd"
    files: list[Path] = []
    all_stats = []
    summary: dict[str, Any] = {
        "manifest_snapshot_hash": manifest.corpus_snapshot_hash,
        "seed": s,
        "format": fmt,
        "shard_rows": None if shard_tokens is not None else int(shard_rows or 0),
        "shard_tokens": shard_tokens,
        "columns": ["doc_id", "group", "repeat", "n_tokens", *extra],
        "phases": [],
    }
    report = progress or (lambda stage, done, total: None)
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
            stats = _phase_samples(con, phase, seed=s, sel=sel, smp=smp, verify=verify)
            report(f"{stage}: selecting", 1, 1)
            order_sql, _ = _order_by(phase, cols, derived)
            qsel = (
                f", {_quality_expr(phase, cols, derived, 'd')} AS q"
                if phase.order in ("ascending-quality", "descending-quality")
                else ""
            )
            extra_sel = "".join(
                ", t.text" if c == "text" and "text" not in cols else f", d.{_quote(c)}"
                for c in extra
            )
            text_join = (
                " JOIN document_text t ON t.doc_id = x.doc_id"
                if "text" in extra and "text" not in cols
                else ""
            )
            okey = f"{s}:{phase.name}:order:"
            params = [okey] if "?" in order_sql else []
            # one sort: the table is created in output order, so rowid is the output position
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {rows_t} AS
                SELECT * FROM (
                    SELECT x.doc_id, x."group", x.n_tokens,
                           unnest(range(x.repeats)) AS rep{qsel}{extra_sel}
                    FROM {smp} x JOIN {_quote(table)} d ON d.doc_id = x.doc_id{text_join}
                ) e ORDER BY {order_sql}
                """,
                params,
            )
            ranges = _shard_ranges(con, rows_t, shard_rows=shard_rows, shard_tokens=shard_tokens)
            out_cols = 'doc_id, "group", rep AS "repeat", n_tokens' + "".join(
                f", {_quote(c)}" for c in extra
            )
            order_tail = "" if ordered_scans else " ORDER BY rowid"
            shard_info = []
            report(f"{stage}: writing shards", 0, len(ranges))
            for k, (lo, hi) in enumerate(ranges):
                f = pdir / f"part-{k:05d}.{ext}"
                con.execute(
                    f"COPY (SELECT {out_cols} FROM {rows_t} WHERE rowid BETWEEN {lo} AND "
                    f"{hi}{order_tail}) "
                    f"TO {_sql_str(f)} ({copy_opts})"
                )
                files.append(f)
                shard_info.append(f.name)
                report(f"{stage}: writing shards", k + 1, len(ranges))
            samples_f = pdir / "samples.parquet"
            con.execute(
                f'COPY (SELECT doc_id, "group", repeats FROM {smp} ORDER BY "group", doc_id) '
                f"TO {_sql_str(samples_f)} (FORMAT parquet, COMPRESSION zstd)"
            )
            files.append(samples_f)
            all_stats.append(stats)
            summary["phases"].append(
                {
                    "name": phase.name,
                    "directory": pdir.name,
                    "order": phase.order,
                    "shards": shard_info,
                    "groups": stats.drop(columns="phase").to_dict(orient="records"),
                }
            )
        (tmp / "materialize.json").write_text(
            json.dumps(summary, indent=2, default=int) + "\n", encoding="utf-8"
        )
        files.append(tmp / "materialize.json")
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{tag}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for t in (sel, smp, rows_t):
            try:
                con.execute(f"DROP TABLE IF EXISTS {t}")
            except Exception:  # pragma: no cover - connection already closed
                pass
    final_files = [out / f.relative_to(tmp) for f in files]
    groups = pd.concat(all_stats, ignore_index=True) if all_stats else pd.DataFrame()
    return MaterializeResult(out_dir=out, files=final_files, groups=groups, summary=summary)
