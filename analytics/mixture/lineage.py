"""Lineage: which runs and checkpoints were trained on which mixture version.

One table, ``mixture_runs`` (workspace migration 6): a row links a saved mixture version
(``name``, ``version``) to a run name (the name of ``mixscope checkpoints add``, or a proxy
run of a swarm), with its ``kind`` (``trained`` or ``proxy``), an optional checkpoint path,
a note and free-form JSON ``metrics``. A run can be linked to several mixture versions (a
multi-stage training) and a version to many runs.

The API other code calls (e.g. a proxy swarm registering its runs), all inside a
``ws.write(job=...)`` transaction::

    from analytics.mixture.lineage import link_run
    link_run(con, "web-mix", 2, "proxy-07", kind="proxy", metrics={"bpb/python-doc": 1.21})

Reads: :func:`runs_of` (the runs of a mixture version), :func:`mixtures_of` (the versions a
run was trained on), :func:`linked_versions` (every version with at least one run) and
:func:`compare_mixtures` (RankMe, alpha-ReQ and per-source bits per byte of the runs of two
mixture versions side by side, from the stored geometry results).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from analytics.db import table_exists

from .errors import MixtureError
from .store import parse_ref  # noqa: F401  (re-exported: lineage callers parse refs)

SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS mixture_runs (
        name VARCHAR NOT NULL, version INTEGER NOT NULL, run VARCHAR NOT NULL,
        kind VARCHAR NOT NULL, checkpoint_path VARCHAR, note VARCHAR, metrics JSON,
        linked_at TIMESTAMPTZ)""",
]

KINDS = ("trained", "proxy")
_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}$")
COLUMNS = ("name", "version", "run", "kind", "checkpoint_path", "note", "metrics", "linked_at")


def ensure_schema(con: Any) -> None:
    """Create ``mixture_runs`` if missing (the migration does this for workspaces)."""
    for ddl in SCHEMA:
        con.execute(ddl)


def _has(con: Any, table: str) -> bool:
    return table_exists(con, table)


def resolve(con: Any, name: str, version: int | None = None) -> int:
    """The saved version ``name@version`` (the latest when None); a :class:`MixtureError`
    naming it when there is no such mixture version."""
    if not _has(con, "mixtures"):
        raise MixtureError(f"mixture: no saved mixture {name!r} (the workspace has none)")
    if version is None:
        row = con.execute("SELECT max(version) FROM mixtures WHERE name = ?", [name]).fetchone()
        if row is None or row[0] is None:
            raise MixtureError(f"mixture: no saved mixture {name!r}")
        return int(row[0])
    row = con.execute(
        "SELECT count(*) FROM mixtures WHERE name = ? AND version = ?", [name, int(version)]
    ).fetchone()
    if not row or not row[0]:
        known = [
            int(v)
            for (v,) in con.execute(
                "SELECT version FROM mixtures WHERE name = ? ORDER BY version", [name]
            ).fetchall()
        ]
        raise MixtureError(
            f"mixture: no saved mixture {name}@{version}"
            + (f" (versions: {', '.join(map(str, known))})" if known else "")
        )
    return int(version)


def link_run(
    con: Any,
    name: str,
    version: int | None,
    run: str,
    *,
    kind: str = "trained",
    checkpoint_path: str | None = None,
    note: str | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> int:
    """Record that ``run`` was trained on mixture ``name@version`` (latest when None).

    Idempotent per (name, version, run): linking again replaces the row. Returns the
    version linked. Raises :class:`MixtureError` for an unknown mixture version, a bad run
    name or kind.
    """
    if not _RUN.match(run or ""):
        raise MixtureError(
            f"run: {run!r} must be 1-64 letters, digits, '.', '_', '-' or '@', starting with a "
            "letter or digit"
        )
    if kind not in KINDS:
        raise MixtureError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    v = resolve(con, name, version)
    ensure_schema(con)
    con.execute(
        "DELETE FROM mixture_runs WHERE name = ? AND version = ? AND run = ?", [name, v, run]
    )
    con.execute(
        "INSERT INTO mixture_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            name,
            v,
            run,
            kind,
            None if checkpoint_path is None else str(checkpoint_path),
            note,
            json.dumps(dict(metrics), default=float) if metrics else None,
            _dt.datetime.now(_dt.UTC),
        ],
    )
    return v


def unlink_run(con: Any, name: str, version: int, run: str) -> int:
    """Remove the link; returns the number of rows removed (0 or 1)."""
    if not _has(con, "mixture_runs"):
        return 0
    (n,) = con.execute(
        "SELECT count(*) FROM mixture_runs WHERE name = ? AND version = ? AND run = ?",
        [name, int(version), run],
    ).fetchone()
    con.execute(
        "DELETE FROM mixture_runs WHERE name = ? AND version = ? AND run = ?",
        [name, int(version), run],
    )
    return int(n)


