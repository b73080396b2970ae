"""Maps: c-TF-IDF labels, diversity measures against closed forms / brute force, the cached
map job and the cluster tables (fake embedder; UMAP is fitted once per session)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.embed import embed_corpus
from analytics.maps import (
    MapError,
    cluster_entropy,
    compute_map,
    ctfidf,
    diversity_by,
    label_clusters,
    list_maps,
    load_map,
    mean_pairwise_cosine_distance,
    mmd2,
    more_like_this,
    near_duplicates,
    publish_map,
    search,
    semantic_duplicates,
    similarity_to_target,
)
from analytics.maps import project as project_mod
from analytics.maps.cluster import relabel_by_size
from analytics.workspace import Workspace
from tests.conftest import add_doc

KEY = "fake__msl128"
PLANTED = {"astro": "nebula", "food": "zucchini", "code": "compiler"}
FILLER = "the a of and report notes general common item list value system".split()


def planted_texts(n_per=20, seed=0):
    """Three groups; each document repeats its group's distinctive word and shares filler."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, word in PLANTED.items():
        for i in range(n_per):
            filler = " ".join(rng.choice(FILLER, size=4))
            rows.append((f"{g}-{i:02d}", g, f"{word} {word} {word} {word} {filler} {g}word{i % 3}"))
    return rows


@pytest.fixture(scope="module")
def planted_map_ws(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("maps") / "ws", create=True)
    with ws.write(job="docs") as con:
        for doc_id, src, text in planted_texts():
            add_doc(con, doc_id=doc_id, source=src, text=text)
    embed_corpus(ws, model="fake:64")
    return ws


@pytest.fixture(scope="module")
def first_map(planted_map_ws):
    before = project_mod.FIT_COUNT
    res = compute_map(planted_map_ws, KEY, params={"n_clusters": 3, "n_neighbors": 10})
    assert project_mod.FIT_COUNT == before + 1 and not res.cached
    return res


# ---------------------------------------------------------------------------- c-TF-IDF
def test_ctfidf_closed_form():
    counts = np.array([[2, 0, 1], [0, 3, 1]])
    W = ctfidf(counts)
    A = int((3 + 4) / 2)  # BERTopic: int(mean words per class) = 3
    f = np.array([2, 3, 2])
    idf = np.log(1 + A / f)
    expect = np.array([[2 / 3, 0, 1 / 3], [0, 3 / 4, 1 / 4]]) * idf
    np.testing.assert_allclose(W, expect, rtol=1e-12)


def test_labels_contain_planted_words():
    texts = {}
    for _doc_id, g, text in planted_texts():
        texts.setdefault(list(PLANTED).index(g), []).append(text)
    lab = label_clusters(texts, sizes={0: 20, 1: 20, 2: 20, -1: 3}, label_terms=3)
    assert list(lab["cluster"]) == [-1, 0, 1, 2]
    for c, word in enumerate(PLANTED.values()):
        row = lab[lab["cluster"] == c].iloc[0]
        assert row["terms"][0] == word and word in row["label"] and row["size"] == 20
        filler_w = [w for t, w in zip(row["terms"], row["weights"]) if t in FILLER]
        assert row["weights"][0] > 2 * max(filler_w, default=0)  # shared filler is weak
    assert lab[lab["cluster"] == -1].iloc[0]["label"] == "(unclustered)"


# ---------------------------------------------------------------------------- diversity
def test_entropy_uniform_is_log_k_and_single_cluster_is_zero():
    for k in (2, 5, 17):
        e = cluster_entropy(np.repeat(np.arange(k), 7))
        assert e["entropy"] == pytest.approx(math.log(k)) and e["normalized"] == pytest.approx(1.0)
    e = cluster_entropy([3, 3, 3], n_clusters=4)
    assert e["entropy"] == 0.0 and e["normalized"] == 0.0
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, normalised by ln 4 when the map has 4 clusters
    e = cluster_entropy([0, 0, 1, 2], n_clusters=4)
    assert e["entropy"] == pytest.approx(1.5 * math.log(2))
    assert e["normalized"] == pytest.approx(1.5 * math.log(2) / math.log(4))


