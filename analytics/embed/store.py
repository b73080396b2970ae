"""Embedding sets on disk: Parquet shards outside the DuckDB file.

Layout (one directory per model key)::

    <workspace>/embeddings/<model_key>/
        manifest.json          model, model_key, dim, max_seq_length, device, dtype, count, ...
        part-00000.parquet     doc_id: string, embedding: fixed_size_list<float32>[dim]
        part-00001.parquet     ...

Every `*.parquet` file not starting with '.' belongs to the set (Ray writes its own names).
Shards are written to a hidden temporary file and published with `os.replace`, so a killed
run leaves only whole shards; `.lock` serialises writers. Vectors are stored L2-normalised.
A 10M x 384 set is ~15 GB of float32 in ~100 shards of 100k rows; reading doc ids or
vectors never touches document text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.embed.errors import EmbedError

EMBEDDINGS_DIR = "embeddings"
MANIFEST = "manifest.json"
FORMAT = "mixscope-embeddings/1"


def embedding_schema(dim: int) -> pa.Schema:
    return pa.schema([("doc_id", pa.string()), ("embedding", pa.list_(pa.float32(), int(dim)))])


def embeddings_table(doc_ids: Sequence[str] | pa.Array, X: np.ndarray) -> pa.Table:
    """An Arrow table in the shard schema from ids and an (N, d) matrix (float32, no copy
    when `X` is already C-contiguous float32)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise EmbedError(f"embeddings must be a 2-D matrix, got shape {X.shape}.")
    ids = doc_ids if isinstance(doc_ids, pa.Array) else pa.array(list(doc_ids), pa.string())
    if ids.type != pa.string():
        ids = ids.cast(pa.string())
    if len(ids) != X.shape[0]:
        raise EmbedError(f"{len(ids)} doc ids for {X.shape[0]} embeddings.")
    values = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), X.shape[1])
    return pa.Table.from_arrays([ids, values], schema=embedding_schema(X.shape[1]))


