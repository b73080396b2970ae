"""`compute_map`: projection + clusters + labels of an embedding set, cached by content hash.

Cache layout under `<workspace>/maps/`::

    projections/<proj_hash>.parquet    doc_id, x, y   (one per embedding ids + UMAP params)
    <map_id>/points.parquet            doc_id, x, y, cluster
    <map_id>/clusters.parquet          cluster, label, terms, weights, size
    <map_id>/params.json               parameters, model key, counts, timings (written last)

`proj_hash` = sha256 of (model key, dimension, digest of the sorted doc ids, UMAP params);
`map_id` = sha256 of the same plus every clustering/labelling parameter, first 16 hex digits.
Identical inputs therefore never refit UMAP, and changing only the clustering reuses the
projection. Rows are sorted by doc_id before fitting, so shard order does not matter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.db import scalar
from analytics.embed.store import EmbeddingSet, _as_string_array, _missing_message
from analytics.maps import project as _project
from analytics.maps.cluster import CLUSTERERS, SPACES, cluster_points
from analytics.maps.errors import MapError
from analytics.maps.labels import choose_label_docs, label_clusters, read_cluster_texts
from analytics.maps.project import effective_n_neighbors
from analytics.params import option

Progress = Callable[[str, int, int], None]
MAPS_DIR = "maps"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class MapOptions:
    """Every option of a map job, written once (all recorded in params.json and hashed into
    the map id; the CLI's ``--option`` help and the Map page's widgets read the help here).

    ``random_state`` is the job's seed (the CLI's ``--seed``); its name is kept because the
    field names are hashed into every stored map id.
    """

    n_neighbors: int = option(15, "UMAP n_neighbors.")
    min_dist: float = option(0.1, "UMAP min_dist.")
    metric: str = option("cosine", "UMAP distance metric.")
    random_state: int = option(42, "Seed of UMAP, k-means and sampling.")
    cluster_method: str = option("kmeans", "kmeans or hdbscan.")
    cluster_on: str | None = option(
        None,
        "Cluster the embedding, a PCA of it, or the 2-D umap projection "
        "(default: embedding for kmeans, umap for hdbscan).",
    )
    n_clusters: int | None = option(None, "k-means clusters (default: sqrt(N/2), 2..50).")
    min_cluster_size: int | None = option(
        None, "HDBSCAN min_cluster_size (default: max(5, N/200))."
    )
    pca_dims: int = option(50, "Dimensions of the PCA space (cluster_on pca).")
    max_points: int | None = option(None, "Map a seeded subset of this many embedded documents.")
    label_terms: int = option(4, "Terms in a cluster's label.")
    n_terms: int = option(10, "Distinctive terms kept per cluster.")
    label_docs_per_cluster: int = option(300, "Documents read per cluster for its label.")
    label_max_chars: int = option(2_000, "Characters read per document for the labels.")
    stop_words: str | None = option(
        "multilingual",
        "Stop words left out of labels: multilingual (every language of the corpus's lang "
        "column, DEFAULT_STOP_LANGUAGES when none is known), english, or none.",
    )

    @classmethod
    def coerce(cls, params: MapOptions | dict[str, Any] | None) -> MapOptions:
        if params is None:
            return cls()
        if isinstance(params, cls):
            p = params
        else:
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(params) - names)
            if unknown:
                valid = ", ".join(sorted(names))
                raise MapError(f"unknown map parameter(s) {', '.join(unknown)}; valid: {valid}.")
            p = cls(**params)
        if p.cluster_method not in CLUSTERERS:
            raise MapError(
                f"cluster_method must be one of {', '.join(CLUSTERERS)}, got {p.cluster_method!r}."
            )
        if p.cluster_on is not None and p.cluster_on not in SPACES:
            raise MapError(f"cluster_on must be one of {', '.join(SPACES)}, got {p.cluster_on!r}.")
        if p.max_points is not None and p.max_points < 4:
            raise MapError(f"max_points must be at least 4, got {p.max_points}.")
        return p

    def projection_params(self) -> dict[str, Any]:
        return {
            "n_neighbors": self.n_neighbors,
            "min_dist": self.min_dist,
            "metric": self.metric,
            "random_state": self.random_state,
        }


@dataclass
class MapResult:
    map_id: str
    model_key: str
    path: str
    points: pd.DataFrame  # doc_id, x, y, cluster
    clusters: pd.DataFrame  # cluster, label, terms, weights, size
    params: dict[str, Any]
    n_points: int
    n_embedded: int
    n_corpus: int
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> str:
        """'all N documents' or 'sample of N of M documents' (M: documents in the corpus)."""
        if self.n_points >= self.n_corpus:
            return f"all {self.n_points:,} documents"
        return f"sample of {self.n_points:,} of {self.n_corpus:,} documents"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha(obj: Any) -> str:
    return hashlib.sha256(_canonical(obj).encode("utf-8")).hexdigest()


def ids_digest(ids: pa.Array) -> str:
    """sha256 of the ids' UTF-8 bytes and lengths (zero-copy over the Arrow buffers)."""
    a = _as_string_array(ids)
    h = hashlib.sha256(str(len(a)).encode())
    if len(a):
        offsets = np.frombuffer(a.buffers()[1], dtype=np.int32)[a.offset : a.offset + len(a) + 1]
        h.update((offsets - offsets[0]).astype("<i4").tobytes())
        data = a.buffers()[2]
        if data is not None:
            h.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    return h.hexdigest()


