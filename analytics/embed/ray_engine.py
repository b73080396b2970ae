"""Scale-out embedding with Ray Data: `read_parquet -> map_batches(actor pool) -> write_parquet`.

The actors run the same `embed_texts` as the local path and write the same shard schema
(doc_id string, embedding fixed_size_list<float32>[d]) plus a `manifest.json`, so an output
directory `<workspace>/embeddings/<model_key>/` is read by the workspace like any local set.

On an existing Ray cluster: export the texts with `export_texts` (or point at any Parquet
with doc_id/text columns on shared storage), then call `embed_parquet_with_ray(...,
ray_address="auto")` from a node of the cluster; `num_gpus_per_actor=1` places one model
replica per GPU, `concurrency` sets the number of actors.

Needs `pip install "ray[data]"`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from analytics.embed.encode import embed_texts
from analytics.embed.errors import EmbedError
from analytics.embed.models import DEFAULT_MODEL, load_embedder
from analytics.embed.sample import sample_doc_ids
from analytics.embed.store import EmbeddingSet, embeddings_table

Progress = Callable[[str, int, int], None]


class RayEmbedder:
    """Ray Data callable class: loads the model once per actor, embeds Arrow batches."""

    def __init__(
        self,
        model: str,
        *,
        max_seq_length: int | None,
        device: str,
        batch_size: int,
        id_column: str,
        text_column: str,
        dim: int | None = None,
    ):
        self.embedder = load_embedder(model, device=device, max_seq_length=max_seq_length, dim=dim)
        self.batch_size = batch_size
        self.id_column = id_column
        self.text_column = text_column

    def __call__(self, batch: pa.Table) -> pa.Table:
        ids = batch.column(self.id_column).combine_chunks().cast(pa.string())
        texts = [t if t is not None else "" for t in batch.column(self.text_column).to_pylist()]
        X = embed_texts(self.embedder, texts, batch_size=self.batch_size)
        return embeddings_table(ids, X)


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise EmbedError('the Ray engine needs Ray Data: pip install "ray[data]"') from exc
    _settle_fsspec_http()
    return ray


def _settle_fsspec_http() -> None:
    """The driver's side of :mod:`analytics.ray_hook` (whose hook every worker runs): Ray Data
    probes `fsspec.implementations.http` from several threads here too."""
    from analytics.ray_hook import setup_worker

    setup_worker()


def _input_files(input_glob: str | list[str], id_column: str, text_column: str) -> list[str]:
    """The Parquet files of `input_glob`, sorted; the first one must have both columns."""
    patterns = [input_glob] if isinstance(input_glob, str) else list(input_glob)
    files = sorted({f for pat in patterns for f in glob.glob(os.path.expanduser(pat))})
    if not files:
        raise EmbedError(f"no Parquet files match {input_glob!r}.")
    schema = pq.read_schema(files[0])
    for col in (id_column, text_column):
        if col not in schema.names:
            raise EmbedError(
                f"{files[0]}: no column {col!r}; columns are {', '.join(schema.names)}."
            )
    return files


def _empty_output(output_dir: str | os.PathLike, overwrite: bool) -> EmbeddingSet:
    """The output set, emptied of its Parquet files when `overwrite` (else refused)."""
    out = EmbeddingSet(output_dir)
    if out.shard_paths():
        if not overwrite:
            raise EmbedError(
                f"{output_dir} already holds {len(out.shard_paths())} Parquet files; choose an "
                "empty directory or pass overwrite=True."
            )
        for p in out.shard_paths():
            p.unlink()
    return out


def _ray_init(ray, ray_address: str | None) -> None:
    """Connect unless connected: a local instance (no address) or the cluster at the
    address (a one-line EmbedError when it does not answer). Workers run the setup hook."""
    if ray.is_initialized():
        return
    if ray_address is None:
        from analytics.ray_hook import runtime_env

        ray.init(ignore_reinit_error=True, log_to_driver=False, runtime_env=runtime_env())
        return
    from analytics.engine import EngineError, ray_connect

    try:
        ray_connect(ray_address)
    except EngineError as exc:
        raise EmbedError(str(exc)) from None


def embed_parquet_with_ray(
    input_glob: str | list[str],
    output_dir: str | os.PathLike,
    *,
    model: str = DEFAULT_MODEL,
    max_seq_length: int | None = None,
    batch_size: int = 64,
    rows_per_call: int = 1_024,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float | None = None,
    concurrency: int = 1,
    id_column: str = "doc_id",
    text_column: str = "text",
    rows_per_file: int = 100_000,
    ray_address: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Embed Parquet files (`input_glob`: glob(s) with `id_column`/`text_column`) on Ray and
    write shards + manifest.json to `output_dir`; return the manifest.

    Actors: `concurrency` of them, each with `num_gpus_per_actor` GPUs (device 'cuda' when
    > 0, else 'cpu') and `num_cpus_per_actor` CPUs (Ray's default 1; on a 1-CPU local
    instance pass 0 so that Ray Data's 1-CPU read tasks can run beside the actor). Ray is
    initialised locally unless it already is or `ray_address` is given. Refuses a non-empty
    `output_dir` unless `overwrite=True` (its Parquet files are then removed first), so a set
    never holds two copies of a document.
    """
    ray = _import_ray()
    files = _input_files(input_glob, id_column, text_column)
    out = _empty_output(output_dir, overwrite)
    # the driver loads the model once: it checks the name offline and gives dim/key/name
    probe = load_embedder(model, device="cpu", max_seq_length=max_seq_length)
    _ray_init(ray, ray_address)
    device = "cuda" if num_gpus_per_actor and num_gpus_per_actor > 0 else "cpu"
    ds = ray.data.read_parquet(files, columns=[id_column, text_column])
    ds = ds.map_batches(
        RayEmbedder,
        fn_constructor_kwargs={
            "model": model,
            "max_seq_length": probe.max_seq_length,
            "device": device,
            "batch_size": batch_size,
            "id_column": id_column,
            "text_column": text_column,
            "dim": probe.dim,
        },
        batch_size=rows_per_call,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=int(concurrency)),
        num_gpus=num_gpus_per_actor or None,
        num_cpus=num_cpus_per_actor,
    )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    ds.write_parquet(str(output_dir), max_rows_per_file=int(rows_per_file))
    if out.shard_paths():
        out.check_dim(probe.dim)
    info = probe.describe()
    info.update(
        {
            "device": device,
            "dtype": "float16" if device == "cuda" else "float32",
            "normalized": True,
            "engine": "ray",
            "inputs": files[:100],
        }
    )
    return out.write_manifest(info)


