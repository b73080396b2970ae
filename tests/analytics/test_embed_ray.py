"""Ray Data scale-out on a local 1-CPU Ray instance with the fake embedder."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.embed import (
    EmbeddingSet,
    EmbedError,
    FakeEmbedder,
    embed_texts,
    export_texts,
    load_embeddings,
)
from analytics.workspace import Workspace
from tests.conftest import add_doc

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_pipeline_writes_a_set_the_workspace_reads(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    with ws.write(job="docs") as con:
        for i in range(50):
            add_doc(
                con, doc_id=f"r{i:03d}", source="web", text=f"ray text {i} " + "word " * (i % 11)
            )
    files = export_texts(ws, tmp_path / "in", rows_per_file=20)
    assert len(files) == 3
    out = tmp_path / "ws" / "embeddings" / "fake__msl128"
    from analytics.embed.ray_engine import embed_parquet_with_ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        man = embed_parquet_with_ray(
            str(tmp_path / "in" / "*.parquet"),
            out,
            model="fake",
            rows_per_call=16,
            num_cpus_per_actor=0,
        )
        with pytest.raises(EmbedError, match="already holds"):
            embed_parquet_with_ray(str(tmp_path / "in" / "*.parquet"), out, model="fake")
    finally:
        ray.shutdown()
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