def matrix_of(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """float32 (N, dim) view/copy of a fixed_size_list<float32> column (zero-copy for a
    single chunk without nulls)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [c.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim) for c in chunks]
    if not parts:
        return np.empty((0, dim), dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class EmbeddingSet:
    """One directory of embedding shards (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_workspace(cls, workspace: Any, model_key: str) -> EmbeddingSet:
        root = Path(getattr(workspace, "path", workspace))
        if not model_key or "/" in model_key or model_key.startswith("."):
            raise EmbedError(f"malformed model key {model_key!r}.")
        return cls(root / EMBEDDINGS_DIR / model_key)

    # ------------------------------------------------------------------ reading
    def shard_paths(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(
            p for p in self.path.glob("*.parquet") if not p.name.startswith(".") and p.is_file()
        )

    @property
    def exists(self) -> bool:
        return bool(self.shard_paths())

    def manifest(self) -> dict[str, Any] | None:
        file = self.path / MANIFEST
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EmbedError(f"{file}: unreadable embedding manifest ({exc}).") from exc

    def stored_dim(self) -> int | None:
        """Dimension of the stored vectors (manifest, else the first shard's schema)."""
        man = self.manifest()
        if man and man.get("dim"):
            return int(man["dim"])
        shards = self.shard_paths()
        if not shards:
            return None
        return _dim_of_schema(pq.read_schema(shards[0]), shards[0])

    def count(self) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.shard_paths())

    def doc_ids(self) -> pa.ChunkedArray:
        """Every stored doc id (reads only the doc_id column)."""
        shards = self.shard_paths()
        if not shards:
            return pa.chunked_array([], pa.string())
        chunks: list[pa.Array] = []
        for p in shards:
            col = pq.read_table(p, columns=["doc_id"]).column("doc_id")
            chunks.extend(c.cast(pa.string()) for c in col.chunks)
        return pa.chunked_array(chunks, pa.string())

    def iter_batches(
        self, *, batch_rows: int = 65_536, doc_ids: pa.Array | None = None
    ) -> Iterator[tuple[pa.Array, np.ndarray]]:
        """Yield (doc ids, float32 matrix) per batch of at most `batch_rows` rows, in shard
        order; with `doc_ids`, only those rows."""
        dim = self.stored_dim()
        if doc_ids is not None:
            doc_ids = _as_string_array(doc_ids)
        for p in self.shard_paths():
            pf = pq.ParquetFile(p)
            _dim_of_schema(pf.schema_arrow, p, expected=dim)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=["doc_id", "embedding"]):
                ids = batch.column(0)
                vecs = batch.column(1)
                if doc_ids is not None:
                    mask = pc.is_in(ids, value_set=doc_ids)
                    ids = ids.filter(mask)
                    vecs = vecs.filter(mask)
                if len(ids):
                    yield ids.cast(pa.string()), matrix_of(vecs, dim)

    def load(
        self, doc_ids: Sequence[str] | pa.Array | pa.ChunkedArray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(doc ids as a numpy object array, float32 (N, d) matrix), in shard order.

        With `doc_ids`, only those ids (ids without a stored vector are left out). The matrix
        is allocated once and filled shard by shard (one copy of the data)."""
        dim = self.stored_dim()
        if dim is None:
            raise EmbedError(f"{self.path}: no embeddings stored here.")
        wanted = None
        if doc_ids is not None:
            wanted = _as_string_array(doc_ids)
        n = self.count() if wanted is None else None
        if n is not None:
            X = np.empty((n, dim), dtype=np.float32)
            ids_out: list[pa.Array] = []
            at = 0
            for ids, M in self.iter_batches(batch_rows=262_144):
                X[at : at + len(ids)] = M
                at += len(ids)
                ids_out.append(ids)
            X = X[:at]
        else:
            ids_out, mats = [], []
            for ids, M in self.iter_batches(batch_rows=262_144, doc_ids=wanted):
                ids_out.append(ids)
                mats.append(M)
            X = np.concatenate(mats) if mats else np.empty((0, dim), dtype=np.float32)
        ids_arr = (
            pa.chunked_array(ids_out, pa.string()) if ids_out else pa.chunked_array([], pa.string())
        )
        return np.asarray(ids_arr.to_numpy(zero_copy_only=False), dtype=object), X

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for writers of this set (released by the OS if the process dies)."""
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / ".lock", "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise EmbedError(
                    f"{self.path}: another embedding job is writing this set; wait for it "
                    "to finish."
                ) from None
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def check_dim(self, dim: int) -> None:
        stored = self.stored_dim()
        if stored is not None and stored != int(dim):
            raise EmbedError(
                f"{self.path}: the stored embeddings have dimension {stored} but the model "
                f"gives {dim}; the same model key cannot hold both. Remove the directory or use "
                "another model / max_seq_length."
            )

    def _next_shard_number(self) -> int:
        nums = []
        for p in self.shard_paths():
            stem = p.stem
            if stem.startswith("part-") and stem[5:].isdigit():
                nums.append(int(stem[5:]))
        return max(nums) + 1 if nums else 0

    def write_shard(self, table: pa.Table) -> Path:
        """Write one shard atomically (hidden tmp file + os.replace); return its path."""
        dim = _dim_of_schema(table.schema, self.path / "<new shard>")
        self.check_dim(dim)
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / f"part-{self._next_shard_number():05d}.parquet"
        tmp = self.path / f".{final.name}.{os.getpid()}.tmp"
        try:
            pq.write_table(
                table,
                tmp,
                compression={"doc_id": "zstd", "embedding": "none"},
                use_dictionary=["doc_id"],
                row_group_size=65_536,
            )
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def write_manifest(self, info: dict[str, Any]) -> dict[str, Any]:
        """Merge `info` into the manifest, refresh count/updated, write atomically."""
        man = self.manifest() or {"format": FORMAT, "created": _now()}
        man.update(info)
        man["count"] = self.count()
        man["updated"] = _now()
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(man, indent=2, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, self.path / MANIFEST)
        return man

    def clean_tmp(self) -> None:
        for p in self.path.glob(".*.tmp"):
            p.unlink(missing_ok=True)


def _dim_of_schema(schema: pa.Schema, where: Path, expected: int | None = None) -> int:
    try:
        field = schema.field("embedding")
        schema.field("doc_id")
    except KeyError:
        raise EmbedError(
            f"{where}: expected columns doc_id (string) and embedding "
            f"(fixed_size_list<float32>); found {', '.join(schema.names)}."
        ) from None
    t = field.type
    if not pa.types.is_fixed_size_list(t) or not pa.types.is_float32(t.value_type):
        raise EmbedError(
            f"{where}: column embedding has type {t}, expected fixed_size_list<float32>."
        )
    if expected is not None and t.list_size != expected:
        raise EmbedError(
            f"{where}: embeddings of dimension {t.list_size}, but the set has dimension {expected}."
        )
    return t.list_size


def _as_string_array(values: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array([str(v) for v in values], pa.string())
    return values if values.type == pa.string() else values.cast(pa.string())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def list_embedding_sets(workspace: Any) -> list[dict[str, Any]]:
    """Manifests of every embedding set in a workspace (count refreshed from the shards)."""
    root = Path(getattr(workspace, "path", workspace)) / EMBEDDINGS_DIR
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            s = EmbeddingSet(d)
            if d.is_dir() and (s.exists or s.manifest()):
                man = dict(s.manifest() or {"model_key": d.name})
                man["count"] = s.count()
                man.setdefault("model_key", d.name)
                man["path"] = str(d)
                out.append(man)
    return out


def load_embeddings(
    workspace: Any, model_key: str, doc_ids: Sequence[str] | pa.Array | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(doc ids, float32 (N, d) unit-norm matrix) of set `model_key` in `workspace` (a
    Workspace or its directory). Raises EmbedError naming the available keys when absent."""
    s = EmbeddingSet.for_workspace(workspace, model_key)
    if not s.exists:
        raise EmbedError(_missing_message(workspace, model_key))
    return s.load(doc_ids)


def _missing_message(workspace: Any, model_key: str) -> str:
    keys = [m["model_key"] for m in list_embedding_sets(workspace)]
    have = f"available: {', '.join(keys)}" if keys else "none exist yet"
    return (
        f"no embeddings for model key {model_key!r} in {getattr(workspace, 'path', workspace)} "
        f"({have}); run `mixscope embed` first."
    )
