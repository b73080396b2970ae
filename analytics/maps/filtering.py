"""Map clusters and map selections as DocFilter conditions.

Two condition kinds, resolved into SQL over workspace tables (so a condition works on every
page, in `mixscope sql`, and in a mixture's selection SQL):

* **cluster**: `Condition("cluster", <map_id | "latest">, "cluster", op, value)`, op `eq`,
  `ne` or `in` (value: a cluster number, or for `in` a list / comma-separated numbers; -1 is
  HDBSCAN's noise). URL form: `c=cluster.3f2a9c1b2d4e5f60.cluster.in.0,4`. It becomes

      doc_id IN (SELECT doc_id FROM doc_clusters WHERE map_id = ? AND cluster IN (...))

  "latest" is the most recently published map (largest `maps.created_at`, ties by map_id,
  among maps with rows in `doc_clusters`; the same definition as the mixture builder's
  `cluster` group), looked up inside the SQL so a shared link follows the newest map.
  Documents that are not on the map (a map of a sample) never match, `ne` included.

* **selection**: `Condition("selection", <selection_id>, "doc_id", "in", "")`, URL form
  `c=selection.5be0c5d1a2f3e4b6.doc_id.in.`. A selection (a lasso/box on the Map page, a set of
  search results) is stored once by `store_selection` in the tables `selections` /
  `selection_docs`, keyed by `selection_id` = the first 16 hex digits of sha256 over its
  sorted, distinct doc ids (so the same documents always give the same id and storing them
  again writes nothing). The condition is

      doc_id IN (SELECT doc_id FROM selection_docs WHERE selection_id = ?)

  and the URL stays short however many documents were selected. An id that is not stored
  in the workspace matches no document (`selection_info` tells the pages so).

  A selection can also be *kept* in this process only (`keep_selection`: a viewer's
  selection, which must not write to the workspace). Its condition is the same; it resolves
  to `doc_id IN (SELECT unnest(?::VARCHAR[]))` over the kept ids while the process holds
  them (the newest MAX_KEPT_SELECTIONS are kept).

Values are always bound parameters; map and selection ids must be hexadecimal before they
are accepted (they are bound too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from analytics.db import table_exists
from analytics.errors import MixscopeError
from analytics.filters import Condition, DocFilter, register_condition

#: selection tables (appended to the maps migration)
SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS selections(
        selection_id VARCHAR NOT NULL, n_docs BIGINT, origin JSON, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS selection_docs(
        selection_id VARCHAR NOT NULL, doc_id VARCHAR NOT NULL)""",
]

_HEX_ID = re.compile(r"^[0-9a-f]{8,64}$")
_CLUSTER_OPS = {"eq": "=", "ne": "<>"}
SELECTION_ID_CHARS = 16

#: the newest published map (mirrors analytics.mixture.builder.latest_map_id)
LATEST_MAP_SQL = (
    "coalesce((SELECT map_id FROM maps WHERE map_id IN (SELECT DISTINCT map_id FROM "
    "doc_clusters) ORDER BY created_at DESC NULLS LAST, map_id DESC LIMIT 1), "
    "(SELECT max(map_id) FROM doc_clusters))"
)


class MapConditionError(MixscopeError):
    """A cluster/selection condition with a malformed id, column, operator or value."""


# ---------------------------------------------------------------------- resolvers
def _cluster_numbers(value: Any, where: str) -> list[int]:
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        items = [v.strip() for v in str(value if value is not None else "").split(",")]
    out = []
    for v in items:
        if v == "":
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise MapConditionError(
                f"filter condition {where}: expected cluster numbers, got {v!r}"
            ) from None
        if not f.is_integer():
            raise MapConditionError(
                f"filter condition {where}: cluster numbers are whole numbers, got {v!r}"
            )
        out.append(int(f))
    if not out:
        raise MapConditionError(f"filter condition {where}: give at least one cluster number")
    return out


