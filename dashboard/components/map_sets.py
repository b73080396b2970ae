"""Which embedding set and which map a command or page means (no Streamlit here: the CLI
imports it too).

* An embedding set is named by its model key (`sentence-transformers--all-minilm-l6-v2__msl256`)
  or by its model (`all-MiniLM-L6-v2`, `fake`, a path): a model name picks the largest set of
  that model.
* With no name, the default set is the one of the most recently published map, else the
  largest set (ties: most recently updated).
* Published maps are the rows of the workspace table `maps` (written by `mixscope map`), newest
  first; a map's points and labels are read from `<workspace>/maps/<map_id>/`.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from analytics.embed import list_embedding_sets
from analytics.embed.models import EMBEDDERS, canonical_model_name
from analytics.errors import MixscopeError

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
