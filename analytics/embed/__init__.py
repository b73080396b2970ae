"""Document embeddings: models, batched encoding, Parquet shard storage, resumable corpus
jobs, stratified samples and a Ray Data scale-out path.

Heavy dependencies (sentence-transformers/torch, ray) load only when a model or Ray is used.
"""

from analytics.embed.corpus import EmbedReport, embed_corpus
from analytics.embed.encode import embed_texts, l2_normalise
from analytics.embed.errors import EmbedError
from analytics.embed.models import (
    DEFAULT_MODEL,
    EMBEDDERS,
    Embedder,
    FakeEmbedder,
    SentenceTransformerEmbedder,
    canonical_model_name,
    get_embedder,
    load_embedder,
    model_key,
    register_embedder,
    resolve_device,
)
from analytics.embed.sample import allocate, sample_doc_ids
from analytics.embed.store import (
    EmbeddingSet,
    embeddings_table,
    list_embedding_sets,
    load_embeddings,
)


def embed_parquet_with_ray(*args, **kwargs):
    """See `analytics.embed.ray_engine.embed_parquet_with_ray` (imported lazily)."""
    from analytics.embed.ray_engine import embed_parquet_with_ray as run

    return run(*args, **kwargs)


def export_texts(*args, **kwargs):
    """See `analytics.embed.ray_engine.export_texts`."""
    from analytics.embed.ray_engine import export_texts as run

    return run(*args, **kwargs)


__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDERS",
    "EmbedError",
    "EmbedReport",
    "Embedder",
    "EmbeddingSet",
    "FakeEmbedder",
    "SentenceTransformerEmbedder",
    "allocate",
    "canonical_model_name",
    "embed_corpus",
    "embed_parquet_with_ray",
    "embed_texts",
    "embeddings_table",
    "export_texts",
    "get_embedder",
    "l2_normalise",
    "list_embedding_sets",
    "load_embedder",
    "load_embeddings",
    "model_key",
    "register_embedder",
    "resolve_device",
    "sample_doc_ids",
]
