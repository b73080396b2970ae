"""`import_signal`: Dolma attributes, RedPajama-V2 quality signals, datatrove outputs and Parquet
become signals usable like computed ones; bad input changes nothing."""

from __future__ import annotations

import gzip
import json
import shutil

import duckdb
import pytest

from analytics.filters import Condition, DocFilter
from analytics.signals import SignalError, signals_view_sql
from analytics.signals.importer import import_signal
from analytics.workspace import Workspace
from tests.conftest import DEMO, fingerprint

N_DOCS = 30


@pytest.fixture(scope="module")
def small_ws_path(tmp_path_factory):
    from analytics.ingest import ingest

    root = tmp_path_factory.mktemp("sigimport")
    corpus = root / "small.parquet"
    duckdb.sql(
        f"COPY (SELECT id, text, source FROM read_parquet('{DEMO}') ORDER BY id LIMIT {N_DOCS}) "
        f"TO '{corpus}' (FORMAT parquet)"
    )
    ws = Workspace(root / "ws")
    ingest(ws, [str(corpus)], id_field="id")
    return root / "ws", corpus


@pytest.fixture
def ws(small_ws_path, tmp_path):
    dst = tmp_path / "ws"
    shutil.copytree(small_ws_path[0], dst)
    return Workspace(dst)


def doc_ids(ws) -> list[str]:
    return [
        r[0] for r in ws.cursor().execute("SELECT doc_id FROM documents ORDER BY doc_id").fetchall()
    ]


def weighted(spans):
    """Reference: span scores weighted by span length (one span: its score)."""
    if len(spans) == 1:
        return spans[0][2]
    total = sum(e - s for s, e, _ in spans)
    return sum((e - s) * v for s, e, v in spans) / total


def run_import(ws, path, **kw):
    with ws.write(job="test import") as con:
        return import_signal(con, str(path), **kw)


def view(ws, where=""):
    cur = ws.cursor()
    return cur.execute(signals_view_sql(cur) + where).df().set_index("doc_id")


def test_dolma_attributes_values_and_use_in_filters(ws, tmp_path):
    ids = doc_ids(ws)
    expected_wc, expected_pii = {}, {}
    path = tmp_path / "attrs.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        for i, d in enumerate(ids[:20]):
            pii = [[0, 5, 1.0], [10, 30 + i, float(i % 3)]] if i % 2 else [[0, 4, 2.5]]
            attrs = {"exp__gopher__word_count": [[0, 100, float(10 * i)]], "exp__pii__email": pii}
            fh.write(json.dumps({"id": d, "attributes": attrs, "source": "x"}) + "\n")
            expected_wc[d] = 10.0 * i
            expected_pii[d] = weighted(pii)
        fh.write(
            json.dumps({"id": "not-a-doc", "attributes": {"exp__gopher__word_count": []}}) + "\n"
        )
    res = run_import(ws, path, format="dolma-attributes", name="dolma")
    assert (res.rows, res.matched, res.unmatched) == (21, 20, 1)
    assert res.columns == ["dolma_word_count", "dolma_email"]  # in attribute-name order
    df = view(ws)
    for d in ids[:20]:
        assert df.loc[d, "dolma_word_count"] == pytest.approx(expected_wc[d])
        assert df.loc[d, "dolma_email"] == pytest.approx(expected_pii[d])
    assert df.loc[ids[25], ["dolma_word_count", "dolma_email"]].isna().all()

    # an Explore condition on the imported column selects exactly the expected documents
    flt = DocFilter(conditions=(Condition("signal", "dolma", "dolma_word_count", "ge", 100),))
    where, params = flt.where()
    got = {
        r[0]
        for r in ws.cursor()
        .execute(f"SELECT doc_id FROM documents WHERE {where}", params)
        .fetchall()
    }
    assert got == {d for d, v in expected_wc.items() if v >= 100}

    # filter impact and the mixture builder's groupings see it like a computed signal
    from analytics.mixture.builder import signal_columns
    from analytics.signals.filtering import condition_impact

    imp = condition_impact(ws.cursor(), conditions=["signal.dolma.dolma_word_count.ge.100"])
    total = imp[(imp["source"] == "(all sources)") & (imp["filter"] == "all together")].iloc[0]
    assert total["docs_removed"] == N_DOCS - len(got)
    cols = signal_columns(ws.cursor())
    assert cols["dolma_word_count"]["signal"] == "dolma"

    # provenance is stored with the version
    from analytics.signals import list_signals

    row = list_signals(ws.cursor()).set_index("name").loc["dolma"]
    prov = json.loads(row["params"])
    assert prov["source"] == str(path) and prov["format"] == "dolma-attributes"
    assert prov["matched"] == 20 and row["n_docs"] == 20


