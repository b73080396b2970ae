"""Checks of the shipped demo corpus (data/), its build script and the bench generator."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import json
import re
import struct
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT

DATA = ROOT / "data"
CORPUS = DATA / "demo_corpus.parquet"
SOURCES_MD = DATA / "SOURCES.md"
ISO_639_1 = {"en", "de", "es", "it", "ru", "zh", "fr"}


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"_mixscope_data_{name}", DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def corpus() -> pa.Table:
    return pq.read_table(CORPUS)


@pytest.fixture(scope="module")
def build():
    return _load_script("build_demo_corpus")


@pytest.fixture(scope="module")
def bench():
    return _load_script("make_bench_corpus")


# --------------------------------------------------------------------------- shipped corpus


def test_schema_is_exact(corpus: pa.Table) -> None:
    expected = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),
            ("domain", pa.string()),
            ("lang", pa.string()),
            ("date", pa.date32()),
            ("url", pa.string()),
            ("title", pa.string()),
        ]
    )
    assert corpus.schema.remove_metadata().equals(expected)
    assert pq.ParquetFile(CORPUS).metadata.row_group(0).column(1).compression == "ZSTD"


def test_size_and_doc_count(corpus: pa.Table) -> None:
    assert 20_000 <= corpus.num_rows <= 50_000
    assert CORPUS.stat().st_size < 15 * 1024 * 1024


def test_ids_unique_and_sorted(corpus: pa.Table) -> None:
    ids = corpus.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i.startswith(s + "/") for i, s in zip(ids, corpus["source"].to_pylist()))


def test_texts_non_empty_valid_utf8(corpus: pa.Table) -> None:
    corpus.column("text").validate(full=True)
    texts = corpus.column("text").to_pylist()
    for t in texts:
        assert t is not None and t.strip()
        t.encode("utf-8", errors="strict")  # lone surrogates would raise
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", t)
    # decoding damage (U+FFFD) is rare
    assert sum("\ufffd" in t for t in texts) < len(texts) / 1000


def test_required_fields_present(corpus: pa.Table) -> None:
    for col in ("source", "domain", "lang", "url"):
        assert corpus.column(col).null_count == 0, col
    urls = corpus.column("url").to_pylist()
    assert all(re.match(r"^[a-z]+://\S+$", u) for u in urls)


def test_language_and_domain_variety(corpus: pa.Table) -> None:
    langs = set(corpus.column("lang").to_pylist())
    domains = set(corpus.column("domain").to_pylist())
    assert langs <= ISO_639_1
    assert len(langs) >= 6
    assert len(domains) >= 8


def test_dates_are_plausible(corpus: pa.Table) -> None:
    dates = [d for d in corpus.column("date").to_pylist() if d is not None]
    assert len(dates) > corpus.num_rows // 2
    assert all(
        isinstance(d, dt.date) and dt.date(1500, 1, 1) <= d <= dt.date(2100, 1, 1) for d in dates
    )
    by_source = {}
    for s, d in zip(corpus["source"].to_pylist(), corpus["date"].to_pylist()):
        by_source.setdefault(s, set()).add(d)
    assert by_source["bible-kjv"] == {dt.date(1611, 1, 1)}
    assert dt.date(1813, 1, 1) in by_source["austen"]  # Pride and Prejudice


def test_document_lengths_capped_and_varied(corpus: pa.Table) -> None:
    words = [len(t.split()) for t in corpus.column("text").to_pylist()]
    assert max(words) <= 4100
    assert min(words) <= 5
    assert sum(w > 2000 for w in words) > 100


def _sources_md_rows() -> dict[str, tuple[int, int]]:
    rows = {}
    for line in SOURCES_MD.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[m.group(1)] = (int(cells[4]), int(cells[5]))
    return rows


def test_sources_md_counts_match_parquet(corpus: pa.Table) -> None:
    md = _sources_md_rows()
    docs = Counter(corpus.column("source").to_pylist())
    words: Counter[str] = Counter()
    for s, t in zip(corpus["source"].to_pylist(), corpus["text"].to_pylist()):
        words[s] += len(t.split())
    assert set(md) == set(docs)
    for s in docs:
        assert md[s] == (docs[s], words[s]), s


# --------------------------------------------------------------------------- build helpers


def test_split_words_balanced(build) -> None:
    text = "\n\n".join(["a b c d e f g h i j"] * 900)  # 9000 words in 10-word paragraphs
    parts = build.split_words(text, max_words=4000)
    assert [len(p.split()) for p in parts] == [3000, 3000, 3000]
    assert build.split_words("one two", max_words=4000) == ["one two"]


def test_make_docs_ids_for_parts(build) -> None:
    docs = build.make_docs("s/x", "\n\n".join(["w " * 10] * 500), "u", title="T")
    assert [d.id for d in docs] == ["s/x~part1", "s/x~part2"]
    assert docs[1].title == "T (part 2/2)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11. Mai 2022", dt.date(2022, 5, 11)),
        ("30 octobre 2022", dt.date(2022, 10, 30)),
        ("2021-08-01", dt.date(2021, 8, 1)),
        ("Sep. 1997", dt.date(1997, 9, 1)),
        ("May 3, 2001", dt.date(2001, 5, 3)),
        ("GNU coreutils", None),
    ],
)
def test_parse_loose_date(build, text, expected) -> None:
    assert build.parse_loose_date(text) == expected


def test_roff_to_text(build) -> None:
    src = "\n".join(
        [
            '.\\" comment',
            '.TH LS 1 "September 2022" "GNU coreutils 9.1"',
            ".SH NAME",
            "ls \\- list directory",
            ".SH OPTIONS",
            ".TP",
            "\\fB\\-a\\fR, \\fB\\-\\-all\\fP",
            "do not ignore",
            "entries starting with .",
        ]
    )
    th, text = build.roff_to_text(src)
    assert th[:3] == ["LS", "1", "September 2022"]
    assert text == (
        "NAME\n\nls - list directory\n\nOPTIONS\n\n-a, --all\ndo not ignore entries starting with ."
    )
    assert build.roff_to_text(".so man1/ls.1\n") is None


def test_rst_to_text(build) -> None:
    src = "\n".join(
        [
            ".. _label:",
            "",
            "Use :func:`os.path.join` and ``x = 1`` (see :issue:`123`)::",
            "",
            "   code *stays* ``as is``",
            "",
            ".. note::",
            "",
            "   Be **careful**.",
        ]
    )
    assert build.rst_to_text(src).split("\n") == [
        "Use os.path.join and x = 1 (see bpo-123):",
        "",
        "   code *stays* ``as is``",
        "",
        "Note:",
        "",
        "Be careful.",
    ]


def test_rst_trailing_literal_block_is_kept(build) -> None:
    assert build.rst_to_text("Example::\n\n   code *stays*") == "Example:\n\n   code *stays*"


def test_rst_sections(build) -> None:
    src = "Title\n=====\n\nintro\n\nPart A\n------\n\nbody a\n"
    assert [t for t, _ in build.rst_sections(src)] == ["Title", "Part A"]


def test_r_reader_character_vector(build) -> None:
    # Hand-encoded XDR serialisation (version 2) of the R value c("ab", "é").
    def charsxp(s: str) -> bytes:
        raw = s.encode("utf-8")
        return struct.pack(">ii", 9 | (8 << 12), len(raw)) + raw  # CHARSXP, UTF8 flag

    payload = b"X\n" + struct.pack(">iii", 2, 0x040200, 0x020300)
    payload += struct.pack(">ii", 16, 2) + charsxp("ab") + charsxp("é")
    assert build._RReader(payload).read() == ["ab", "é"]


def test_missing_package_fails_or_skips(build, monkeypatch, tmp_path) -> None:
    def broken(ctx):
        raise build.PackageUnavailable("no-such-pkg: apt-get download failed")
        yield  # pragma: no cover

    def good(ctx):
        yield build.Doc("ok/1", "hello world", "https://example.org/1", title="t")

    monkeypatch.setattr(build, "SOURCES", {})
    build.register("ok", packages=(), domain="d", lang="en", what="w", licence="l", max_docs=None)(
        good
    )
    build.register("bad", packages=(), domain="d", lang="en", what="w", licence="l", max_docs=None)(
        broken
    )
    out = tmp_path / "c.parquet"
    args = ["--out", str(out), "--workdir", str(tmp_path / "w")]
    assert build.main(args) == 2
    assert not out.exists()
    assert build.main([*args, "--skip-missing"]) == 0
    t = pq.read_table(out)
    assert t.column("id").to_pylist() == ["ok/1"]
    assert "| `ok` |" in (tmp_path / "SOURCES.md").read_text()


# --------------------------------------------------------------------------- bench generator


@pytest.fixture()
def tiny_demo(tmp_path, corpus) -> Path:
    path = tmp_path / "demo.parquet"
    pq.write_table(corpus.slice(0, 40), path)
    return path


def test_bench_jsonl_deterministic_and_chunk_independent(bench, tiny_demo, tmp_path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    assert (
        bench.main(
            ["--docs", "250", "--out", str(a), "--demo", str(tiny_demo), "--chunk-size", "7"]
        )
        == 0
    )
    assert bench.main(["--docs", "250", "--out", str(b), "--demo", str(tiny_demo)]) == 0
    text_a = a.read_text(encoding="utf-8")
    assert text_a == gzip.open(b, "rt", encoding="utf-8").read()
    rows = [json.loads(x) for x in text_a.splitlines()]
    demo = pq.read_table(tiny_demo).to_pylist()
    assert len(rows) == 250
    assert len({r["id"] for r in rows}) == 250
    assert [r["id"] for r in rows[:40]] == [d["id"] for d in demo]
    assert [r["text"] for r in rows[:40]] == [d["text"] for d in demo]
    assert rows[45]["id"] == demo[5]["id"] + "~r1"
    assert rows[45]["source"] == demo[5]["source"]
    assert all(r["text"].strip() for r in rows)
    # variations really vary: most round-1+ texts differ from their origin
    changed = sum(r["text"] != demo[i % 40]["text"] for i, r in enumerate(rows) if i >= 40)
    assert changed > 150


def test_bench_parquet_roundtrip(bench, tiny_demo, tmp_path) -> None:
    out = tmp_path / "b.parquet"
    assert (
        bench.main(
            ["--docs", "130", "--out", str(out), "--demo", str(tiny_demo), "--chunk-size", "50"]
        )
        == 0
    )
    pf = pq.ParquetFile(out)
    assert pf.metadata.num_rows == 130
    assert pf.metadata.num_row_groups == 3
    t = pf.read()
    assert t.schema.field("date").type == pa.date32()
    assert t.column("id").to_pylist()[40].endswith("~r1")


def test_demo_ships_an_eval_set_whose_copied_items_match_and_novel_ones_do_not(
    demo_workspace_copy, tmp_path
):
    """The Contamination page's first-visit content: the shipped eval set scanned as the
    demo's queued job does it (the real CLI), 16 copied passages found, 10 novel ones not."""
    import json
    import subprocess
    import sys

    from analytics.demo import DEMO_EVAL, queue_demo_contamination
    from analytics.jobs import JobStore

    items = [json.loads(line) for line in DEMO_EVAL.read_text().splitlines()]
    copied = [i for i, it in enumerate(items) if it["id"].startswith("copied-")]
    assert len(copied) == 16 and len(items) == 26
    ws = demo_workspace_copy
    job_id = queue_demo_contamination(ws, start_worker=False)
    assert job_id and queue_demo_contamination(ws, start_worker=False) == job_id  # queued once
    job = JobStore(ws.path).get(job_id)
    report = tmp_path / "r.json"
    args = [a if not a.endswith(".json") else str(report) for a in job.args]
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", *args, "--workspace", str(ws.path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(report.read_text())["eval_matched"] == copied
    JobStore(ws.path).cancel(job_id)


def test_demo_concepts_are_shipped_and_clean():
    from analytics.demo import demo_concepts

    concepts = demo_concepts()
    assert len(concepts) >= 30 and "C++" not in concepts and "c++" in concepts
