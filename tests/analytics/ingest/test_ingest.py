"""Ingestion: every format, every bad-input case, idempotence and atomicity."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from analytics.db import scalar
from analytics.errors import IngestError
from analytics.ingest import ingest
from analytics.tokenizer import get_token_counter
from analytics.workspace import Workspace
from tests.conftest import fingerprint


def count(ws: Workspace, where: str = "TRUE") -> int:
    return scalar(ws.cursor(), f"SELECT count(*) FROM documents WHERE {where}")


def test_jsonl_fields_tokens_and_metadata(tmp_path, jsonl_file, records):
    ws = Workspace(tmp_path / "ws")
    report = ingest(ws, [str(jsonl_file)], source="web")
    assert report.n_added == len(records) and report.n_read == len(records)
    rows = (
        ws.cursor()
        .execute(
            "SELECT doc_id, source, date, url, n_tokens, n_bytes, n_chars, metadata "
            "FROM documents ORDER BY doc_id"
        )
        .fetchall()
    )
    counter = get_token_counter("sentence-transformers/all-MiniLM-L6-v2")
    for row, rec in zip(rows, records):
        assert row[0] == rec["id"] and row[1] == "web"
        assert (str(row[2]) if row[2] else None) == rec["date"]
        assert row[3] == rec["url"]
        # independent count with the HF tokenizer the package ships
        assert row[4] == int(counter.count([rec["text"]])[0]) and row[4] > 0
        assert row[5] == len(rec["text"].encode("utf-8")) and row[6] == len(rec["text"])
        assert json.loads(row[7]) == {"lang_hint": rec["lang_hint"]}
    meta = ws.meta()
    assert meta["tokenizer"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(meta["tokenizer_sha256"]) == 64


def test_tokens_match_transformers_tokenizer(tmp_path, jsonl_file, records):
    from transformers import AutoTokenizer

    from analytics.tokenizer import resolve_model

    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(jsonl_file)], source="web")
    tok = AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"))
    got = dict(ws.cursor().execute("SELECT doc_id, n_tokens FROM documents").fetchall())
    for rec in records:
        assert got[rec["id"]] == len(tok(rec["text"], add_special_tokens=False)["input_ids"])


def test_reingest_adds_nothing(tmp_path, jsonl_file):
    ws = Workspace(tmp_path / "ws")
    first = ingest(ws, [str(jsonl_file)], source="web")
    again = ingest(ws, [str(jsonl_file)], source="web")
    assert again.n_added == 0 and again.n_skipped_existing == first.n_added
    assert count(ws) == first.n_added
    assert scalar(ws.cursor(), "SELECT count(*) FROM ingests") == 2


def test_content_hash_ids_are_stable_and_dedupe(tmp_path):
    path = tmp_path / "noid.jsonl"
    path.write_text('{"text": "same text"}\n{"text": "same text"}\n{"text": "other"}\n')
    ws = Workspace(tmp_path / "ws")
    rep = ingest(ws, [str(path)], source="s")
    assert rep.n_added == 2 and rep.n_duplicate_in_input == 1
    ids = sorted(r[0] for r in ws.cursor().execute("SELECT doc_id FROM documents").fetchall())
    import hashlib

    want = sorted(
        "sha256:" + hashlib.sha256(t.encode()).hexdigest()[:32] for t in ("same text", "other")
    )
    assert ids == want


@pytest.mark.parametrize("compression", ["gz", "zst"])
def test_compressed_jsonl(tmp_path, records, compression):
    raw = "".join(json.dumps(r) + "\n" for r in records).encode()
    path = tmp_path / f"docs.jsonl.{compression}"
    path.write_bytes(
        gzip.compress(raw) if compression == "gz" else zstandard.ZstdCompressor().compress(raw)
    )
    ws = Workspace(tmp_path / "ws")
    assert ingest(ws, [str(path)], source="c").n_added == len(records)


def test_parquet_csv_and_glob(tmp_path, records):
    table = pa.Table.from_pylist(records)
    pq.write_table(table.slice(0, 2), tmp_path / "p1.parquet")
    pq.write_table(table.slice(2), tmp_path / "p2.parquet")
    ws = Workspace(tmp_path / "ws")
    assert ingest(ws, [str(tmp_path / "p*.parquet")], source="pq").n_added == len(records)
    with open(tmp_path / "docs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text", "date", "url", "lang_hint"])
        w.writeheader()
        for r in records:
            w.writerow({**r, "id": "csv-" + r["id"]})
    assert ingest(ws, [str(tmp_path / "docs.csv")], source="csv").n_added == len(records)
    assert count(ws, "source = 'csv' AND date IS NOT NULL") == 3


def test_dolma_documents(tmp_path):
    docs = [
        {
            "id": "d1",
            "text": "first dolma doc",
            "source": "c4",
            "added": "2024-01-01T00:00:00Z",
            "created": "2019-04-01T10:00:00.000Z",
            "metadata": {"url": "https://c4.example/x", "len": 3},
        },
        {
            "id": "d2",
            "text": "second dolma doc",
            "source": "wiki",
            "added": "2024-01-01T00:00:00Z",
            "created": "2021-02-03T00:00:00.000Z",
            "metadata": {"url": "https://wiki.example/y", "len": 3},
        },
    ]
    path = tmp_path / "part-0000.json.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(d) + "\n" for d in docs).encode()))
    ws = Workspace(tmp_path / "ws")
    rep = ingest(ws, [str(path)])  # source per document from the `source` field
    assert rep.n_added == 2
    rows = (
        ws.cursor()
        .execute("SELECT doc_id, source, date, metadata FROM documents ORDER BY 1")
        .fetchall()
    )
    assert [r[1] for r in rows] == ["c4", "wiki"]
    assert str(rows[0][2]) == "2019-04-01"
    meta = json.loads(rows[0][3])
    assert meta["metadata"]["url"] == "https://c4.example/x" and meta["added"].startswith("2024")


def test_hf_save_to_disk(tmp_path, records):
    import datasets

    ds = datasets.Dataset.from_list(records)
    ds.save_to_disk(str(tmp_path / "hf"))
    dd = datasets.DatasetDict({"train": ds.select(range(2)), "test": ds.select(range(2, 4))})
    dd.save_to_disk(str(tmp_path / "hfdict"))
    ws = Workspace(tmp_path / "ws")
    assert ingest(ws, [str(tmp_path / "hf")], source="hf").n_added == len(records)
    ws2 = Workspace(tmp_path / "ws2")
    assert ingest(ws2, [str(tmp_path / "hfdict")], source="hf").n_added == len(records)


# ----------------------------------------------------------------------------- bad input
def _assert_unchanged(ws: Workspace, before: bytes) -> None:
    assert fingerprint(ws) == before
    assert not list(ws.path.glob(".*.tmp*"))


@pytest.fixture
def seeded(tmp_path, jsonl_file):
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(jsonl_file)], source="web")
    return ws, fingerprint(ws)


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "bad.jsonl",
            b'{"text": "ok"}\n{"text": "broken"\n{"text": "x"}\n',
            r"bad.jsonl: line 2: invalid JSON",
        ),
        (
            "utf.jsonl",
            b'{"text": "ok"}\n{"text": "caf\xe9"}\n',
            r"utf.jsonl: line 2: .*not valid UTF-8",
        ),
        ("empty.jsonl", b"", r"empty.jsonl: the file is empty"),
        (
            "notext.jsonl",
            b'{"body": "a"}\n',
            r"notext.jsonl: no text field 'text'; fields are: body",
        ),
        (
            "sometext.jsonl",
            b'{"text": "a"}\n{"other": 1}\n',
            r"sometext.jsonl: line 2: the text field 'text' is missing",
        ),
        (
            "wrongtype.jsonl",
            b'{"text": 1}\n{"text": 2}\n',
            r"field 'text' has type BIGINT; expected text",
        ),
        (
            "baddate.jsonl",
            b'{"text": "a", "date": "yesterday"}\n',
            r"field 'date' holds 'yesterday', which is not a date",
        ),
        (
            "dupid.jsonl",
            b'{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n',
            r"id 'x' .* appears 2 times",
        ),
        (
            "bad.csv",
            b"id,text\n1,hello\n2,h\xffllo\n",
            r"bad.csv: line 3: bytes that are not valid UTF-8",
        ),
        ("doc.txt", b"plain", r"doc.txt: unknown format"),
    ],
)
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, seeded, name, content, message):
    ws, before = seeded
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        ingest(ws, [str(path)], source="bad")
    _assert_unchanged(ws, before)


def test_truncated_archives(tmp_path, seeded):
    ws, before = seeded
    raw = b"".join(b'{"text": "document %d with some words"}\n' % i for i in range(20000))
    gz = gzip.compress(raw)
    (tmp_path / "t.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    zs = zstandard.ZstdCompressor().compress(raw)
    (tmp_path / "t.jsonl.zst").write_bytes(zs[: len(zs) // 2])
    with pytest.raises(IngestError, match=r"t.jsonl.gz: truncated gzip"):
        ingest(ws, [str(tmp_path / "t.jsonl.gz")], source="bad")
    with pytest.raises(IngestError, match=r"t.jsonl.zst: truncated zstd"):
        ingest(ws, [str(tmp_path / "t.jsonl.zst")], source="bad")
    _assert_unchanged(ws, before)


def test_missing_file_and_glob(tmp_path, seeded):
    ws, before = seeded
    with pytest.raises(IngestError, match=r"nope.jsonl: no such file"):
        ingest(ws, [str(tmp_path / "nope.jsonl")], source="x")
    with pytest.raises(IngestError, match=r"matches no file"):
        ingest(ws, [str(tmp_path / "*.parquet")], source="x")
    _assert_unchanged(ws, before)


def test_missing_source_name(tmp_path, jsonl_file):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(IngestError, match=r"pass --source NAME"):
        ingest(ws, [str(jsonl_file)])


def test_failure_mid_ingest_leaves_workspace_exactly_as_before(tmp_path, seeded, monkeypatch):
    """A crash after documents were inserted into the private copy publishes nothing."""
    ws, before = seeded
    path = tmp_path / "more.jsonl"
    path.write_text("".join(json.dumps({"text": f"new document {i}"}) + "\n" for i in range(50)))
    import analytics.ingest.core as core

    class CrashingJson:  # json.dumps runs after INSERT INTO documents, inside the job
        @staticmethod
        def dumps(*args, **kwargs):
            raise RuntimeError("simulated crash after the insert")

    monkeypatch.setattr(core, "json", CrashingJson)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(ws, [str(path)], source="more")
    monkeypatch.undo()
    _assert_unchanged(ws, before)
    assert ingest(ws, [str(path)], source="more").n_added == 50  # re-running completes


def test_readers_see_only_committed_snapshots_and_can_pin_one(tmp_path, seeded):
    ws, _ = seeded
    n0 = count(ws)
    cur = ws.cursor()
    before = ws.snapshot_id()
    with ws.write(job="test") as con:
        con.execute("DELETE FROM documents")
        # readers see the committed snapshot while the job is running
        assert scalar(ws.cursor(), "SELECT count(*) FROM documents") == n0
        assert scalar(cur, "SELECT count(*) FROM documents") == n0
    assert count(ws) == 0  # after the commit, every new query sees it
    assert ws.snapshot_id() == before + 1
    pinned = ws.connect(snapshot=before)  # time travel: the snapshot before the job
    assert scalar(pinned, "SELECT count(*) FROM documents") == n0


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_decompression_bomb_is_refused(tmp_path, seeded, kind):
    ws, before = seeded
    raw = (b" " * (2**20 - 1) + b"\n") * 200  # 200 lines of 1 MiB compress > 1000x
    path = tmp_path / f"bomb.jsonl.{kind}"
    if kind == "gz":
        import zlib

        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        path.write_bytes(c.compress(raw) + c.flush())
    else:
        path.write_bytes(zstandard.ZstdCompressor(level=19).compress(raw))
    assert path.stat().st_size * 1000 < len(raw)
    with pytest.raises(IngestError, match="decompression bomb"):
        ingest(ws, [str(path)], source="bomb")
    _assert_unchanged(ws, before)


def _docs(ws: Workspace) -> list[tuple]:
    return (
        ws.cursor()
        .execute(
            "SELECT doc_id, source, date, url, n_bytes, n_chars, n_tokens, "
            "CAST(metadata AS VARCHAR), text_row FROM documents ORDER BY doc_id"
        )
        .fetchall()
    )


def test_parquet_token_paths_agree(tmp_path):
    """A first registration counts tokens while staging; a copy stages the text; a re-ingest
    of a grown file reads only its new rows' text back by row: the same documents."""
    rows = [
        {
            "id": f"d{i % 40}",
            "text": f"doc {i % 40} " + "word ängstlich " * (i % 40 % 7),
            "k": i % 40,
        }
        for i in range(50)  # ids 0-9 appear twice (same text)
    ] + [{"id": "blank", "text": "   ", "k": 0}]
    table = pa.Table.from_pylist(rows)
    one = tmp_path / "one" / "c.parquet"
    one.parent.mkdir()
    pq.write_table(table, one)
    fused = Workspace(tmp_path / "fused")
    rep = ingest(fused, [str(one)], source="s")
    assert (rep.n_added, rep.n_duplicate_in_input, rep.n_skipped_empty) == (40, 10, 1)
    copied = Workspace(tmp_path / "copied")
    ingest(copied, [str(one)], source="s", copy_text=True)
    grown = Workspace(tmp_path / "grown")
    two = tmp_path / "two" / "c.parquet"
    two.parent.mkdir()
    pq.write_table(table.slice(0, 15), two)
    assert ingest(grown, [str(two)], source="s").n_added == 15
    pq.write_table(table, two)
    rep = ingest(grown, [str(two)], source="s")
    assert (rep.n_added, rep.n_skipped_existing) == (25, 15)
    expected = _docs(fused)
    assert len(expected) == 40 and sum(r[6] for r in expected) > 0
    assert _docs(copied) == expected
    assert _docs(grown) == expected
    totals = "SELECT sum(n_docs), sum(n_tokens), sum(n_bytes) FROM doc_rollup"
    assert fused.cursor().execute(totals).fetchall() == grown.cursor().execute(totals).fetchall()