@pytest.mark.parametrize("reduce,ref", [
    ("max", lambda sp: max(v for _, _, v in sp)),
    ("mean", lambda sp: sum(v for _, _, v in sp) / len(sp)),
    ("sum", lambda sp: sum(v for _, _, v in sp)),
    ("count", lambda sp: float(len(sp))),
    ("first", lambda sp: sp[0][2]),
])  # fmt: skip
def test_rpv2_quality_signals_reducers(ws, tmp_path, reduce, ref):
    ids = doc_ids(ws)
    path = tmp_path / "rpv2.json"
    spans = {}
    with open(path, "w") as fh:
        for i, d in enumerate(ids[:6]):
            lines = [[j * 10, j * 10 + 9, float((i + 1) * (j + 2))] for j in range(i + 1)]
            qs = {
                "ccnet_perplexity": [[0, 500, 100.0 + i]],
                "rps_lines_numerical_chars_fraction": lines,
            }
            fh.write(json.dumps({"id": d, "id_int": i, "quality_signals": qs}) + "\n")
            spans[d] = lines
    res = run_import(ws, path, format="rpv2", name="rp", reduce=reduce)
    assert res.matched == 6
    df = view(ws)
    for d, sp in spans.items():
        assert df.loc[d, "rp_rps_lines_numerical_chars_fraction"] == pytest.approx(ref(sp))


@pytest.mark.parametrize("writer", ["jsonl", "parquet"])
def test_datatrove_writer_output(ws, tmp_path, writer):
    """Documents written by datatrove's own JsonlWriter / ParquetWriter: metadata fields
    become columns."""
    from datatrove.data import Document
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    ids = doc_ids(ws)
    docs = [
        Document(text="t", id=d, metadata={"score": i / 10, "n_words": i, "kept": i % 2 == 0,
                                           "filter_reason": "gopher" if i % 3 else "c4"})
        for i, d in enumerate(ids[:9])
    ]  # fmt: skip
    out = tmp_path / "dt"
    cls, name = (
        (JsonlWriter, "part.jsonl.gz") if writer == "jsonl" else (ParquetWriter, "part.parquet")
    )
    with cls(str(out), output_filename=name) as w:
        for doc in docs:
            w.write(doc)
    files = list(out.glob(f"*{name}"))  # the ParquetWriter prefixes a file counter
    assert len(files) == 1
    res = run_import(ws, files[0], format="datatrove", name="dt")
    assert res.matched == 9
    assert set(res.columns) == {"dt_score", "dt_n_words", "dt_kept", "dt_filter_reason"}
    df = view(ws)
    for i, d in enumerate(ids[:9]):
        assert df.loc[d, "dt_score"] == pytest.approx(i / 10)
        assert df.loc[d, "dt_n_words"] == i
        assert bool(df.loc[d, "dt_kept"]) == (i % 2 == 0)
        assert df.loc[d, "dt_filter_reason"] == ("gopher" if i % 3 else "c4")


def test_parquet_by_doc_id_and_by_file_row(ws, small_ws_path, tmp_path):
    corpus = small_ws_path[1]
    ids = doc_ids(ws)
    p1 = tmp_path / "scores.parquet"
    duckdb.sql(
        f"COPY (SELECT id AS doc_id, length(text) * 1.0 AS chars, source AS src "
        f"FROM read_parquet('{corpus}')) TO '{p1}' (FORMAT parquet)"
    )
    res = run_import(ws, p1, format="parquet", name="pq")
    assert res.matched == N_DOCS and set(res.columns) == {"pq_chars", "pq_src"}
    # by (file, row): the corpus's base name and the 0-based row of each document
    p2 = tmp_path / "rows.parquet"
    duckdb.sql(
        f"COPY (SELECT 'small.parquet' AS file, row_number() OVER () - 1 AS row, "
        f"id || '!' AS tag FROM read_parquet('{corpus}')) TO '{p2}' (FORMAT parquet)"
    )
    # a list of ids alone (RedPajama-V2's duplicates files) tags the listed documents
    p3 = tmp_path / "dups.parquet"
    duckdb.sql(f"COPY (SELECT unnest(?) AS doc_id) TO '{p3}' (FORMAT parquet)", params=[ids[:4]])
    res = run_import(ws, p3, format="parquet", name="dups")
    assert res.columns == ["dups_listed"] and res.matched == 4
    res = run_import(ws, p2, format="parquet", name="byrow", key="file,row")
    assert res.matched == N_DOCS
    df = view(ws)
    ref = dict(duckdb.sql(f"SELECT id, length(text) FROM read_parquet('{corpus}')").fetchall())
    for d in ids:
        assert df.loc[d, "pq_chars"] == ref[d]
        assert df.loc[d, "byrow_tag"] == d + "!"  # the row really is that document's row
    listed = ws.cursor().execute("SELECT doc_id, dups_listed FROM signal_dups").fetchall()
    assert dict(listed) == {d: True for d in ids[:4]}  # only the listed documents have a row