def _select_ids(
    eset: EmbeddingSet, doc_ids: Any | None, max_points: int | None, seed: int
) -> pa.Array:
    ids = eset.doc_ids().combine_chunks()
    if doc_ids is not None:
        ids = ids.filter(pc.is_in(ids, value_set=_as_string_array(doc_ids)))
    ids = pc.unique(ids)
    ids = ids.take(pc.array_sort_indices(ids))
    if max_points is not None and len(ids) > max_points:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(ids), size=max_points, replace=False))
        ids = ids.take(pa.array(pick))
    return ids


def maps_root(workspace: Any) -> Path:
    return Path(getattr(workspace, "path", workspace)) / MAPS_DIR


def _projection(
    proj_file: Path, got_ids: np.ndarray, X: np.ndarray, p: MapOptions, force: bool
) -> np.ndarray:
    """The 2-D UMAP projection, read from ``proj_file`` when it holds exactly these ids
    (unless ``force``), else fitted and written there."""
    if proj_file.is_file() and not force:
        cached = pq.read_table(proj_file)
        if cached.num_rows == len(got_ids) and np.array_equal(
            np.asarray(cached.column("doc_id").to_pylist(), dtype=object), got_ids
        ):
            return np.column_stack(
                [cached.column("x").to_numpy(), cached.column("y").to_numpy()]
            ).astype(np.float32)
    Y = _project.project_umap(X, **p.projection_params())
    proj_file.parent.mkdir(parents=True, exist_ok=True)
    _atomic_parquet(
        pa.table({"doc_id": pa.array(got_ids.tolist(), pa.string()), "x": Y[:, 0], "y": Y[:, 1]}),
        proj_file,
    )
    return Y


