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
    if progress:
        progress("load", 0, 1)
    emb = (
        model
        if isinstance(model, Embedder)
        else load_embedder(model, device=device, max_seq_length=max_seq_length)
    )
    if progress:
        progress("load", 1, 1)
    eset = EmbeddingSet.for_workspace(workspace, emb.key)
    started = time.monotonic()
    with eset.lock():
        eset.clean_tmp()
        eset.check_dim(emb.dim)
        info = emb.describe()
        info["normalized"] = True
        eset.write_manifest(info)

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
        n_already = n_target - n_todo

        cap = emb.max_chars
        text_expr = "x.text" if not cap else f"left(x.text, {int(cap)})"
        reader = reader_cur.sql(
            f"SELECT d.doc_id, {text_expr} AS text FROM documents d "
            f"JOIN document_text x ON x.doc_id = d.doc_id{joins}"
        ).to_arrow_reader(read_batch_rows)

        buf_ids: list[pa.Array] = []
        buf_vecs: list[np.ndarray] = []
        buffered = 0
        done = 0
        shards = 0
        last_flush = time.monotonic()

        def write(ids: pa.Array, X: np.ndarray) -> None:
            nonlocal shards
            eset.write_shard(embeddings_table(ids, X))
            shards += 1
            eset.write_manifest({})
            if progress:
                progress("write", shards, 0)

        def flush(*, all_rows: bool) -> None:
            """Write full shards of `shard_rows` rows (and the remainder when `all_rows`)."""
            nonlocal buf_ids, buf_vecs, buffered, last_flush
            if not buffered:
                return
            ids = pa.concat_arrays(buf_ids)
            X = np.concatenate(buf_vecs)
            at = 0
            while buffered - at >= shard_rows:
                write(ids.slice(at, shard_rows), X[at : at + shard_rows])
                at += shard_rows
            if all_rows and at < buffered:
                write(ids.slice(at), X[at:])
                at = buffered
            buf_ids = [ids.slice(at)] if at < buffered else []
            buf_vecs = [X[at:]] if at < buffered else []
            buffered -= at
            last_flush = time.monotonic()

        if progress:
            progress("embed", 0, n_todo)
        try:
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                ids = batch.column(0).cast(pa.string())
                texts = batch.column(1).to_pylist()
                X = embed_texts(emb, texts, batch_size=batch_size, max_chars=None)
                buf_ids.append(ids)
                buf_vecs.append(X)
                buffered += len(ids)
                done += len(ids)
                if buffered >= shard_rows:
                    flush(all_rows=False)
                if buffered and time.monotonic() - last_flush >= flush_every_s:
                    flush(all_rows=True)
                if progress:
                    progress("embed", done, n_todo)
        except BaseException:
            # vectors already computed are valid: keep them, then re-raise the interruption
            with contextlib.suppress(Exception):
                flush(all_rows=True)
            raise
        flush(all_rows=True)
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
        n_target=n_target,
        n_already=n_already,
        n_embedded=done,
        n_total=int(man["count"]),
        n_corpus=n_corpus,
        seconds=seconds,
        docs_per_s=done / seconds if seconds > 0 else 0.0,
        shards_written=shards,
    )