def write_lines(path, lines):
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_bad_input_commits_nothing(ws, tmp_path):
    ids = doc_ids(ws)
    good = json.dumps({"id": ids[0], "attributes": {"a": [[0, 1, 0.5]]}}) + "\n"
    before = fingerprint(ws)

    def refused(path, match, **kw):
        kw.setdefault("format", "dolma-attributes")
        kw.setdefault("name", "bad")
        with pytest.raises(SignalError, match=match):
            run_import(ws, path, **kw)
        assert fingerprint(ws) == before

    # malformed JSON on line 3: named with file and line
    p = write_lines(
        tmp_path / "m.jsonl", [good, good.replace(ids[0], ids[1]), '{"id": "x", oops\n']
    )
    refused(p, r"m\.jsonl line 3: not valid JSON")
    # a value that is not a span list
    bad = json.dumps({"id": ids[1], "attributes": {"a": 0.5}}) + "\n"
    refused(write_lines(tmp_path / "s.jsonl", [good, bad]), r"s\.jsonl line 2: attributes\.a")
    # in a glob of two files, the bad line is named in its own file
    (tmp_path / "g").mkdir()
    write_lines(tmp_path / "g" / "a.jsonl", [good])
    write_lines(tmp_path / "g" / "b.jsonl", [good.replace(ids[0], ids[2]), bad])
    refused(tmp_path / "g" / "*.jsonl", r"g/b\.jsonl line 2: attributes\.a")
    # no key matches
    none = json.dumps({"id": "zzz", "attributes": {"a": [[0, 1, 1.0]]}}) + "\n"
    refused(write_lines(tmp_path / "n.jsonl", [none]), r"none of its 1 keys")
    # some keys do not match, with --strict
    refused(write_lines(tmp_path / "p.jsonl", [good, none]), r"only 1 of 2 keys", strict=True)
    # duplicate key
    refused(write_lines(tmp_path / "d.jsonl", [good, good]), r"appears 2 times")
    # a name clashing with a built-in signal, and a missing key field
    refused(
        write_lines(tmp_path / "g.jsonl", [good]), r"clashes with the built-in", name="toxicity"
    )
    refused(
        write_lines(tmp_path / "k.jsonl", [good]),
        r"k\.jsonl line 1: the key field doc is missing",
        key="doc",
    )
    refused(tmp_path / "missing.jsonl", r"no such file")
    refused(write_lines(tmp_path / "f.jsonl", [good]), r"--format", format="csvish")

    # an existing imported name clashes unless --replace (then a new version becomes current)
    run_import(ws, write_lines(tmp_path / "ok.jsonl", [good]), format="dolma-attributes", name="ok")
    with pytest.raises(SignalError, match="clashes with the existing imported signal"):
        run_import(ws, tmp_path / "ok.jsonl", format="dolma-attributes", name="ok")
    two = good.replace("0.5", "0.75").replace('"a"', '"a": [[0, 1, 0.75]], "b"')
    res = run_import(ws, write_lines(tmp_path / "ok2.jsonl", [two]), format="dolma-attributes",
                     name="ok", replace=True)  # fmt: skip
    assert view(ws).loc[ids[0], ["ok_a", "ok_b"]].tolist() == pytest.approx([0.75, 0.75])
    from analytics.signals import current_versions

    assert current_versions(ws.cursor())["ok"] == res.version


def test_throughput_recorded(ws, tmp_path):
    from analytics.signals.external import PROJECT_DOCS, throughput

    ids = doc_ids(ws)
    p = write_lines(
        tmp_path / "t.jsonl",
        [json.dumps({"id": d, "attributes": {"a": [[0, 1, 1.0]]}}) + "\n" for d in ids],
    )
    res = run_import(ws, p, format="dolma-attributes", name="tp")
    t = throughput(ws.cursor()).set_index("signal").loc["tp"]
    assert t["docs"] == N_DOCS and t["device"] == "import"
    rate = N_DOCS / t["seconds"]
    assert t["docs_per_s"] == pytest.approx(rate)
    assert t["hours_workspace"] == pytest.approx(N_DOCS / rate / 3600)
    assert t["hours_100m"] == pytest.approx(PROJECT_DOCS / rate / 3600)
    assert res.seconds >= t["seconds"] * 0.5


def test_import_from_s3(ws, s3):
    """Signal files on an object store (moto on 127.0.0.1) are read by DuckDB's httpfs."""
    client, bucket = s3
    ids = doc_ids(ws)[:7]
    body = "".join(
        json.dumps({"id": d, "attributes": {"x__y__s": [[0, 9, i + 0.5]]}}) + "\n"
        for i, d in enumerate(ids)
    )
    client.put_object(Bucket=bucket, Key="attrs/part-0.jsonl", Body=body.encode())
    with ws.write(job="import", remote=True) as con:
        res = import_signal(con, f"s3://{bucket}/attrs/*.jsonl", format="dolma-attributes",
                            name="remote")  # fmt: skip
    assert res.matched == 7
    df = view(ws)
    assert [df.loc[d, "remote_s"] for d in ids] == [i + 0.5 for i in range(7)]
    before = fingerprint(ws)
    with pytest.raises(SignalError, match="cannot be read"):
        with ws.write(job="import", remote=True) as con:
            import_signal(con, f"s3://{bucket}/nothing-here.jsonl", format="dolma-attributes",
                          name="gone")  # fmt: skip
    assert fingerprint(ws) == before
