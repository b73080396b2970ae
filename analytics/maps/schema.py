"""Workspace tables written by the map job, so Explore and mixtures can group by cluster.

* `maps`: one row per published map (its id is the content hash of its inputs).
* `doc_clusters`: the cluster of each mapped document, per map.
* `cluster_labels`: label, top terms (JSON list) and size of each cluster, per map.

Coordinates stay in `<workspace>/maps/<map_id>/points.parquet` (read by the Map page).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.maps.errors import MapError

SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS maps(
        map_id VARCHAR NOT NULL, model_key VARCHAR NOT NULL, params JSON,
        n_points BIGINT, n_corpus BIGINT, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS doc_clusters(
        doc_id VARCHAR NOT NULL, map_id VARCHAR NOT NULL, cluster INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cluster_labels(
        map_id VARCHAR NOT NULL, cluster INTEGER NOT NULL, label VARCHAR, terms JSON,
        size BIGINT)""",
]


def write_clusters(
    con: duckdb.DuckDBPyConnection,
    map_id: str,
    df: pd.DataFrame | pa.Table,
    labels: pd.DataFrame,
    *,
    model_key: str | None = None,
    params: dict[str, Any] | None = None,
    n_corpus: int | None = None,
) -> int:
    """Replace map `map_id`'s rows in doc_clusters / cluster_labels (and `maps`) from `df`
    (doc_id, cluster, ...) and `labels` (cluster, label, terms, size). Call it on the
    connection of a `workspace.write()` job; returns the number of documents written."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    for col in ("doc_id", "cluster"):
        if col not in table.column_names:
            raise MapError(f"write_clusters: the points table has no column {col!r}.")
    for col in ("cluster", "label", "terms", "size"):
        if col not in labels.columns:
            raise MapError(f"write_clusters: the labels table has no column {col!r}.")
    for sql in SCHEMA:
        con.execute(sql)
    pts = pa.table(
        {
            "doc_id": table.column("doc_id").cast(pa.string()),
            "cluster": table.column("cluster").cast(pa.int32()),
        }
    )
    lab = pa.table(
        {
            "cluster": pa.array(labels["cluster"].astype("int32").tolist(), pa.int32()),
            "label": pa.array([str(x) for x in labels["label"]], pa.string()),
            "terms": pa.array([json.dumps(list(t)) for t in labels["terms"]], pa.string()),
            "size": pa.array(labels["size"].astype("int64").tolist(), pa.int64()),
        }
    )
    con.execute("DELETE FROM doc_clusters WHERE map_id = ?", [map_id])
    con.execute("DELETE FROM cluster_labels WHERE map_id = ?", [map_id])
    con.register("_mx_points", pts)
    con.register("_mx_labels", lab)
    try:
        con.execute("INSERT INTO doc_clusters SELECT doc_id, ?, cluster FROM _mx_points", [map_id])
        con.execute(
            "INSERT INTO cluster_labels SELECT ?, cluster, label, CAST(terms AS JSON), size "
            "FROM _mx_labels",
            [map_id],
        )
    finally:
        con.unregister("_mx_points")
        con.unregister("_mx_labels")
    if model_key is not None:
        con.execute("DELETE FROM maps WHERE map_id = ?", [map_id])
        con.execute(
            "INSERT INTO maps VALUES (?, ?, ?, ?, ?, ?)",
            [
                map_id,
                model_key,
                json.dumps(params or {}, sort_keys=True),
                pts.num_rows,
                n_corpus,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            ],
        )
    return pts.num_rows
