"""The corpus map: UMAP projection, clusters with c-TF-IDF labels, semantic search and
diversity/similarity measures over stored embeddings. UI-free; heavy deps load lazily."""

from analytics.maps.cluster import CLUSTERERS, cluster_points, register_clusterer
from analytics.maps.compute import (
    MapOptions,
    MapResult,
    compute_map,
    list_maps,
    load_map,
    publish_map,
)
from analytics.maps.diversity import (
    centroid_cosine,
    cluster_entropy,
    group_diversity,
    mean_pairwise_cosine_distance,
    mmd2,
    semantic_duplicates,
    target_similarity,
)
from analytics.maps.errors import MapError
from analytics.maps.groups import (
    diversity_by,
    near_duplicates,
    selection_diversity,
    similarity_to_target,
)
from analytics.maps.labels import ctfidf, label_clusters
from analytics.maps.project import project_umap
from analytics.maps.schema import SCHEMA, write_clusters
from analytics.maps.search import EmbeddingIndex, embed_queries, more_like_this, search

__all__ = [
    "CLUSTERERS",
    "SCHEMA",
    "EmbeddingIndex",
    "MapError",
    "MapOptions",
    "MapResult",
    "centroid_cosine",
    "cluster_entropy",
    "cluster_points",
    "compute_map",
    "ctfidf",
    "diversity_by",
    "embed_queries",
    "group_diversity",
    "label_clusters",
    "list_maps",
    "load_map",
    "mean_pairwise_cosine_distance",
    "mmd2",
    "more_like_this",
    "near_duplicates",
    "project_umap",
    "publish_map",
    "register_clusterer",
    "search",
    "selection_diversity",
    "semantic_duplicates",
    "similarity_to_target",
    "target_similarity",
    "write_clusters",
]