@register_condition("cluster")
def resolve_cluster_condition(cond: Condition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL predicate, params) of a cluster condition; see the module docstring."""
    where = f"cluster.{cond.name}"
    if cond.column not in ("", "cluster"):
        raise MapConditionError(
            f"filter condition {where}: the column of a cluster condition is 'cluster', "
            f"not {cond.column!r}"
        )
    if cond.name == "latest":
        map_sql, map_params = LATEST_MAP_SQL, []
    elif _HEX_ID.match(cond.name):
        map_sql, map_params = "?", [cond.name]
    else:
        raise MapConditionError(
            f"filter condition {where}: expected a map id (hexadecimal) or 'latest'"
        )
    if cond.op == "in":
        test, value = (
            "cluster IN (SELECT unnest(?::INTEGER[]))",
            _cluster_numbers(cond.value, where),
        )
    elif cond.op in _CLUSTER_OPS:
        nums = _cluster_numbers(cond.value, where)
        if len(nums) != 1:
            raise MapConditionError(f"filter condition {where}: {cond.op} takes one cluster")
        test, value = f"cluster {_CLUSTER_OPS[cond.op]} ?", nums[0]
    else:
        raise MapConditionError(
            f"filter condition {where}: a cluster condition takes eq, ne or in, not {cond.op!r}"
        )
    sql = f"{prefix}doc_id IN (SELECT doc_id FROM doc_clusters WHERE map_id = {map_sql} AND {test})"
    return sql, [*map_params, value]


@register_condition("selection")
def resolve_selection_condition(cond: Condition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL predicate, params) of a stored selection; see the module docstring. The op may be
    `in` or `eq` (both mean membership); the value is ignored."""
    where = f"selection.{cond.name}"
    if not _HEX_ID.match(cond.name):
        raise MapConditionError(f"filter condition {where}: expected a selection id (hex)")
    if cond.column not in ("", "doc_id"):
        raise MapConditionError(
            f"filter condition {where}: the column of a selection is 'doc_id', not {cond.column!r}"
        )
    if cond.op not in ("in", "eq"):
        raise MapConditionError(
            f"filter condition {where}: a selection takes 'in', not {cond.op!r}"
        )
    kept = kept_selection(cond.name)
    if kept is not None:
        return f"{prefix}doc_id IN (SELECT unnest(?::VARCHAR[]))", [list(kept)]
    sql = f"{prefix}doc_id IN (SELECT doc_id FROM selection_docs WHERE selection_id = ?)"
    return sql, [cond.name]


# ---------------------------------------------------------------------- conditions
def cluster_condition(map_id: str, clusters: int | Iterable[int]) -> Condition:
    """The condition "documents in these clusters of map `map_id`" (or "latest")."""
    nums = [int(clusters)] if isinstance(clusters, int) else [int(c) for c in clusters]
    if not nums:
        raise MapConditionError("pick at least one cluster")
    cond = (
        Condition("cluster", map_id, "cluster", "eq", str(nums[0]))
        if len(nums) == 1
        else Condition("cluster", map_id, "cluster", "in", ",".join(map(str, nums)))
    )
    resolve_cluster_condition(cond)  # validate now, not when a page first uses it
    return cond


def selection_condition(selection_id: str) -> Condition:
    """The condition "documents of stored selection `selection_id`"."""
    cond = Condition("selection", selection_id, "doc_id", "in", "")
    resolve_selection_condition(cond)
    return cond


def with_condition(flt: DocFilter, cond: Condition) -> DocFilter:
    """`flt` with `cond` replacing every condition of the same kind (one selection and one
    cluster choice at a time; other conditions are kept)."""
    kept = tuple(c for c in flt.conditions if c.kind != cond.kind)
    return flt.with_(conditions=(*kept, cond))


# ---------------------------------------------------------------------- selections
@dataclass(frozen=True)
class Selection:
    selection_id: str
    n_docs: int
    created: bool  # False when the same documents were stored before


def _distinct_ids(doc_ids: Sequence[str] | pa.Array | Iterable[str]) -> list[str]:
    if isinstance(doc_ids, pa.ChunkedArray | pa.Array):
        doc_ids = doc_ids.to_pylist()
    ids = sorted({str(d) for d in doc_ids if d is not None})
    return ids


def selection_id(doc_ids: Sequence[str] | pa.Array | Iterable[str]) -> str:
    """sha256 over the sorted distinct ids (each followed by a newline), first 16 hex digits."""
    h = hashlib.sha256()
    for d in _distinct_ids(doc_ids):
        h.update(d.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:SELECTION_ID_CHARS]


def selection_info(cur: duckdb.DuckDBPyConnection, sid: str) -> dict[str, Any] | None:
    """{selection_id, n_docs, origin, created_at} of a stored (or kept) selection, or None."""
    kept = kept_selection(str(sid))
    if kept is not None:
        return {"selection_id": sid, "n_docs": len(kept), "origin": {"kept": True},
                "created_at": None}  # fmt: skip
    if not _HEX_ID.match(str(sid)) or not table_exists(cur, "selections"):
        return None
    rows = cur.execute(
        "SELECT selection_id, n_docs, origin, created_at FROM selections WHERE selection_id = ?",
        [sid],
    ).fetchall()
    if not rows:
        return None
    r = rows[0]
    origin = json.loads(r[2]) if isinstance(r[2], str) and r[2] else r[2]
    return {"selection_id": r[0], "n_docs": int(r[1]), "origin": origin, "created_at": r[3]}


def selection_doc_ids(cur: duckdb.DuckDBPyConnection, sid: str) -> list[str]:
    """The doc ids of a stored (or kept) selection (sorted; empty when it is not stored)."""
    kept = kept_selection(str(sid))
    if kept is not None:
        return list(kept)
    if not _HEX_ID.match(str(sid)) or not table_exists(cur, "selection_docs"):
        return []
    rows = cur.execute(
        "SELECT doc_id FROM selection_docs WHERE selection_id = ? ORDER BY doc_id", [sid]
    ).fetchall()
    return [r[0] for r in rows]


