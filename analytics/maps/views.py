"""The read layer of the Map and Search screens (no Streamlit: the pages cache these, the CLI
calls them too).

* An embedding set is named by its model key (`sentence-transformers--all-minilm-l6-v2__msl256`)
  or by its model (`all-MiniLM-L6-v2`, `fake`, a path): a model name picks the largest set of
  that model.
* With no name, the default set is the one of the most recently published map, else the
  largest set (ties: most recently updated).
* Published maps are the rows of the workspace table `maps` (written by `mixscope map`), newest
  first; a map's points and labels are read from `<workspace>/maps/<map_id>/`.
* Workspace queries (points of a map, brief rows of documents, the ids a filter selects) and
  the filtered exact top-k search.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from analytics.embed import list_embedding_sets
from analytics.embed.models import EMBEDDERS, canonical_model_name
from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.query import run_query

SNIPPET_CHARS = 160
BASE_COLOURS = {"cluster": "Cluster", "source": "Source", "domain": "Domain", "lang": "Language"}
#: at most this many points are drawn (a seeded subset beyond; the page says so)
MAX_DRAW = 60_000

MAP_COLUMNS = ["map_id", "model_key", "params", "n_points", "n_corpus", "created_at"]


def embedding_sets(workspace: Any) -> list[dict[str, Any]]:
    """Manifests of the non-empty embedding sets, largest first."""
    sets = [s for s in list_embedding_sets(workspace) if int(s.get("count") or 0) > 0]
    sets.sort(key=lambda s: str(s.get("updated") or ""), reverse=True)
    sets.sort(key=lambda s: -int(s["count"]))  # stable: ties stay newest first
    return sets


def no_embeddings_message(workspace: Any) -> str:
    return (
        f"no embeddings in {getattr(workspace, 'path', workspace)} yet; run `mixscope embed` "
        "first (e.g. `mixscope embed --sample 5000`)."
    )


def published_maps(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows of the `maps` table, newest first (empty when no map was published)."""
    try:
        df = cur.execute(
            "SELECT map_id, model_key, params, n_points, n_corpus, created_at FROM maps "
            "WHERE map_id IN (SELECT DISTINCT map_id FROM doc_clusters) "
            "ORDER BY created_at DESC NULLS LAST, map_id DESC"
        ).df()
    except duckdb.CatalogException:  # a workspace from before the maps migration
        return pd.DataFrame(columns=MAP_COLUMNS)
    return df


def default_model_key(workspace: Any) -> str | None:
    """The set of the newest published map (when it still exists), else the largest set."""
    sets = embedding_sets(workspace)
    if not sets:
        return None
    keys = [s["model_key"] for s in sets]
    maps = published_maps(workspace.cursor())
    for key in maps["model_key"].tolist():
        if key in keys:
            return key
    return keys[0]


def resolve_model_key(workspace: Any, model: str | None) -> str:
    """The model key meant by `model` (a key, a model name or path, or None for the
    default); MixscopeError naming the available sets otherwise."""
    sets = embedding_sets(workspace)
    if not sets:
        raise MixscopeError(no_embeddings_message(workspace))
    if model is None or not str(model).strip():
        return default_model_key(workspace) or sets[0]["model_key"]
    model = str(model).strip()
    for s in sets:
        if s["model_key"] == model:
            return model
    base = model.partition(":")[0]
    wanted = base if base in EMBEDDERS else canonical_model_name(model)
    for s in sets:  # largest first
        if s.get("model") == wanted:
            return s["model_key"]
    have = ", ".join(f"{s['model_key']} ({int(s['count']):,} vectors)" for s in sets)
    raise MixscopeError(
        f"no embedding set for {model!r} in {workspace.path}; available: {have}. Embed with "
        f"`mixscope embed --model {model}` first."
    )