def test_mean_pairwise_cosine_distance_matches_brute_force():
    rng = np.random.default_rng(3)
    for n, d in ((2, 3), (7, 5), (300, 16)):
        X = rng.normal(size=(n, d)) + 0.3
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        brute = np.mean([1 - U[i] @ U[j] for i in range(n) for j in range(n) if i != j])
        assert mean_pairwise_cosine_distance(X) == pytest.approx(brute, abs=1e-6)
    assert math.isnan(mean_pairwise_cosine_distance(np.ones((1, 3))))


def test_semantic_duplicates_keep_one_of_each_near_pair():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 32))
    X = np.vstack([base, base[0] + 1e-3 * rng.normal(size=32), base[3] * 2.0])  # 6 ~ 0, 7 = 3
    ids = [f"d{i}" for i in range(8)]
    clusters = [0, 0, 0, 1, 1, 1, 0, 1]
    out = semantic_duplicates(X, ids, clusters, threshold=0.99)
    dropped = out[~out["keep"]]
    assert len(dropped) == 2
    pairs = {frozenset((r.doc_id, r.duplicate_of)) for r in dropped.itertuples()}
    assert pairs == {frozenset({"d0", "d6"}), frozenset({"d3", "d7"})}
    # independent checks: dropped docs really are above threshold to their duplicate_of,
    # and no two kept docs of one cluster are
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    pos = {d: i for i, d in enumerate(ids)}
    for r in dropped.itertuples():
        assert U[pos[r.doc_id]] @ U[pos[r.duplicate_of]] >= 0.99
        assert r.similarity == pytest.approx(U[pos[r.doc_id]] @ U[pos[r.duplicate_of]], abs=1e-5)
    kept = out[out["keep"]]
    for _c, grp in kept.groupby("cluster"):
        V = U[[pos[d] for d in grp["doc_id"]]]
        S = V @ V.T - 2 * np.eye(len(V))
        assert S.max() < 0.99
    # a block size smaller than the cluster gives the same answer
    small = semantic_duplicates(X, ids, clusters, threshold=0.99, block_rows=1)
    pd.testing.assert_frame_equal(out, small)


