"""`embed_corpus`: embed a workspace's documents into an embedding set, resumably.

Doc ids and (clipped) text are streamed from a read-only workspace cursor in Arrow batches;
documents whose id is already stored for the model key are skipped inside DuckDB (anti-join),
so an interrupted run resumes where it stopped and every document is embedded once. Shards
are flushed every `shard_rows` rows or `flush_every_s` seconds, whichever comes first, so a
slow CPU run loses at most a few minutes of work when killed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from analytics.db import scalar
from analytics.embed.encode import embed_texts
from analytics.embed.errors import EmbedError
from analytics.embed.models import DEFAULT_MODEL, Embedder, load_embedder
from analytics.embed.sample import sample_doc_ids
from analytics.embed.store import EmbeddingSet, _now, embeddings_table

Progress = Callable[[str, int, int], None]


@dataclass
class EmbedReport:
    model: str
    model_key: str
    dim: int
    device: str
    dtype: str
    path: str
    n_target: int  # documents the run was asked to cover (corpus or sample)
    n_already: int  # of those, already embedded before this run
    n_embedded: int  # embedded by this run
    n_total: int  # vectors stored in the set after the run
    n_corpus: int
    seconds: float
    docs_per_s: float
    shards_written: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def embed_corpus(
    workspace: Any,
    *,
    model: str | Embedder = DEFAULT_MODEL,
    max_seq_length: int | None = None,
    sample: int | None = None,
    stratify_by: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    shard_rows: int = 100_000,
    flush_every_s: float = 300.0,
    read_batch_rows: int = 4_096,
    progress: Progress | None = None,
) -> EmbedReport:
    """Embed the documents of `workspace` (all of them, or a `sample` of that many, optionally
    stratified by a documents column) with `model` and store them under
    `<workspace>/embeddings/<model_key>/`.

    `model` is a name/path for `load_embedder` or a ready Embedder. Progress stages:
    ("load", 0, 1), ("embed", docs done in this run, docs to do), ("write", shards, 0).
    """
    if shard_rows <= 0 or read_batch_rows <= 0:
        raise EmbedError("shard_rows and read_batch_rows must be positive.")
    if stratify_by is not None and sample is None:
        raise EmbedError("stratify_by needs a sample size (sample=N).")
    emb = _load(model, device, max_seq_length, progress)
    eset = EmbeddingSet.for_workspace(workspace, emb.key)
    started = time.monotonic()
    with eset.lock():
        eset.clean_tmp()
        eset.check_dim(emb.dim)
        info = emb.describe()
        info["normalized"] = True
        eset.write_manifest(info)
        todo = _todo(workspace, eset, emb, sample, stratify_by, seed, read_batch_rows)
        buffer = _ShardBuffer(eset, shard_rows, progress)
        done = _embed_stream(todo, emb, batch_size, buffer, flush_every_s, progress)
        seconds = time.monotonic() - started
        runs = list((eset.manifest() or {}).get("runs", []))
        runs.append(
            {
                "finished": _now(),
                "n_embedded": done,
                "sample": sample,
                "stratify_by": stratify_by,
                "seed": seed,
                "device": emb.device,
                "dtype": emb.dtype,
                "batch_size": batch_size,
                "seconds": round(seconds, 3),
            }
        )
        man = eset.write_manifest({"runs": runs[-50:]})
    return EmbedReport(
        model=emb.name,
        model_key=emb.key,
        dim=emb.dim,
        device=emb.device,
        dtype=emb.dtype,
        path=str(eset.path),
        n_target=todo.n_target,
        n_already=todo.n_target - todo.n_todo,
        n_embedded=done,
        n_total=int(man["count"]),
        n_corpus=todo.n_corpus,
        seconds=seconds,
        docs_per_s=done / seconds if seconds > 0 else 0.0,
        shards_written=buffer.shards,
    )


def _load(
    model: str | Embedder, device: str, max_seq_length: int | None, progress: Progress | None
) -> Embedder:
    """The embedder (`model` itself when it is one), with the "load" progress stage."""
    if progress:
        progress("load", 0, 1)
    emb = (
        model
        if isinstance(model, Embedder)
        else load_embedder(model, device=device, max_seq_length=max_seq_length)
    )
    if progress:
        progress("load", 1, 1)
    return emb


@dataclass
class _Todo:
    """The documents still to embed: a reader of (doc_id, clipped text) batches, and counts."""

    reader: Any
    n_corpus: int
    n_target: int
    n_todo: int


def _todo(
    workspace: Any,
    eset: EmbeddingSet,
    emb: Embedder,
    sample: int | None,
    stratify_by: str | None,
    seed: int,
    read_batch_rows: int,
) -> _Todo:
    """The documents of the corpus (or of the sample) not yet in the set, streamed."""
    cur = workspace.cursor()
    n_corpus = int(scalar(cur, "SELECT count(*) FROM documents"))
    target = None
    if sample is not None:
        target = sample_doc_ids(cur, sample, stratify_by=stratify_by, seed=seed)
    existing = eset.doc_ids().combine_chunks()

    reader_cur = workspace.cursor()
    reader_cur.register("_mx_embedded", pa.table({"doc_id": existing}))
    joins = " ANTI JOIN _mx_embedded e ON d.doc_id = e.doc_id"
    if target is not None:
        reader_cur.register("_mx_target", pa.table({"doc_id": target}))
        joins = " SEMI JOIN _mx_target t ON d.doc_id = t.doc_id" + joins
    n_target = len(target) if target is not None else n_corpus
    n_todo = int(scalar(reader_cur, f"SELECT count(*) FROM documents d{joins}"))

    cap = emb.max_chars
    text_expr = "x.text" if not cap else f"left(x.text, {int(cap)})"
    reader = reader_cur.sql(
        f"SELECT d.doc_id, {text_expr} AS text FROM documents d "
        f"JOIN document_text x ON x.doc_id = d.doc_id{joins}"
    ).to_arrow_reader(read_batch_rows)
    return _Todo(reader, n_corpus, n_target, n_todo)


class _ShardBuffer:
    """Vectors waiting to be written, cut into shards of `shard_rows` rows."""

    def __init__(self, eset: EmbeddingSet, shard_rows: int, progress: Progress | None):
        self.eset, self.shard_rows, self.progress = eset, shard_rows, progress
        self.ids: list[pa.Array] = []
        self.vecs: list[np.ndarray] = []
        self.buffered = 0
        self.shards = 0
        self.last_flush = time.monotonic()

    def add(self, ids: pa.Array, X: np.ndarray) -> None:
        self.ids.append(ids)
        self.vecs.append(X)
        self.buffered += len(ids)

    def _write(self, ids: pa.Array, X: np.ndarray) -> None:
        self.eset.write_shard(embeddings_table(ids, X))
        self.shards += 1
        self.eset.write_manifest({})
        if self.progress:
            self.progress("write", self.shards, 0)

    def flush(self, *, all_rows: bool) -> None:
        """Write full shards of `shard_rows` rows (and the remainder when `all_rows`)."""
        if not self.buffered:
            return
        ids = pa.concat_arrays(self.ids)
        X = np.concatenate(self.vecs)
        at, rows = 0, self.shard_rows
        while self.buffered - at >= rows:
            self._write(ids.slice(at, rows), X[at : at + rows])
            at += rows
        if all_rows and at < self.buffered:
            self._write(ids.slice(at), X[at:])
            at = self.buffered
        self.ids = [ids.slice(at)] if at < self.buffered else []
        self.vecs = [X[at:]] if at < self.buffered else []
        self.buffered -= at
        self.last_flush = time.monotonic()


def _embed_stream(
    todo: _Todo,
    emb: Embedder,
    batch_size: int,
    buffer: _ShardBuffer,
    flush_every_s: float,
    progress: Progress | None,
) -> int:
    """Embed every batch of the reader into the buffer, flushing full shards and, every
    `flush_every_s` seconds, the rest; documents embedded. An interruption keeps the vectors
    already computed (flushed), then propagates."""
    done = 0
    if progress:
        progress("embed", 0, todo.n_todo)
    try:
        for batch in todo.reader:
            if batch.num_rows == 0:
                continue
            ids = batch.column(0).cast(pa.string())
            texts = batch.column(1).to_pylist()
            X = embed_texts(emb, texts, batch_size=batch_size, max_chars=None)
            buffer.add(ids, X)
            done += len(ids)
            if buffer.buffered >= buffer.shard_rows:
                buffer.flush(all_rows=False)
            if buffer.buffered and time.monotonic() - buffer.last_flush >= flush_every_s:
                buffer.flush(all_rows=True)
            if progress:
                progress("embed", done, todo.n_todo)
    except BaseException:
        # vectors already computed are valid: keep them, then re-raise the interruption
        with contextlib.suppress(Exception):
            buffer.flush(all_rows=True)
        raise
    buffer.flush(all_rows=True)
    return done