def _links(con: Any, where: str, params: list[Any]) -> pd.DataFrame:
    if not _has(con, "mixture_runs"):
        return pd.DataFrame(columns=[*COLUMNS, "checkpoints", "registered"])
    registered = _has(con, "geometry_run_checkpoints")
    ck = (
        "(SELECT count(*) FROM geometry_run_checkpoints c WHERE c.run = m.run)"
        if registered
        else "0"
    )
    df = con.execute(
        f"""SELECT name, version, run, kind, checkpoint_path, note, metrics::VARCHAR AS metrics,
                   linked_at, {ck} AS checkpoints
            FROM mixture_runs m WHERE {where} ORDER BY name, version, kind DESC, run""",
        params,
    ).df()
    df["registered"] = df["checkpoints"] > 0
    return df


def runs_of(con: Any, name: str, version: int | None = None) -> pd.DataFrame:
    """The runs linked to ``name@version`` (every version of ``name`` when None), with the
    number of checkpoints registered under each run (0: not registered for geometry)."""
    if version is None:
        return _links(con, "name = ?", [name])
    return _links(con, "name = ? AND version = ?", [name, int(version)])


def mixtures_of(con: Any, run: str) -> pd.DataFrame:
    """The mixture versions ``run`` is linked to."""
    return _links(con, "run = ?", [run])


def linked_versions(con: Any) -> list[str]:
    """``NAME@VERSION`` of every mixture version with at least one linked run."""
    if not _has(con, "mixture_runs"):
        return []
    return [
        f"{n}@{v}"
        for n, v in con.execute(
            "SELECT DISTINCT name, version FROM mixture_runs ORDER BY name, version"
        ).fetchall()
    ]


def _run_summary(cur: Any, run: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """RankMe/alpha-ReQ (last layer, all probe texts) and per-group bpb of the run's last
    computed checkpoint, from its newest geometry config."""
    from analytics.geometry import views

    out: dict[str, Any] = {"run": run}
    cfg = views.configs(cur, run=run)
    if cfg.empty:
        return {
            **out,
            "status": "no geometry results (run `mixscope geometry RUN`)",
        }, pd.DataFrame()
    config = str(cfg["config"].iloc[0])
    m = views.metrics(cur, run=run, config=config)
    loss = views.loss(cur, run=run, config=config)
    steps = pd.concat([m["step"], loss["step"]]).dropna()
    step = None if steps.empty else int(steps.max())
    out.update({"config": config, "step": step, "status": "ok"})
    if not m.empty:
        mm = m if step is None else m[m["step"] == step]
        if not mm.empty:
            out["checkpoint"] = str(mm["checkpoint"].iloc[0])
            layer = int(mm["layer"].max())
            sub = mm[(mm["layer"] == layer) & (mm["group"] == "all")]
            out["layer"] = layer
            for key, col in (
                ("rankme/covariance", "rankme"),
                ("alpha_req/covariance", "alpha_req"),
            ):
                v = sub.loc[sub["key"] == key, "value"]
                out[col] = float(v.iloc[0]) if len(v) else None
    bpb = pd.DataFrame()
    if not loss.empty:
        ll = loss if step is None else loss[loss["step"] == step]
        bpb = ll[["group", "bits_per_byte"]].copy()
    return out, bpb


def compare_mixtures(cur: Any, a: str, b: str) -> dict[str, pd.DataFrame]:
    """The runs of mixture versions ``a`` and ``b`` (``NAME@VERSION``) side by side.

    Returns ``summary`` (one row per run: mixture, run, kind, checkpoint, step, layer, RankMe
    (covariance variant), alpha-ReQ, at the run's last computed checkpoint and last layer,
    over all probe texts, from its newest geometry config) and ``bpb`` (rows: probe group,
    e.g. source; one column of bits per byte per ``mixture · run``). Runs without geometry
    results are listed with a status saying so.
    """
    rows, cols = [], {}
    for ref in (a, b):
        name, version = parse_ref(ref)
        v = resolve(cur, name, version)
        for r in runs_of(cur, name, v).itertuples(index=False):
            summary, bpb = _run_summary(cur, r.run)
            rows.append({"mixture": f"{name}@{v}", "kind": r.kind, **summary})
            if not bpb.empty:
                cols[f"{name}@{v} · {r.run}"] = bpb.set_index("group")["bits_per_byte"]
    order = ["mixture", "run", "kind", "checkpoint", "step", "layer", "rankme", "alpha_req"]
    summary = pd.DataFrame(rows)
    for c in [*order, "status"]:
        if c not in summary.columns:
            summary[c] = None
    summary = summary[[*order, "status"]]
    bpb = pd.DataFrame(cols)
    bpb.index.name = "group"
    return {"summary": summary, "bpb": bpb.reset_index() if not bpb.empty else bpb}


__all__ = [
    "KINDS",
    "SCHEMA",
    "compare_mixtures",
    "ensure_schema",
    "link_run",
    "linked_versions",
    "mixtures_of",
    "parse_ref",
    "resolve",
    "runs_of",
    "unlink_run",
]
