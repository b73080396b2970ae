"""`mixscope map`: UMAP projection, clusters and c-TF-IDF labels of an embedding set, published
into the workspace (tables maps, doc_clusters, cluster_labels) so every page can use them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analytics.errors import MixscopeError
from analytics.maps.cluster import CLUSTERERS, SPACES
from analytics.maps.compute import MapOptions as Map
from analytics.params import default_of, help_for
from analytics.workspace import Workspace
from dashboard.cli import app
from dashboard.cli.core import WorkspaceOpt
from dashboard.cli.progress import console, progress_callback

stdout = Console()


def map_params(
    *,
    n_neighbors: int,
    min_dist: float,
    clusterer: str,
    k: int | None,
    min_cluster_size: int | None,
    cluster_on: str | None,
    seed: int,
    max_points: int | None,
) -> dict:
    """The :class:`~analytics.maps.compute.MapOptions` of the command's options (checked here
    so errors name the option)."""
    if clusterer not in CLUSTERERS:
        raise MixscopeError(f"--clusterer {clusterer!r}: expected one of {', '.join(CLUSTERERS)}")
    if cluster_on is not None and cluster_on not in SPACES:
        raise MixscopeError(f"--cluster-on {cluster_on!r}: expected one of {', '.join(SPACES)}")
    if k is not None and clusterer != "kmeans":
        raise MixscopeError("--k is the number of k-means clusters; HDBSCAN finds its own")
    if min_cluster_size is not None and clusterer != "hdbscan":
        raise MixscopeError("--min-cluster-size applies to --clusterer hdbscan")
    if k is not None and k < 1:
        raise MixscopeError(f"--k must be at least 1, got {k}")
    if n_neighbors < 2:
        raise MixscopeError(f"--n-neighbors must be at least 2, got {n_neighbors}")
    if not 0.0 <= min_dist <= 1.0:
        raise MixscopeError(f"--min-dist must be within [0, 1], got {min_dist}")
    if max_points is not None and max_points < 4:
        raise MixscopeError(f"--max-points must be at least 4, got {max_points}")
    return {
        "n_neighbors": n_neighbors,
        "min_dist": min_dist,
        "random_state": seed,
        "cluster_method": clusterer,
        "cluster_on": cluster_on,
        "n_clusters": k,
        "min_cluster_size": min_cluster_size,
        "max_points": max_points,
    }


@app.command("map")
def map_command(
    model: Annotated[
        str | None,
        typer.Option(help="Embedding set: model key or model name (default: the largest set)."),
    ] = None,
    n_neighbors: Annotated[int, typer.Option(help=help_for(Map, "n_neighbors"))] = default_of(
        Map, "n_neighbors"
    ),
    min_dist: Annotated[float, typer.Option(help=help_for(Map, "min_dist"))] = default_of(
        Map, "min_dist"
    ),
    clusterer: Annotated[str, typer.Option(help=help_for(Map, "cluster_method"))] = default_of(
        Map, "cluster_method"
    ),
    k: Annotated[int | None, typer.Option("--k", help=help_for(Map, "n_clusters"))] = default_of(
        Map, "n_clusters"
    ),
    min_cluster_size: Annotated[
        int | None, typer.Option(help=help_for(Map, "min_cluster_size"))
    ] = default_of(Map, "min_cluster_size"),
    cluster_on: Annotated[str | None, typer.Option(help=help_for(Map, "cluster_on"))] = default_of(
        Map, "cluster_on"
    ),
    seed: Annotated[int, typer.Option(help=help_for(Map, "random_state"))] = default_of(
        Map, "random_state"
    ),
    max_points: Annotated[int | None, typer.Option(help=help_for(Map, "max_points"))] = default_of(
        Map, "max_points"
    ),
    force: Annotated[bool, typer.Option(help="Recompute even when cached.")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the published maps.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Project embeddings with UMAP (cached by content hash), cluster, label with c-TF-IDF."""
    from analytics.maps.views import published_maps, resolve_model_key

    ws = Workspace.open(workspace)
    if list_only:
        _list(published_maps(ws.cursor()))
        return
    params = map_params(
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        clusterer=clusterer,
        k=k,
        min_cluster_size=min_cluster_size,
        cluster_on=cluster_on,
        seed=seed,
        max_points=max_points,
    )
    key = resolve_model_key(ws, model)
    from analytics.maps import compute_map, publish_map

    with progress_callback() as cb:
        res = compute_map(ws, key, params=params, force=force, progress=cb)
        cb("publish", 0, 1)
        n = publish_map(ws, res)
        cb("publish", 1, 1)
    _print_map(res, n)


def _print_map(res, n_published: int) -> None:
    t = res.timings
    eff = res.params.get("effective", {})
    p = res.params.get("params", {})
    if res.cached:
        how = f"cached (computed {res.params.get('created', '?')}; UMAP not refitted)"
    else:
        how = (
            f"UMAP {t.get('project_s', 0):.1f} s, clustering {t.get('cluster_s', 0):.1f} s, "
            f"labels {t.get('label_s', 0):.1f} s"
        )
    table = Table("cluster", "documents", "label")
    for r in res.clusters.sort_values("cluster").itertuples(index=False):
        table.add_row(str(r.cluster), f"{int(r.size):,}", escape(str(r.label)))
    stdout.print(table)
    stdout.print(
        f"map {res.map_id} of set {res.model_key}: {res.coverage}; "
        f"{eff.get('n_clusters', res.clusters['cluster'].ge(0).sum())} clusters "
        f"({p.get('cluster_method')}), n_neighbors {eff.get('n_neighbors', p.get('n_neighbors'))}, "
        f"min_dist {p.get('min_dist')}, seed {p.get('random_state')}; {how}",
        markup=False,
    )
    console.print(
        f"published {n_published:,} documents' clusters to the workspace; filter a page by "
        f"cluster with ?c=cluster.{res.map_id}.cluster.in.0,1",
        markup=False,
    )


def _list(df) -> None:
    table = Table("map_id", "set", "points", "of corpus", "created", "parameters")
    table.columns[0].no_wrap = True
    for r in df.itertuples(index=False):
        p = json.loads(r.params) if isinstance(r.params, str) else (r.params or {})
        brief = f"{p.get('cluster_method')}"
        if p.get("n_clusters"):
            brief += f" k={p['n_clusters']}"
        if p.get("min_cluster_size"):
            brief += f" min_cluster_size={p['min_cluster_size']}"
        brief += f" n_neighbors={p.get('n_neighbors')} min_dist={p.get('min_dist')}"
        brief += f" seed={p.get('random_state')}"
        if p.get("max_points"):
            brief += f" max_points={p['max_points']}"
        table.add_row(
            r.map_id, r.model_key, f"{int(r.n_points):,}", f"{int(r.n_corpus or 0):,}",
            str(r.created_at)[:19], brief,
        )  # fmt: skip
    stdout.print(table)
    if df.empty:
        console.print("no map published yet; run `mixscope map`")
