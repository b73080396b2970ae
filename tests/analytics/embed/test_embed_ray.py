"""Ray Data scale-out of embedding on the shared two-node Ray cluster (tests/conftest.py's
`ray_cluster`: never a Ray instance inside the pytest process) with the fake embedder."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.embed import (
    EmbeddingSet,
    EmbedError,
    FakeEmbedder,
    embed_corpus,
    embed_texts,
    export_texts,
    load_embedder,
    load_embeddings,
)
from analytics.workspace import Workspace
from tests.conftest import add_doc

pytest.importorskip("ray")


def _ws(path, n=50):
    ws = Workspace.open(path, create=True)
    with ws.write(job="docs") as con:
        for i in range(n):
            add_doc(
                con, doc_id=f"r{i:03d}", source="web", text=f"ray text {i} " + "word " * (i % 11)
            )
    return ws


@pytest.fixture
def on_ray(ray_cluster):
    """The cluster's address; the driver disconnects after the test."""
    import ray

    try:
        yield ray_cluster
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_pipeline_writes_a_set_the_workspace_reads(tmp_path, on_ray):
    ray_cluster = on_ray
    from analytics.embed.ray_engine import embed_parquet_with_ray

    ws = _ws(tmp_path / "ws")
    files = export_texts(ws, tmp_path / "in", rows_per_file=20)
    assert len(files) == 3
    out = tmp_path / "ws" / "embeddings" / "fake__msl128"
    man = embed_parquet_with_ray(
        str(tmp_path / "in" / "*.parquet"),
        out,
        model="fake",
        rows_per_call=16,
        num_cpus_per_actor=0,
        ray_address=ray_cluster,
    )
    with pytest.raises(EmbedError, match="already holds"):
        embed_parquet_with_ray(
            str(tmp_path / "in" / "*.parquet"), out, model="fake", ray_address=ray_cluster
        )
    assert man["count"] == 50 and man["dim"] == 32 and man["engine"] == "ray"
    ids, X = load_embeddings(ws, "fake__msl128")
    assert sorted(ids) == [f"r{i:03d}" for i in range(50)]
    texts = dict(
        ws.cursor()
        .execute("SELECT doc_id, text FROM documents JOIN document_text USING (doc_id)")
        .fetchall()
    )
    np.testing.assert_allclose(X, embed_texts(FakeEmbedder(), [texts[i] for i in ids]), atol=1e-7)
    assert EmbeddingSet(out).stored_dim() == 32


@pytest.mark.slow
def test_workspace_job_on_ray_equals_the_local_one_and_resumes(tmp_path, on_ray):
    ray_cluster = on_ray
    from analytics.embed.ray_engine import embed_workspace_with_ray

    emb = load_embedder("fake")
    local = _ws(tmp_path / "local", 40)
    embed_corpus(local, model=emb)
    on_ray = _ws(tmp_path / "ray", 40)
    lines, stages = [], []
    rep = embed_workspace_with_ray(
        on_ray, emb, model="fake", ray_address=ray_cluster, cpus_per_actor=0,
        progress=lambda s, d, t: stages.append(s), on_line=lines.append,
    )  # fmt: skip
    assert (rep.n_target, rep.n_already, rep.n_embedded, rep.n_total) == (40, 0, 40, 40)
    assert lines and lines[0].startswith("Ray: 40 documents") and "embed on ray" in stages
    assert not (tmp_path / "ray" / "ray-staging").exists()  # the staging folder is removed
    a_ids, a = load_embeddings(local, emb.key)
    b_ids, b = load_embeddings(on_ray, emb.key)
    ia, ib = np.argsort(a_ids), np.argsort(b_ids)
    assert list(np.asarray(a_ids)[ia]) == list(np.asarray(b_ids)[ib])
    np.testing.assert_allclose(a[ia], b[ib], atol=1e-6)
    again = embed_workspace_with_ray(on_ray, emb, model="fake", ray_address=ray_cluster)
    assert (again.n_already, again.n_embedded, again.n_total) == (40, 0, 40)