# ---------------------------------------------------------------------- workspace queries
def colour_options(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """column -> label of everything a map can be coloured by: cluster, source, domain,
    language, and every numeric/boolean column of a computed signal."""
    from analytics.mixture.builder import signal_columns

    out = dict(BASE_COLOURS)
    for col, info in signal_columns(cur).items():
        if col not in out:
            out[col] = f"{col} ({info['signal']})"
    return out


def map_points(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter | None = None,
    *,
    map_id: str,
    color: str = "cluster",
    snippet_chars: int = SNIPPET_CHARS,
) -> pd.DataFrame:
    """doc_id, cluster, source, color, snippet of the documents of map `map_id` that match
    `flt` (all of them without one). `color` is a key of `colour_options`."""
    from analytics.mixture.builder import signal_columns

    join, params = "", []
    if color == "cluster":
        expr = "c.cluster"
    elif color in ("source", "domain", "lang"):
        expr = f"d.{color}"
    else:
        info = signal_columns(cur).get(color)
        if info is None:
            raise MixscopeError(f"cannot colour the map by {color!r}: not a known column")
        join = f" LEFT JOIN signal_{info['signal']} s ON s.doc_id = c.doc_id AND s.version = ?"
        expr = f's."{color}"'
        params.append(info["version"])
    where, wparams = (flt or DocFilter()).where("d")
    sql = (
        f"SELECT c.doc_id, c.cluster, d.source, {expr} AS color, "
        f"regexp_replace(left(x.text, {int(snippet_chars) * 2}), '\\s+', ' ', 'g') AS snippet "
        f"FROM doc_clusters c JOIN documents d ON d.doc_id = c.doc_id "
        f"JOIN document_text x ON x.doc_id = c.doc_id{join} "
        f"WHERE c.map_id = ? AND {where}"
    )
    df, _ = run_query(cur, sql, [*params, map_id, *wparams], max_rows=10_000_000, timeout_s=120)
    df["snippet"] = df["snippet"].str.slice(0, int(snippet_chars))
    return df


def documents_brief(cur: duckdb.DuckDBPyConnection, *, doc_ids: list[str]) -> pd.DataFrame:
    """doc_id, source, lang, n_tokens, snippet of some documents (for result tables)."""
    if not doc_ids:
        return pd.DataFrame(columns=["doc_id", "source", "lang", "n_tokens", "snippet"])
    df, _ = run_query(
        cur,
        "SELECT doc_id, source, lang, n_tokens, "
        "regexp_replace(left(text, 400), '\\s+', ' ', 'g') AS snippet "
        "FROM documents JOIN document_text USING (doc_id) "
        "WHERE doc_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(doc_ids)],
        max_rows=len(doc_ids),
    )
    df["snippet"] = df["snippet"].str.slice(0, 200)
    return df


def filtered_ids(cur: duckdb.DuckDBPyConnection, flt: DocFilter | None = None) -> list[str]:
    """Doc ids of every document matching `flt`."""
    where, params = (flt or DocFilter()).where("d")
    df, _ = run_query(
        cur, f"SELECT d.doc_id FROM documents d WHERE {where}", params, max_rows=50_000_000,
        timeout_s=120,
    )  # fmt: skip
    return df["doc_id"].tolist()


def coverage(n_points: int, n_corpus: int) -> str:
    """'all N documents' or 'sample of N of M documents'."""
    if n_points >= n_corpus:
        return f"all {n_points:,} documents"
    return f"sample of {n_points:,} of {n_corpus:,} documents"


def draw_subset(df: pd.DataFrame, limit: int = MAX_DRAW, seed: int = 0) -> pd.DataFrame:
    """At most `limit` rows of `df` (a seeded subset; order kept)."""
    if len(df) <= limit:
        return df
    pick = np.sort(np.random.default_rng(seed).choice(len(df), size=limit, replace=False))
    return df.iloc[pick].reset_index(drop=True)


def search_among(
    ws_path: Any,
    model_key: str,
    doc_ids: list[str],
    *,
    query: str | None = None,
    like: str | None = None,
    k: int = 10,
) -> pd.DataFrame:
    """Exact top-k (rank, doc_id, score) among `doc_ids` by cosine to the embedded `query`,
    or to the embedding of document `like` (which is left out of its own results)."""
    from analytics.embed import EmbeddingSet
    from analytics.maps import EmbeddingIndex, MapError, embed_queries

    eset = EmbeddingSet.for_workspace(ws_path, model_key)
    if like is not None:
        got_ids, got = eset.load([like])
        if not len(got_ids):
            raise MapError(f"document {like!r} has no embedding in set {model_key!r}.")
        q = got[0]
    else:
        if not query or not query.strip():
            raise MapError("the search query is empty; type some words to search for.")
        q = embed_queries(ws_path, model_key, [query])[0]
    ids, X = eset.load(doc_ids)
    sub = EmbeddingIndex(ids, X, model_key=model_key)
    return sub.search_vector(q, k=k, exclude=[like] if like else ())
