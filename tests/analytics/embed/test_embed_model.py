"""The real packaged all-MiniLM-L6-v2 on a few dozen topical documents (offline)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.embed import EmbedError, embed_corpus, embed_texts, get_embedder, load_embeddings
from analytics.maps import EmbeddingIndex, MapError, more_like_this, search
from analytics.workspace import Workspace
from tests.conftest import add_doc
from tests.workspaces.topics import TOPICS

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
KEY = "sentence-transformers--all-minilm-l6-v2__msl256"


@pytest.fixture(scope="module")
def model():
    return get_embedder(MODEL, None, "cpu")


@pytest.fixture(scope="module")
def topic_ws(tmp_path_factory, model):
    ws = Workspace.open(tmp_path_factory.mktemp("topics") / "ws", create=True)
    with ws.write(job="topics") as con:
        for topic, texts in TOPICS.items():
            for i, t in enumerate(texts):
                add_doc(con, doc_id=f"{topic}-{i:02d}", source=topic, text=t)
    rep = embed_corpus(ws, model=model, batch_size=8)
    assert rep.n_embedded == 30 and rep.dim == 384 and rep.model_key == KEY
    return ws


@pytest.mark.slow
def test_packaged_model_loads_offline_and_matches_sentence_transformers(model):
    from sentence_transformers import SentenceTransformer

    from analytics.tokenizer import resolve_model

    assert model.name == MODEL and model.dim == 384 and model.max_seq_length == 256
    assert model.key == KEY and model.dtype == "float32"
    texts = [t for ts in TOPICS.values() for t in ts[:3]]
    ours = embed_texts(model, texts, batch_size=4)
    ref = SentenceTransformer(resolve_model(MODEL), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    np.testing.assert_allclose(ours, ref, atol=2e-5)


@pytest.mark.slow
def test_topics_are_nearer_each_other_than_to_other_topics(topic_ws):
    ids, X = load_embeddings(topic_ws, KEY)
    topic = np.array([i.split("-")[0] for i in ids])
    S = X @ X.T
    for t in TOPICS:
        inside = S[np.ix_(topic == t, topic == t)]
        within = (inside.sum() - np.trace(inside)) / (inside.size - len(inside))
        between = S[np.ix_(topic == t, topic != t)].mean()
        assert within > between + 0.1, t
    # nearest neighbour of every document is from its own topic
    np.fill_diagonal(S, -np.inf)
    assert (topic[S.argmax(axis=1)] == topic).all()


@pytest.mark.slow
def test_search_returns_the_right_topic(topic_ws):
    queries = {
        "cooking": "recipe for baking a cake in the kitchen",
        "astronomy": "stars and planets in outer space",
        "programming": "debugging source code in a software project",
    }
    index = EmbeddingIndex.from_workspace(topic_ws, KEY)
    for t, q in queries.items():
        res = search(topic_ws, KEY, q, k=5)
        assert list(res["rank"]) == [1, 2, 3, 4, 5]
        assert all(d.startswith(t) for d in res["doc_id"]), (q, res)
        assert res["score"].is_monotonic_decreasing
        via_index = search(topic_ws, KEY, q, k=5, index=index)
        assert list(via_index["doc_id"]) == list(res["doc_id"])
    mlt = more_like_this(topic_ws, KEY, "astronomy-05", k=4)
    assert "astronomy-05" not in set(mlt["doc_id"])
    assert all(d.startswith("astronomy") for d in mlt["doc_id"])


@pytest.mark.slow
def test_unknown_model_offline_and_missing_embeddings_errors(tmp_path):
    from analytics.embed import load_embedder

    with pytest.raises(EmbedError, match="not available offline; pass a local path or install"):
        load_embedder("nobody/no-such-model-anywhere")
    with pytest.raises(EmbedError, match="not a loadable sentence-transformers model"):
        load_embedder(str(tmp_path))
    ws = Workspace.open(tmp_path / "empty", create=True)
    with pytest.raises(MapError, match="none exist yet.*mixscope embed"):
        search(ws, KEY, "anything")