def store_selection(
    workspace: Any,
    doc_ids: Sequence[str] | pa.Array | Iterable[str],
    *,
    origin: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> Selection:
    """Store a set of documents under its content id (a small `workspace.write()` job) and
    return it; storing the same documents again writes nothing. Ids that are not documents
    of the workspace raise MapConditionError (nothing is written). `origin` (e.g. the map id
    and the selection box) is recorded as JSON. `timeout`: seconds to wait for the writer
    lock when another job is writing the workspace."""
    ids = _distinct_ids(doc_ids)
    if not ids:
        raise MapConditionError("the selection is empty: select some documents first")
    sid = selection_id(ids)
    if selection_info(workspace.cursor(), sid) is not None:
        return Selection(sid, len(ids), False)
    with workspace.write(job=f"store selection {sid}", timeout=timeout) as con:
        for sql in SCHEMA:
            con.execute(sql)
        if con.execute("SELECT 1 FROM selections WHERE selection_id = ?", [sid]).fetchall():
            return Selection(sid, len(ids), False)
        con.register("_mx_sel", pa.table({"doc_id": pa.array(ids, pa.string())}))
        try:
            missing = con.execute(
                "SELECT count(*), min(s.doc_id) FROM _mx_sel s ANTI JOIN documents d "
                "ON d.doc_id = s.doc_id"
            ).fetchall()[0]
            if missing[0]:
                raise MapConditionError(
                    f"{missing[0]:,} selected id(s) are not documents of this workspace "
                    f"(e.g. {missing[1]!r})"
                )
            con.execute("INSERT INTO selection_docs SELECT ?, doc_id FROM _mx_sel", [sid])
        finally:
            con.unregister("_mx_sel")
        con.execute(
            "INSERT INTO selections VALUES (?, ?, ?, ?)",
            [
                sid,
                len(ids),
                json.dumps(origin or {}, sort_keys=True, default=str),
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            ],
        )
    return Selection(sid, len(ids), True)


#: selections kept in this process only (never written to the workspace)
MAX_KEPT_SELECTIONS = 256
MAX_KEPT_DOCS = 100_000
_KEPT: OrderedDict[str, tuple[str, ...]] = OrderedDict()
_KEPT_LOCK = threading.Lock()


def keep_selection(doc_ids: Sequence[str] | pa.Array | Iterable[str]) -> Selection:
    """Keep a set of documents in this process only (no workspace write: a viewer's
    selection) under the same content id `store_selection` would give it."""
    ids = _distinct_ids(doc_ids)
    if not ids:
        raise MapConditionError("the selection is empty: select some documents first")
    if len(ids) > MAX_KEPT_DOCS:
        raise MapConditionError(
            f"the selection holds {len(ids):,} documents; at most {MAX_KEPT_DOCS:,} can be "
            "kept without saving (an editor can save larger ones)"
        )
    sid = selection_id(ids)
    with _KEPT_LOCK:
        _KEPT[sid] = tuple(ids)
        _KEPT.move_to_end(sid)
        while len(_KEPT) > MAX_KEPT_SELECTIONS:
            _KEPT.popitem(last=False)
    return Selection(sid, len(ids), True)


def kept_selection(sid: str) -> tuple[str, ...] | None:
    """The ids of a selection kept in this process, or None."""
    with _KEPT_LOCK:
        return _KEPT.get(sid)


def describe_map_condition(cond: Condition, n_docs: int | None = None) -> str:
    """A short readable label: `clusters 0, 4 of map 3f2a9c1b` / `selection 5be0c5d1 (120
    documents)`."""
    if cond.kind == "cluster":
        nums = str(cond.value).replace(",", ", ")
        which = "the latest map" if cond.name == "latest" else f"map {cond.name[:8]}"
        word = "clusters" if cond.op == "in" and "," in str(cond.value) else "cluster"
        neg = "not " if cond.op == "ne" else ""
        return f"{neg}{word} {nums} of {which}"
    if cond.kind == "selection":
        size = f" ({n_docs:,} documents)" if n_docs is not None else ""
        return f"selection {cond.name[:8]}{size}"
    return f"{cond.kind} {cond.name}"


__all__ = [
    "LATEST_MAP_SQL",
    "SCHEMA",
    "MapConditionError",
    "Selection",
    "cluster_condition",
    "describe_map_condition",
    "keep_selection",
    "kept_selection",
    "resolve_cluster_condition",
    "resolve_selection_condition",
    "selection_condition",
    "selection_doc_ids",
    "selection_id",
    "selection_info",
    "store_selection",
    "with_condition",
]
