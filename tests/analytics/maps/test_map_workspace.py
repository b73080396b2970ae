"""Checks on the shared maps fixture workspace (built in tests/workspaces/maps.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.errors import MixscopeError
from analytics.filters import Condition, DocFilter
from analytics.workspace import Workspace
from tests.conftest import fingerprint
from tests.workspaces.maps import (
    KEY,
    N_ALL,
    PER_SOURCE,
    rows,
)


def count(ws, flt: DocFilter) -> int:
    where, params = flt.where()
    return rows(ws, f"SELECT count(*) FROM documents WHERE {where}", params)[0][0]


# ---------------------------------------------------------------------- the fixture itself
def test_fixture_map_is_published(map_ws):
    n_docs = rows(map_ws, "SELECT count(*) FROM documents")[0][0]
    (map_id, n_points, n_corpus), *_ = rows(map_ws, "SELECT map_id, n_points, n_corpus FROM maps")
    assert n_docs == n_points == n_corpus == N_ALL
    assert rows(map_ws, "SELECT count(*) FROM doc_clusters WHERE map_id = ?", [map_id])[0][0] == (
        n_docs
    )
    sizes = rows(
        map_ws, "SELECT sum(size), count(*) FROM cluster_labels WHERE map_id = ?", [map_id]
    )
    assert sizes[0][0] == n_docs and sizes[0][1] >= 2


# ---------------------------------------------------------------------- cluster conditions
def test_cluster_condition_counts_match_independent_sql(map_ws):
    from analytics.maps.filtering import cluster_condition

    map_id = rows(map_ws, "SELECT map_id FROM maps")[0][0]
    sizes = dict(
        rows(map_ws, "SELECT cluster, count(*) FROM doc_clusters WHERE map_id = ? GROUP BY 1",
             [map_id])
    )  # fmt: skip
    assert count(map_ws, DocFilter(conditions=(cluster_condition(map_id, 0),))) == sizes[0]
    both = cluster_condition(map_id, [0, 1])
    assert both.token() == f"cluster.{map_id}.cluster.in.0,1"
    assert count(map_ws, DocFilter(conditions=(both,))) == sizes[0] + sizes[1]
    # the URL round trip and the "latest" alias give the same documents
    flt = DocFilter.from_params(DocFilter(conditions=(both,)).to_params())
    latest = DocFilter(conditions=(Condition("cluster", "latest", "cluster", "in", "0,1"),))
    assert count(map_ws, flt) == count(map_ws, latest) == sizes[0] + sizes[1]
    ne = DocFilter(conditions=(Condition("cluster", map_id, "cluster", "ne", "0"),))
    assert count(map_ws, ne) == sum(sizes.values()) - sizes[0]
    # combined with a facet: an AND with the source
    src = rows(map_ws, "SELECT source FROM documents ORDER BY doc_id LIMIT 1")[0][0]
    want = rows(
        map_ws,
        "SELECT count(*) FROM documents d JOIN doc_clusters c USING (doc_id) "
        "WHERE c.map_id = ? AND c.cluster IN (0, 1) AND d.source = ?",
        [map_id, src],
    )[0][0]
    assert count(map_ws, DocFilter(source=(src,), conditions=(both,))) == want


@pytest.mark.parametrize(
    "cond, message",
    [
        (Condition("cluster", "not_hex", "cluster", "eq", "1"), "map id"),
        (Condition("cluster", "latest", "source", "eq", "1"), "column"),
        (Condition("cluster", "latest", "cluster", "ge", "1"), "eq, ne or in"),
        (Condition("cluster", "latest", "cluster", "in", "a,b"), "cluster numbers"),
        (Condition("cluster", "latest", "cluster", "eq", "1.5"), "whole numbers"),
        (Condition("cluster", "latest", "cluster", "in", ""), "at least one"),
        (Condition("selection", "zz", "doc_id", "in", ""), "selection id"),
        (Condition("selection", "abcdef0123", "doc_id", "ge", ""), "'in'"),
    ],
)
def test_bad_map_conditions_are_clear(cond, message):
    with pytest.raises(MixscopeError, match=message):
        DocFilter(conditions=(cond,)).where()


# ---------------------------------------------------------------------- selections
def test_selection_is_stored_once_and_filters_every_query(map_ws_copy):
    from analytics.maps.filtering import (
        selection_condition,
        selection_doc_ids,
        selection_id,
        selection_info,
        store_selection,
    )

    ws = map_ws_copy
    ids = [r[0] for r in rows(ws, "SELECT doc_id FROM documents ORDER BY doc_id DESC LIMIT 37")]
    import hashlib

    expected = hashlib.sha256("".join(d + "\n" for d in sorted(ids)).encode()).hexdigest()[:16]
    assert selection_id(ids) == selection_id(list(reversed(ids)) + ids[:3]) == expected
    sel = store_selection(ws, ids, origin={"map_id": "x"})
    assert sel.created and sel.n_docs == 37 and sel.selection_id == expected
    stamp = fingerprint(ws)
    again = store_selection(ws, reversed(ids))
    assert not again.created and fingerprint(ws) == stamp  # nothing written
    info = selection_info(ws.cursor(), sel.selection_id)
    assert info["n_docs"] == 37 and info["origin"] == {"map_id": "x"}
    assert selection_doc_ids(ws.cursor(), sel.selection_id) == sorted(ids)
    cond = selection_condition(sel.selection_id)
    flt = DocFilter.from_params({"c": cond.token()})
    assert len(cond.token()) < 45 and count(ws, flt) == 37
    src = rows(ws, "SELECT source FROM documents WHERE doc_id = ?", [ids[0]])[0][0]
    n_src = sum(1 for d in ids if rows(ws, "SELECT source FROM documents WHERE doc_id = ?",
                                       [d])[0][0] == src)  # fmt: skip
    assert count(ws, flt.with_(source=(src,))) == n_src
    # an id that is not stored matches nothing (and is reported by selection_info)
    unknown = DocFilter(conditions=(selection_condition("0123456789abcdef"),))
    assert count(ws, unknown) == 0 and selection_info(ws.cursor(), "0123456789abcdef") is None


def test_store_selection_refuses_unknown_ids_and_writes_nothing(map_ws_copy):
    from analytics.maps.filtering import store_selection

    ws = map_ws_copy
    before = fingerprint(ws)
    with pytest.raises(MixscopeError, match="not documents of this workspace"):
        store_selection(ws, ["no-such-doc", rows(ws, "SELECT min(doc_id) FROM documents")[0][0]])
    with pytest.raises(MixscopeError, match="empty"):
        store_selection(ws, [])
    assert fingerprint(ws) == before


def test_with_condition_replaces_the_same_kind():
    from analytics.maps.filtering import cluster_condition, selection_condition, with_condition

    sig = Condition("signal", "compression", "compression_ratio", "ge", "0.3")
    flt = DocFilter(source=("a",), conditions=(sig, selection_condition("aaaaaaaaaaaaaaaa")))
    out = with_condition(flt, selection_condition("bbbbbbbbbbbbbbbb"))
    assert [c.name for c in out.conditions] == ["compression", "bbbbbbbbbbbbbbbb"]
    out = with_condition(out, cluster_condition("cccccccccccccccc", [2, 3]))
    assert [c.kind for c in out.conditions] == ["signal", "selection", "cluster"]
    assert out.source == ("a",)


def test_map_sets_resolution(map_ws, tmp_path):
    from analytics.maps.views import default_model_key, resolve_model_key

    assert resolve_model_key(map_ws, None) == KEY == default_model_key(map_ws)
    assert resolve_model_key(map_ws, "fake") == KEY == resolve_model_key(map_ws, KEY)
    with pytest.raises(MixscopeError, match="available: fake__msl128"):
        resolve_model_key(map_ws, "all-MiniLM-L6-v2")
    empty = Workspace.open(tmp_path / "empty", create=True)
    with pytest.raises(MixscopeError, match="run `mixscope embed` first"):
        resolve_model_key(empty, None)


def test_map_points_colour_and_filter(map_ws):
    from analytics.maps.views import map_points

    cur = map_ws.cursor()
    map_id = rows(map_ws, "SELECT map_id FROM maps")[0][0]
    df = map_points(cur, None, map_id=map_id, color="lang")
    want = dict(rows(map_ws, "SELECT doc_id, lang FROM documents"))
    assert len(df) == len(want)
    assert all(want[d] == v for d, v in zip(df["doc_id"], df["color"]))
    assert df["snippet"].str.len().max() <= 160 and "\n" not in "".join(df["snippet"])
    src = df["source"].iloc[0]
    part = map_points(cur, DocFilter(source=(src,)), map_id=map_id, color="cluster")
    assert len(part) == PER_SOURCE and set(part["source"]) == {src}
    clusters = dict(rows(map_ws, "SELECT doc_id, cluster FROM doc_clusters"))
    assert all(clusters[d] == c for d, c in zip(part["doc_id"], part["color"]))
    with pytest.raises(MixscopeError, match="cannot colour"):
        map_points(cur, None, map_id=map_id, color="text")
    assert np.isfinite(df.index.to_numpy()).all()


def test_colour_by_a_signal_column(map_ws_copy):
    from analytics.maps.views import colour_options, map_points
    from analytics.signals import run_signals

    ws = map_ws_copy
    with ws.write(job="compression signal") as con:
        run_signals(con, ["compression"])
    cur = ws.cursor()
    options = colour_options(cur)
    assert "compression_ratio" in options and list(options)[:4] == [
        "cluster",
        "source",
        "domain",
        "lang",
    ]
    map_id = rows(ws, "SELECT map_id FROM maps")[0][0]
    df = map_points(cur, None, map_id=map_id, color="compression_ratio")
    want = dict(rows(ws, "SELECT doc_id, compression_ratio FROM signal_compression"))
    assert len(df) == len(want) == N_ALL
    assert all(abs(want[d] - v) < 1e-12 for d, v in zip(df["doc_id"], df["color"]))