def _cluster_labels(
    workspace: Any, got_ids: np.ndarray, labels: np.ndarray, p: MapOptions
) -> tuple[pd.DataFrame, dict[int, int], int]:
    """(c-TF-IDF labels of each cluster, cluster sizes, documents in the corpus); the labels
    come from a sample of each cluster's texts."""
    cl, counts = np.unique(labels, return_counts=True)
    sizes = {int(c): int(n) for c, n in zip(cl, counts)}
    lab_ids, lab_labels = choose_label_docs(
        got_ids, labels, max_docs_per_cluster=p.label_docs_per_cluster, seed=p.random_state
    )
    cursor = workspace.cursor()
    texts = read_cluster_texts(cursor, lab_ids, lab_labels, max_chars=p.label_max_chars)
    langs = [
        r[0]
        for r in cursor.execute(
            "SELECT DISTINCT lang FROM documents WHERE lang IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    clusters = label_clusters(
        texts,
        sizes=sizes,
        n_terms=p.n_terms,
        label_terms=p.label_terms,
        stop_words=p.stop_words,
        languages=langs or None,
    )
    n_corpus = int(scalar(workspace.cursor(), "SELECT count(*) FROM documents"))
    return clusters, sizes, n_corpus


def _load_sorted(eset: EmbeddingSet, ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(doc ids, vectors) sorted by doc id, so shard order does not matter."""
    got_ids, X = eset.load(ids)
    order = np.argsort(got_ids, kind="stable")
    return got_ids[order], X[order]


def _effective(n_points: int, p: MapOptions, sizes: dict[int, int]) -> dict[str, int]:
    """The parameters as applied: UMAP's neighbours capped by N, clusters found (no noise)."""
    return {
        "n_neighbors": effective_n_neighbors(n_points, p.n_neighbors),
        "n_clusters": int(sum(1 for c in sizes if c >= 0)),
    }


def _cluster(X: np.ndarray, Y: np.ndarray, p: MapOptions) -> np.ndarray:
    return cluster_points(
        X,
        method=p.cluster_method,
        projection=Y,
        cluster_on=p.cluster_on,
        pca_dims=p.pca_dims,
        n_clusters=p.n_clusters,
        min_cluster_size=p.min_cluster_size,
        random_state=p.random_state,
    )


def compute_map(
    workspace: Any,
    model_key: str,
    *,
    params: MapOptions | dict[str, Any] | None = None,
    doc_ids: Any | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> MapResult:
    """Project, cluster and label embedding set `model_key` (optionally only `doc_ids`);
    return the cached result when these inputs were mapped before (unless `force`).

    Progress stages: load, project, cluster, label, write (each reported as (stage, 0|1, 1)).
    """
    p = MapOptions.coerce(params)
    eset = EmbeddingSet.for_workspace(workspace, model_key)
    if not eset.exists:
        raise MapError(_missing_message(workspace, model_key))
    dim = eset.stored_dim()
    t0 = time.monotonic()

    def step(stage: str, done: int) -> None:
        if progress:
            progress(stage, done, 1)

    step("load", 0)
    ids = _select_ids(eset, doc_ids, p.max_points, p.random_state)
    if len(ids) < 4:
        raise MapError(f"a map needs at least 4 embedded documents; {len(ids)} selected.")
    digest = ids_digest(ids)
    base = {"format": CACHE_FORMAT, "model_key": model_key, "dim": dim, "ids": digest}
    proj_hash = _sha({**base, "umap": p.projection_params()})
    map_id = _sha({**base, "params": asdict(p)})[:16]
    root = maps_root(workspace)
    final = root / map_id
    if not force and (final / "params.json").is_file():
        res = load_map(workspace, map_id)
        step("load", 1)
        return res

    got_ids, X = _load_sorted(eset, ids)
    step("load", 1)
    timings = {"load_s": time.monotonic() - t0}

    def timed(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        step(stage, 0)
        t = time.monotonic()
        out = fn(*args)
        timings[f"{stage}_s"] = time.monotonic() - t
        step(stage, 1)
        return out

    proj_file = root / "projections" / f"{proj_hash}.parquet"
    Y = timed("project", _projection, proj_file, got_ids, X, p, force)
    labels = timed("cluster", _cluster, X, Y, p)
    clusters, sizes, n_corpus = timed("label", _cluster_labels, workspace, got_ids, labels, p)
    step("write", 0)
    points = pd.DataFrame(
        {"doc_id": got_ids, "x": Y[:, 0], "y": Y[:, 1], "cluster": labels.astype(np.int32)}
    )
    record = {
        "map_id": map_id,
        "model_key": model_key,
        "dim": dim,
        "params": asdict(p),
        "effective": _effective(len(got_ids), p, sizes),
        "projection": proj_hash,
        "ids_digest": digest,
        "n_points": int(len(got_ids)),
        "n_embedded": int(eset.count()),
        "n_corpus": n_corpus,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    _write_map_dir(final, points, clusters, record)
    step("write", 1)
    return MapResult(
        map_id, model_key, str(final), points, clusters, record, record["n_points"],
        record["n_embedded"], n_corpus, cached=False, timings=timings,
    )  # fmt: skip


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _write_map_dir(final: Path, points: pd.DataFrame, clusters: pd.DataFrame, record: dict) -> None:
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        pq.write_table(pa.Table.from_pandas(points, preserve_index=False), tmp / "points.parquet")
        cl = pa.table(
            {
                "cluster": pa.array(clusters["cluster"].tolist(), pa.int32()),
                "label": pa.array(clusters["label"].tolist(), pa.string()),
                "terms": pa.array(clusters["terms"].tolist(), pa.list_(pa.string())),
                "weights": pa.array(clusters["weights"].tolist(), pa.list_(pa.float64())),
                "size": pa.array(clusters["size"].tolist(), pa.int64()),
            }
        )
        pq.write_table(cl, tmp / "clusters.parquet")
        (tmp / "params.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        if final.exists():
            old = final.with_name(f".{final.name}.{os.getpid()}.old")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_map(workspace: Any, map_id: str) -> MapResult:
    """A map computed before (MapError when absent)."""
    path = maps_root(workspace) / map_id
    if not map_id or "/" in map_id or not (path / "params.json").is_file():
        raise MapError(
            f"no map {map_id!r} in {maps_root(workspace)}; compute it with `mixscope map`."
        )
    record = json.loads((path / "params.json").read_text())
    points = pq.read_table(path / "points.parquet").to_pandas()
    clusters = pq.read_table(path / "clusters.parquet").to_pandas()
    clusters["terms"] = clusters["terms"].map(list)
    clusters["weights"] = clusters["weights"].map(list)
    return MapResult(
        map_id=map_id,
        model_key=record["model_key"],
        path=str(path),
        points=points,
        clusters=clusters,
        params=record,
        n_points=int(record["n_points"]),
        n_embedded=int(record.get("n_embedded", record["n_points"])),
        n_corpus=int(record.get("n_corpus", record["n_points"])),
        cached=True,
        timings=dict(record.get("timings", {})),
    )


def list_maps(workspace: Any) -> pd.DataFrame:
    """One row per cached map: map_id, model_key, n_points, n_corpus, created, params."""
    rows = []
    root = maps_root(workspace)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            f = d / "params.json"
            if d.is_dir() and not d.name.startswith(".") and f.is_file():
                r = json.loads(f.read_text())
                rows.append(
                    {
                        "map_id": r["map_id"],
                        "model_key": r["model_key"],
                        "n_points": r["n_points"],
                        "n_corpus": r.get("n_corpus"),
                        "created": r.get("created"),
                        "params": r.get("params", {}),
                    }
                )
    df = pd.DataFrame(
        rows, columns=["map_id", "model_key", "n_points", "n_corpus", "created", "params"]
    )
    return df.sort_values("created", ascending=False, kind="stable").reset_index(drop=True)


def publish_map(workspace: Any, result: MapResult) -> int:
    """Write a map's clusters into the workspace tables (a `workspace.write()` job)."""
    from analytics.maps.schema import write_clusters

    with workspace.write(job=f"map {result.map_id}") as con:
        return write_clusters(
            con,
            result.map_id,
            result.points[["doc_id", "cluster"]],
            result.clusters,
            model_key=result.model_key,
            params=result.params.get("params", {}),
            n_corpus=result.n_corpus,
        )
