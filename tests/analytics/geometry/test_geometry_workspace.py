"""Checks on the shared geometry fixture workspace (built in tests/workspaces/geometry.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.workspaces.geometry import (
    SOURCES,
    copy_of,
    counts,
)


# ---------------------------------------------------------------------- storage checks
def test_registry_probe_and_result_index(geometry_ws):
    cur = geometry_ws.cursor()
    regs = cur.execute(
        "SELECT run, checkpoint, step, hidden_size, num_layers FROM geometry_run_checkpoints "
        "ORDER BY run, ordinal"
    ).df()
    tiny = regs[regs.run == "tiny"]
    assert tiny["step"].tolist() == [1, 2, 4, 8]
    assert set(tiny["hidden_size"]) == {32} and set(tiny["num_layers"]) == {2}
    mini = regs[regs.run == "minilm"]
    assert len(mini) == 1 and mini["step"].isna().all() and mini["hidden_size"].iloc[0] == 384
    # the training loss log comes from the newest checkpoint's trainer_state.json
    log = cur.execute("SELECT step, loss FROM geometry_train_log WHERE run = 'tiny'").df()
    assert log["step"].tolist() == list(range(1, 9)) and log["loss"].notna().all()
    # the probe: 64 documents, 16 per source, recorded in order with its hash
    probes = cur.execute("SELECT probe_hash, size, stratify_by, seed FROM geometry_probes").df()
    assert len(probes) == 1 and probes["size"].iloc[0] == 64
    assert probes["stratify_by"].iloc[0] == "source"
    docs = cur.execute(
        'SELECT "group", count(*) AS n FROM geometry_probe_docs GROUP BY 1 ORDER BY 1'
    ).df()
    assert docs["group"].tolist() == list(SOURCES) and (docs["n"] == 16).all()
    # result index: 4 checkpoint results + 3 consecutive pairs for tiny, 1 for minilm
    idx = cur.execute(
        "SELECT run, kind, count(*) AS n FROM geometry_results GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert idx == [("minilm", "checkpoint", 1), ("tiny", "checkpoint", 4), ("tiny", "pair", 3)]


def test_stored_tables_have_the_expected_shape(geometry_ws):
    cur = geometry_ws.cursor()
    m = cur.execute("SELECT * FROM geometry_metrics WHERE run = 'tiny'").df()
    # 4 checkpoints x 3 hidden states x (all + 4 sources) x 8 records (7 metric functions,
    # alpha-ReQ gives alpha and R^2)
    assert len(m) == 4 * 3 * 5 * 8
    assert set(m["group"]) == {"all", *SOURCES}
    mm = cur.execute("SELECT * FROM geometry_metrics WHERE run = 'minilm'").df()
    assert len(mm) == 1 * 7 * 5 * 8  # MiniLM: embeddings + 6 layers
    cka = cur.execute(
        "SELECT kind, count(*) FROM geometry_cka WHERE run = 'tiny' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert cka == [("checkpoints", 3 * 3), ("layers", 4 * 6)]
    loss = cur.execute(
        """SELECT step, bits_per_byte FROM geometry_loss WHERE run = 'tiny' AND "group" = 'all'
           ORDER BY step"""
    ).df()
    assert loss["bits_per_byte"].iloc[-1] < loss["bits_per_byte"].iloc[0]
    assert not cur.execute("SELECT count(*) FROM geometry_loss WHERE run = 'minilm'").fetchall()[0][
        0
    ]  # an encoder: no loss


def test_workspace_cache_round_trip_and_save_result_idempotent(geometry_ws, tmp_path):
    """What the cache adapter reads back is what compute_geometry returns, and save_result
    adds nothing for keys already stored."""
    from analytics.geometry import compute_geometry
    from analytics.geometry.store import (
        WorkspaceCache,
        build_probe,
        run_checkpoints,
        save_result,
    )

    ws = copy_of(geometry_ws.path, tmp_path / "ws")
    before = counts(ws)
    with ws.write(job="test") as con:
        probe = build_probe(con, size=64, stratify_by="source", seed=0)
        cks = run_checkpoints(con, "tiny")
        params = dict(max_tokens=32)
        from analytics.geometry import geometry_params, probe_hash

        p = geometry_params(**params)
        ph = probe_hash(probe["text"].tolist(), probe["group"].tolist())
        cache = WorkspaceCache(con, "tiny", probe=ph, params=p)
        res = compute_geometry(
            cks, probe["text"].tolist(), probe["group"].tolist(), cache=cache, **params
        )
        assert cache.hits == 4 + 3 and cache.misses == 0 and cache.added == 0
        assert res.checkpoints["from_cache"].all()
        assert save_result(con, "tiny", res) == 0
        # under a new run name every key is new: 4 checkpoints + 3 pairs
        assert save_result(con, "tiny-copy", res) == 7
        assert save_result(con, "tiny-copy", res) == 0
    after = counts(ws)
    stored = (
        ws.cursor()
        .execute(
            "SELECT value FROM geometry_metrics WHERE run = 'tiny' ORDER BY checkpoint, layer, "
            '"group", metric, variant'
        )
        .df()
    )
    copied = (
        ws.cursor()
        .execute(
            "SELECT value FROM geometry_metrics WHERE run = 'tiny-copy' "
            "ORDER BY checkpoint, layer, "
            '"group", metric, variant'
        )
        .df()
    )
    pd.testing.assert_frame_equal(stored, copied)
    assert after["geometry_metrics"] == 2 * before["geometry_metrics"] - len(
        ws.cursor().execute("SELECT 1 FROM geometry_metrics WHERE run = 'minilm'").fetchall()
    )


# ---------------------------------------------------------------------- fixes in the library
def test_degenerate_representation_gives_nan_not_an_error():
    """Every row equal (an encoder's [SEP] at layer 0 under last-token pooling): the centred
    covariance is zero, so covariance RankMe / alpha are undefined -> NaN, and the other
    metrics still come out."""
    import numpy as np

    from analytics.geometry.metrics import DEFAULT_METRIC_PARAMS, REPRESENTATION_METRICS, ZSpectra

    z = np.tile([1.0, 2.0, 0.5, 4.0, 3.0, 8.0], (12, 1))  # exact in binary: centred Z == 0
    sp = ZSpectra(z)
    p = {**DEFAULT_METRIC_PARAMS, "alpha_fit_range": [11, 100]}
    out = {
        (r["metric"], r["variant"]): r["value"]
        for fn in REPRESENTATION_METRICS.values()
        for r in fn(sp, p)
    }
    assert np.isnan(out[("rankme", "covariance")])
    # rank one: a single non-zero singular value -> RankMe ~ 1, stable rank 1, cosine 1
    assert out[("rankme", "singular")] == pytest.approx(1.0, abs=1e-4)
    assert out[("stable_rank", "uncentred")] == pytest.approx(1.0)
    assert out[("anisotropy", "cosine")] == pytest.approx(1.0)


def test_top_left_singular_vectors_match_numpy_svd():
    import numpy as np

    from analytics.geometry.weights import _top_left_singular

    rng = np.random.default_rng(3)
    for shape in ((300, 40), (40, 300), (64, 64)):
        w = rng.standard_normal(shape) * np.linspace(3.0, 0.1, shape[1])
        u_ref, s_ref, _ = np.linalg.svd(w, full_matrices=False)
        u, s = _top_left_singular(w, 10)
        np.testing.assert_allclose(s, s_ref[:10], rtol=1e-10)
        # same vectors up to sign: |<u_j, u_ref_j>| = 1
        np.testing.assert_allclose(np.abs(np.sum(u * u_ref[:, :10], axis=0)), 1.0, atol=1e-8)


def test_metric_labels_name_variant_and_parameters():
    from analytics.geometry.views import metric_label

    assert metric_label("rankme/singular", '{"centred": false, "eps": 1e-07}') == (
        "RankMe (singular values, uncentred, eps=1e-07)"
    )
    assert metric_label("rankme/covariance", {"eps": 1e-5, "max_eigs": 2048}) == (
        "RankMe (covariance eigenvalues, top 2048, eps=1e-05)"
    )
    label = metric_label(
        "alpha_req/covariance", {"fit_range": [10, 100], "weighting": "1/k", "n_used": 90}
    )
    assert label == "alpha-ReQ (covariance, fit ranks 10:100, 1/k weights, 90 points)"