def test_mmd_matches_explicit_double_sums():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(9, 4))
    B = rng.normal(size=(7, 4)) + 0.5
    sigma = 1.7

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * sigma**2))

    def brute(kern):
        m, n = len(A), len(B)
        xx = sum(kern(A[i], A[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(kern(B[i], B[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        xy = sum(kern(a, b) for a in A for b in B) / (m * n)
        return xx + yy - 2 * xy

    assert mmd2(A, B, bandwidth=sigma) == pytest.approx(brute(k), rel=1e-9)
    assert mmd2(A, B, kernel="linear") == pytest.approx(brute(lambda a, b: float(a @ b)), rel=1e-9)
    same = mmd2(rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), seed=0)
    shifted = mmd2(rng.normal(size=(400, 4)), rng.normal(size=(400, 4)) + 1.0, seed=0)
    assert abs(same) < 0.01 < shifted
    with pytest.raises(MapError, match="kernel"):
        mmd2(A, B, kernel="poly")


def test_relabel_by_size():
    assert relabel_by_size(np.array([5, 5, 2, -1, 2, 2, 9])).tolist() == [1, 1, 0, -1, 0, 0, 2]


# ---------------------------------------------------------------------------- the map job
@pytest.mark.slow
def test_map_clusters_recover_groups_and_labels(planted_map_ws, first_map):
    pts = first_map.points
    assert len(pts) == 60 and {"doc_id", "x", "y", "cluster"} <= set(pts.columns)
    assert np.isfinite(pts[["x", "y"]].to_numpy()).all()
    group = pts["doc_id"].str.split("-").str[0]
    # each planted group falls in exactly one cluster (k-means on the fake embeddings)
    assert (pd.crosstab(group, pts["cluster"]) > 0).sum(axis=1).tolist() == [1, 1, 1]
    by_cluster = dict(zip(first_map.clusters["cluster"], first_map.clusters["label"]))
    for g, word in PLANTED.items():
        c = int(pts.loc[group == g, "cluster"].iloc[0])
        assert word in by_cluster[c]
    assert first_map.clusters["size"].sum() == 60
    assert first_map.coverage == "all 60 documents"


@pytest.mark.slow
def test_map_cache_hit_does_not_refit(planted_map_ws, first_map):
    fits = project_mod.FIT_COUNT
    again = compute_map(planted_map_ws, KEY, params={"n_clusters": 3, "n_neighbors": 10})
    assert again.cached and again.map_id == first_map.map_id and project_mod.FIT_COUNT == fits
    pd.testing.assert_frame_equal(
        again.points.reset_index(drop=True),
        first_map.points.reset_index(drop=True),
        check_dtype=False,
    )
    # new clustering, same projection: cached projection, no refit, new map id
    other = compute_map(planted_map_ws, KEY, params={"n_clusters": 2, "n_neighbors": 10})
    assert not other.cached and other.map_id != first_map.map_id
    assert project_mod.FIT_COUNT == fits
    np.testing.assert_allclose(other.points[["x", "y"]], first_map.points[["x", "y"]])
    # HDBSCAN on the projection is selectable
    hd = compute_map(
        planted_map_ws,
        KEY,
        params={"cluster_method": "hdbscan", "n_neighbors": 10, "min_cluster_size": 5},
    )
    assert project_mod.FIT_COUNT == fits and hd.points["cluster"].max() >= 1
    assert set(list_maps(planted_map_ws)["map_id"]) >= {first_map.map_id, other.map_id, hd.map_id}
    assert load_map(planted_map_ws, first_map.map_id).n_points == 60
    # a sample of the embeddings is a different input: the map says so
    sub = compute_map(
        planted_map_ws, KEY, params={"n_clusters": 3, "n_neighbors": 10, "max_points": 30}
    )
    assert project_mod.FIT_COUNT == fits + 1 and sub.coverage == "sample of 30 of 60 documents"


@pytest.mark.slow
def test_publish_writes_cluster_tables(planted_map_ws, first_map):
    n = publish_map(planted_map_ws, first_map)
    assert n == 60
    cur = planted_map_ws.cursor()
    rows = cur.execute(
        "SELECT d.source, count(DISTINCT c.cluster) FROM doc_clusters c "
        "JOIN documents d USING (doc_id) WHERE c.map_id = ? GROUP BY 1 ORDER BY 1",
        [first_map.map_id],
    ).fetchall()
    assert rows == [("astro", 1), ("code", 1), ("food", 1)]
    labels = cur.execute(
        "SELECT cluster, label, CAST(terms AS VARCHAR), size FROM cluster_labels "
        "WHERE map_id = ? ORDER BY cluster",
        [first_map.map_id],
    ).fetchall()
    assert [r[3] for r in labels] == first_map.clusters["size"].tolist()
    assert '"' in labels[0][2] and sum(r[3] for r in labels) == 60
    # publishing again replaces, never duplicates
    publish_map(planted_map_ws, first_map)
    assert (
        planted_map_ws.cursor()
        .execute("SELECT count(*) FROM doc_clusters WHERE map_id = ?", [first_map.map_id])
        .fetchall()[0][0]
        == 60
    )


def test_workspace_diversity_search_and_errors(planted_map_ws, tmp_path):
    # map-free functions on the workspace
    res = search(planted_map_ws, KEY, "nebula nebula", k=5)
    assert all(d.startswith("astro") for d in res["doc_id"])
    mlt = more_like_this(planted_map_ws, KEY, "food-03", k=5)
    assert "food-03" not in set(mlt["doc_id"]) and all(d.startswith("food") for d in mlt["doc_id"])
    with pytest.raises(MapError, match="no embedding"):
        more_like_this(planted_map_ws, KEY, "missing-doc")
    with pytest.raises(MapError, match="empty"):
        search(planted_map_ws, KEY, "  ")
    sim = similarity_to_target(planted_map_ws, KEY, ["nebula nebula nebula", "nebula report notes"])
    best = sim.sort_values("centroid_cosine", ascending=False).iloc[0]
    assert best["group"] == "astro"
    assert sim.set_index("group")["mmd2"].idxmin() == "astro"
    with pytest.raises(MapError, match="no embeddings for model key"):
        compute_map(planted_map_ws, "nope__msl1")
    with pytest.raises(MapError, match="unknown map parameter"):
        compute_map(planted_map_ws, KEY, params={"n_neighbours": 3})


@pytest.mark.slow
def test_diversity_by_source_and_near_duplicates(planted_map_ws, first_map):
    div = diversity_by(planted_map_ws, first_map, by="source").set_index("group")
    assert set(div.index) == {"astro", "code", "food", "(all)"}
    assert div.loc["astro", "cluster_entropy"] == 0.0  # one group = one cluster
    assert div.loc["(all)", "cluster_entropy_norm"] == pytest.approx(1.0)  # 20/20/20
    assert div.loc["(all)", "mean_cosine_distance"] > div.loc["astro", "mean_cosine_distance"]
    dups = near_duplicates(planted_map_ws, first_map, threshold=0.999)
    assert len(dups) == 60 and dups["keep"].sum() >= 3
    with pytest.raises(MapError, match="cannot group by"):
        diversity_by(planted_map_ws, first_map, by="text")


def test_index_top_k_ties_break_by_doc_id_and_match_numpy():
    from analytics.maps import EmbeddingIndex

    rng = np.random.default_rng(5)
    ids = [f"d{i:04d}" for i in range(500)]
    X = rng.normal(size=(500, 16)).astype(np.float32)
    X[::7] = X[0]  # many exact ties with document 0
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    index = EmbeddingIndex(ids, X)
    res = index.search_vector(X[0], k=12, exclude=["d0007"])
    tied = [d for i, d in enumerate(ids) if i % 7 == 0 and d != "d0007"]
    assert list(res["doc_id"][:10]) == tied[:10]
    # beyond the ties: the same order as a full numpy sort
    s = X @ X[0]
    order = [ids[i] for i in np.lexsort((np.array(ids), -s)) if ids[i] != "d0007"]
    assert list(res["doc_id"]) == order[:12]
    assert list(res["rank"]) == list(range(1, 13))


LANG_CLUSTERS = {
    "de": (
        "katze",
        [
            "Die Katze und der Hund sind in dem Garten, und die Katze ist auf der Mauer.",
            "Der Mann und die Frau sehen die Katze, die auf dem Dach der Scheune sitzt.",
            "Es ist nicht so, dass die Katze mit dem Hund und der Maus spielt.",
        ],
    ),
    "es": (
        "gato",
        [
            "El gato que vive en la casa es lo que más quiere el niño, y el gato lo sabe.",
            "Lo que el gato hace en el jardín es lo que hace todos los días con el perro.",
            "Que el gato duerma en la cama es lo normal, y el perro lo acepta.",
        ],
    ),
    "ru": (
        "кошка",
        [
            "Кошка не знает, что на улице холодно, и кошка спит на окне.",
            "Я не думаю, что кошка на кухне, но кошка не ест на полу.",
            "Что кошка делает на крыше, не знает никто, но кошка там.",
        ],
    ),
    "en": (
        "dog",
        [
            "The dog and the cat are in the garden, and the dog is on the wall.",
            "It is not the case that the dog plays with the cat and the mouse.",
        ],
    ),
}


@pytest.mark.parametrize("languages", [None, ["de", "es", "ru", "en"]])
def test_labels_drop_the_stop_words_of_each_language(languages):
    from analytics.maps.labels import _spacy_stop_words

    texts = {c: docs * 4 for c, (_lang, (_w, docs)) in enumerate(LANG_CLUSTERS.items())}
    lab = label_clusters(texts, label_terms=3, languages=languages)
    for c, (lang, (word, _docs)) in enumerate(LANG_CLUSTERS.items()):
        terms = lab[lab["cluster"] == c].iloc[0]["terms"]
        stop = _spacy_stop_words(lang)
        assert stop, lang
        assert not set(terms) & stop, (lang, terms)
        assert terms[0] == word, (lang, terms)
    # with English stop words only, the other languages' function words win the labels
    english = label_clusters(texts, label_terms=3, stop_words="english")
    de = english[english["cluster"] == 0].iloc[0]["terms"][:3]
    assert set(de) & {"und", "die", "der"}


def test_map_params_default_to_multilingual_stop_words():
    from analytics.maps.compute import MapOptions

    assert MapOptions().stop_words == "multilingual"