def export_texts(
    workspace: Any,
    out_dir: str | os.PathLike,
    *,
    rows_per_file: int = 100_000,
    sample: int | None = None,
    stratify_by: str | None = None,
    seed: int = 0,
    skip_model_key: str | None = None,
    max_chars: int | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write doc_id/text Parquet files of a workspace's documents (or a sample) for a Ray
    job; with `skip_model_key`, leave out documents already embedded under that key.
    `max_chars` clips texts (e.g. 20 x max_seq_length) to keep the files small."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cur = workspace.cursor()
    joins = ""
    if sample is not None:
        cur.register(
            "_mx_target",
            pa.table({"doc_id": sample_doc_ids(cur, sample, stratify_by=stratify_by, seed=seed)}),
        )
        joins += " SEMI JOIN _mx_target t ON d.doc_id = t.doc_id"
    if skip_model_key:
        done = EmbeddingSet.for_workspace(workspace, skip_model_key).doc_ids().combine_chunks()
        cur.register("_mx_embedded", pa.table({"doc_id": done}))
        joins += " ANTI JOIN _mx_embedded e ON d.doc_id = e.doc_id"
    text = "x.text" if not max_chars else f"left(x.text, {int(max_chars)})"
    reader = cur.sql(
        f"SELECT d.doc_id, {text} AS text FROM documents d "
        f"JOIN document_text x ON x.doc_id = d.doc_id{joins}"
    ).to_arrow_reader(rows_per_file)
    paths: list[Path] = []
    for batch in reader:
        if batch.num_rows == 0:
            continue
        path = out / f"texts-{len(paths):05d}.parquet"
        pq.write_table(pa.Table.from_batches([batch]), path, compression="zstd")
        paths.append(path)
        if progress:
            progress("export", len(paths), 0)
    return paths


@dataclasses.dataclass
class RayEmbedReport:
    """What :func:`embed_workspace_with_ray` did (the same counts as the local EmbedReport)."""

    n_target: int  # documents asked for (the sample, or the corpus)
    n_already: int  # of those, already embedded before this run
    n_embedded: int  # vectors added by this run
    seconds: float
    n_total: int  # vectors in the set now
    n_corpus: int
    path: Path
    actors: int = 0
    gpus_per_actor: float = 0.0


def _teller(progress: Progress | None) -> Progress:
    """progress(stage, done, total) to the job's progress.json (when run as a job) and to
    `progress`."""
    from analytics.jobs import JobReporter

    job = JobReporter()

    def tell(stage: str, done: int, total: int) -> None:
        job(stage, done, total)
        if progress:
            progress(stage, done, total)

    return tell


def _ray_actors(
    ray_address: str | None, device: str, gpus_per_actor: float | None, actors: int | None
) -> tuple[float, float, int]:
    """Connect; (the cluster's GPUs, GPUs per actor, actors): by default one GPU per actor
    and an actor per GPU when the cluster has GPUs (and `device` allows), else one CPU
    actor."""
    from analytics.engine import EngineError, ray_connect

    try:
        ray = ray_connect(ray_address)
    except EngineError as exc:
        raise EmbedError(str(exc)) from None
    gpus = float(ray.cluster_resources().get("GPU", 0) or 0)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 and device in ("auto", "cuda") else 0.0
    if actors is None:
        actors = max(1, int(gpus // gpus_per_actor)) if gpus_per_actor else 1
    return gpus, gpus_per_actor, actors


def _remove_staging(run_dir: Path, default_root: Path | None) -> None:
    """The run's staging folder removed, and the default staging root when empty."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if default_root is not None:
        with contextlib.suppress(OSError):
            default_root.rmdir()  # only when empty


def _move_into_set(out: Path, eset: EmbeddingSet, stamp: str) -> None:
    """The Ray job's shards moved into the set (named after the run's stamp)."""
    eset.path.mkdir(parents=True, exist_ok=True)
    for i, shard in enumerate(EmbeddingSet(out).shard_paths()):
        shutil.move(str(shard), str(eset.path / f"ray-{stamp}-{i:05d}.parquet"))


def _record_run(eset: EmbeddingSet, emb: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The set's manifest rewritten with the model's description and `run` appended to its
    runs (the last 50 kept); the manifest."""
    info = emb.describe()
    info["normalized"] = True
    runs = list((eset.manifest() or {}).get("runs", []))
    runs.append(run)
    if run["gpus_per_actor"]:
        info.update({"device": "cuda", "dtype": "float16"})
    return eset.write_manifest({**info, "runs": runs[-50:]})


def embed_workspace_with_ray(
    ws: Any,
    emb: Any,
    *,
    model: str,
    sample: int | None = None,
    stratify_by: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    ray_address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float | None = None,
    staging: str | os.PathLike | None = None,
    progress: Progress | None = None,
    on_line: Callable[[str], None] | None = None,
) -> RayEmbedReport:
    """Embed the workspace's documents (or a seeded sample) not yet in `emb`'s set on Ray.

    Exports the texts still to embed to Parquet under `staging` (default
    ``<workspace>/ray-staging``; on a multi-node cluster a folder mounted at the same path on
    every node), embeds them with Ray Data actors (:func:`embed_parquet_with_ray`) into a
    staging folder, then moves the shards into the set under the set's lock and records the
    run in its manifest. `progress(stage, done, total)` gets the export ("export") and the
    embedding ("embed on ray"); `on_line` a line describing the Ray job. Resumable: a second
    run embeds only what is missing."""
    from analytics.db import scalar
    from analytics.embed.store import _now

    _import_ray()  # a clear 'pip install "ray[data]"' when Ray is missing
    eset = EmbeddingSet.for_workspace(ws, emb.key)
    eset.check_dim(emb.dim)
    n_corpus = int(scalar(ws.cursor(), "SELECT count(*) FROM documents") or 0)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    root = Path(staging or Path(ws.path) / "ray-staging").expanduser().resolve()
    run_dir = root / f"{emb.key}-{stamp}-{os.getpid()}"
    started = time.monotonic()
    before = eset.count()
    tell = _teller(progress)
    n_target = sample or n_corpus
    try:
        with eset.lock():
            files = export_texts(
                ws, run_dir / "texts", sample=sample, stratify_by=stratify_by, seed=seed,
                skip_model_key=emb.key, max_chars=emb.max_chars, progress=tell,
            )  # fmt: skip
            n_todo = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            if n_todo == 0:
                return RayEmbedReport(n_target, n_target, 0, time.monotonic() - started,
                                      before, n_corpus, eset.path)  # fmt: skip
            gpus, gpus_per_actor, actors = _ray_actors(ray_address, device, gpus_per_actor, actors)
            if on_line:
                on_line(
                    f"Ray: {n_todo:,} documents in {len(files)} file(s), {actors} actor(s) "
                    f"with {gpus_per_actor:g} GPU each (cluster: {gpus:g} GPUs)"
                )
            tell("embed on ray", 0, n_todo)
            out = run_dir / "out"
            embed_parquet_with_ray(
                str(run_dir / "texts" / "*.parquet"), out, model=model,
                max_seq_length=emb.max_seq_length, batch_size=batch_size,
                num_gpus_per_actor=gpus_per_actor, num_cpus_per_actor=cpus_per_actor,
                concurrency=actors, ray_address=ray_address,
            )  # fmt: skip
            _move_into_set(out, eset, stamp)
            seconds = time.monotonic() - started
            man = _record_run(eset, emb, {
                "finished": _now(), "engine": "ray", "ray_address": ray_address,
                "actors": actors, "gpus_per_actor": gpus_per_actor, "n_embedded": n_todo,
                "sample": sample, "stratify_by": stratify_by, "seed": seed,
                "batch_size": batch_size, "seconds": round(seconds, 3),
            })  # fmt: skip
            tell("embed on ray", n_todo, n_todo)
    finally:
        _remove_staging(run_dir, None if staging is not None else root)
    return RayEmbedReport(
        n_target, n_target - n_todo, man["count"] - before, seconds, man["count"], n_corpus,
        eset.path, actors, gpus_per_actor,
    )  # fmt: skip
