"""`mixscope embed`, `mixscope map` and `mixscope search` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analytics.workspace import Workspace
from tests.workspaces.maps import (
    KEY,
    PER_SOURCE,
    copy_of,
    map_path,
    rows,
    small_docs_path,
)

ROOT_ARGS = [sys.executable, "-m", "dashboard.cli"]
N_DOCS = 17 * PER_SOURCE + 17
# The real CLI, SIGKILLed right after its first embedding shard is published.
KILL_AFTER_FIRST_SHARD = textwrap.dedent(
    """
    import os, signal, sys
    from analytics.embed.store import EmbeddingSet
    original = EmbeddingSet.write_shard
    def write_then_die(self, table):
        path = original(self, table)
        os.kill(os.getpid(), signal.SIGKILL)
    EmbeddingSet.write_shard = write_then_die
    from dashboard.cli import main
    sys.argv = ["mixscope", *sys.argv[1:]]
    main()
    """
)


def mixscope(*args, ws=None, env=None):
    cmd = [*ROOT_ARGS, *map(str, args)]
    if ws is not None:
        cmd += ["--workspace", str(getattr(ws, "path", ws))]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def set_ids(ws, key=KEY) -> list[str]:
    d = Path(ws.path) / "embeddings" / key
    out: list[str] = []
    for p in sorted(d.glob("*.parquet")):
        out += pq.read_table(p, columns=["doc_id"]).column("doc_id").to_pylist()
    return out


def mixscope_in_process(*args, ws, capsys):
    """The same entry point as the `mixscope` script, run in this process (fast, for the
    bad-input cases): returns a CompletedProcess-like result."""
    from dashboard.cli import main

    argv = ["mixscope", *map(str, args), "--workspace", str(ws.path)]
    old = sys.argv
    sys.argv = argv
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def one_line_error(res, *needles):
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    text = " ".join(lines[-1].split())
    for n in needles:
        assert n in text, text


@pytest.fixture
def docs_ws(tmp_path_factory, tmp_path):
    return copy_of(small_docs_path(tmp_path_factory), tmp_path / "ws")


@pytest.fixture
def mapped_ws(tmp_path_factory, tmp_path):
    return copy_of(map_path(tmp_path_factory), tmp_path / "ws")


# ---------------------------------------------------------------------- embed
def test_embed_resumes_after_a_kill_and_adds_only_the_missing_documents(docs_ws):
    args = ["embed", "--model", "fake", "--shard-rows", "100", "--batch-size", "16",
            "--workspace", str(docs_ws.path)]  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_SHARD, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    first = set_ids(docs_ws)
    assert len(first) == 100  # the published shard survived the kill; nothing half-written
    assert not list((Path(docs_ws.path) / "embeddings" / KEY).glob(".*.tmp"))
    again = mixscope(*args[:-2], ws=docs_ws)
    assert again.returncode == 0, again.stderr
    out = " ".join(again.stdout.split())
    assert f"embedded {N_DOCS - 100:,} documents" in out
    assert f"100 of the {N_DOCS:,} asked for were already embedded" in out
    assert f"set {KEY}: {N_DOCS:,} of {N_DOCS:,} documents (100.0%)" in out
    ids = set_ids(docs_ws)
    assert len(ids) == len(set(ids)) == N_DOCS and set(first) <= set(ids)
    assert "docs/s" in again.stderr  # the progress bar shows the rate
    done = mixscope(*args[:-2], ws=docs_ws)
    assert "embedded 0 documents" in " ".join(done.stdout.split()) and len(set_ids(docs_ws)) == (
        N_DOCS
    )


def test_embed_a_stratified_sample_then_grow_it(docs_ws):
    res = mixscope("embed", "--model", "fake", "--sample", "40", "--stratify-by", "source",
                   ws=docs_ws)  # fmt: skip
    assert res.returncode == 0, res.stderr
    ids = set_ids(docs_ws)
    assert len(ids) == 40
    got = rows(docs_ws, "SELECT count(DISTINCT source) FROM documents WHERE doc_id IN "
               "(SELECT unnest(?::VARCHAR[]))", [ids])[0][0]  # fmt: skip
    assert got == 18  # every source is in the sample
    man = json.loads((Path(docs_ws.path) / "embeddings" / KEY / "manifest.json").read_text())
    assert man["count"] == 40 and man["runs"][-1]["stratify_by"] == "source"


@pytest.mark.parametrize(
    "args, needles",
    [
        (["embed", "--model", "no-such-org/no-such-model"], ["not available offline",
                                                            "--allow-download"]),
        (["embed", "--model", "fake", "--sample", "100000"], ["larger than the corpus (357)"]),
        (["embed", "--model", "fake", "--sample", "5", "--stratify-by", "nope"],
         ["cannot stratify by 'nope'"]),
        (["embed", "--model", "fake", "--stratify-by", "source"], ["needs --sample"]),
        (["embed", "--model", "fake", "--engine", "spark"], ["--engine 'spark'"]),
        (["embed", "--model", "fake", "--device", "tpu"], ["--device 'tpu'"]),
        (["search", "anything"], ["no embeddings", "run `mixscope embed` first"]),
        (["map"], ["no embeddings", "run `mixscope embed` first"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(docs_ws, args, needles, capsys):
    before = sorted(p.name for p in Path(docs_ws.path).iterdir())
    one_line_error(mixscope_in_process(*args, ws=docs_ws, capsys=capsys), *needles)
    assert sorted(p.name for p in Path(docs_ws.path).iterdir()) == before  # nothing written


def test_dimension_mismatch_with_a_stored_set(mapped_ws):
    one_line_error(
        mixscope("embed", "--model", "fake:16", ws=mapped_ws),
        "stored embeddings have dimension 32 but the model gives 16",
    )
    assert len(set_ids(mapped_ws)) == N_DOCS


# ---------------------------------------------------------------------- map
def test_map_uses_its_cache_and_publishes_clusters(mapped_ws):
    ws = mapped_ws
    first = mixscope("map", "--k", "4", ws=ws)  # the projection is cached by the fixture
    assert first.returncode == 0, first.stderr
    out = " ".join(first.stdout.split())
    assert "all 357 documents" in out and "4 clusters (kmeans)" in out and "UMAP" in out
    map_id = out.split("map ", 1)[1].split(" ", 1)[0]
    params = Path(ws.path) / "maps" / map_id / "params.json"
    stamp = params.stat().st_mtime_ns
    sizes = rows(ws, "SELECT cluster, count(*) FROM doc_clusters WHERE map_id = ? GROUP BY 1 "
                 "ORDER BY 1", [map_id])  # fmt: skip
    assert [c for c, _ in sizes] == [0, 1, 2, 3] and sum(n for _, n in sizes) == N_DOCS
    labels = rows(ws, "SELECT cluster, label, size FROM cluster_labels WHERE map_id = ? "
                  "ORDER BY 1", [map_id])  # fmt: skip
    assert [(c, n) for c, _, n in labels] == sizes and all(lab for _, lab, _ in labels)
    again = mixscope("map", "--k", "4", ws=ws)
    assert again.returncode == 0, again.stderr
    assert "cached" in again.stdout and "UMAP not refitted" in " ".join(again.stdout.split())
    assert params.stat().st_mtime_ns == stamp  # nothing recomputed
    # the map just (re)published is the latest: a "latest" cluster condition follows it
    latest = rows(ws, "SELECT map_id FROM maps ORDER BY created_at DESC LIMIT 1")[0][0]
    assert latest == map_id
    listed = mixscope("map", "--list", ws=ws)
    assert listed.returncode == 0 and map_id in listed.stdout and "k=4" in listed.stdout
    assert len(rows(ws, "SELECT * FROM maps")) == 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["map", "--clusterer", "dbscan"], "--clusterer 'dbscan'"),
        (["map", "--clusterer", "hdbscan", "--k", "3"], "--k is the number of k-means"),
        (["map", "--min-dist", "2"], "--min-dist must be within [0, 1]"),
        (["map", "--model", "all-MiniLM-L6-v2"], "no embedding set for 'all-MiniLM-L6-v2'"),
    ],
)
def test_map_bad_options(map_ws, args, needle, capsys):
    one_line_error(mixscope_in_process(*args, ws=map_ws, capsys=capsys), needle)


# ---------------------------------------------------------------------- search
def test_search_prints_the_nearest_documents(map_ws):
    doc_id, text = rows(
        map_ws,
        "SELECT doc_id, text FROM documents "
        "JOIN document_text USING (doc_id) WHERE source = 'fortunes-en' "
        "AND length(text) BETWEEN 60 AND 200 ORDER BY doc_id LIMIT 1",
    )[0]
    res = mixscope("search", text, "-k", "3", "--json", ws=map_ws)
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["doc_id"] == doc_id and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    like = mixscope("search", "--like", doc_id, "-k", "4", "--json", ws=map_ws)
    near = json.loads(like.stdout)
    assert len(near) == 4 and doc_id not in [h["doc_id"] for h in near]
    table = mixscope("search", text, "-k", "2", ws=map_ws)
    assert table.returncode == 0 and "rank" in table.stdout and "fortunes-en" in table.stdout
    one_line_error(mixscope("search", ws=map_ws), "give a query")


# ---------------------------------------------------------------------- the real model
@pytest.mark.slow
def test_real_packaged_model_from_the_cli(tmp_path):
    """all-MiniLM-L6-v2 from its package, offline: topical texts find their own topic."""
    from tests.workspaces.topics import TOPICS

    src = tmp_path / "topics.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f"{topic}-{i}", "text": t, "source": topic}) + "\n"
            for topic, texts in TOPICS.items()
            for i, t in enumerate(texts)
        )
    )
    ws = Workspace.open(tmp_path / "ws", create=True)
    from analytics.ingest import ingest

    ingest(ws, [str(src)], source_field="source", id_field="id")
    res = mixscope("embed", "--model", "all-MiniLM-L6-v2", "--batch-size", "8", ws=ws)
    assert res.returncode == 0, res.stderr
    key = "sentence-transformers--all-minilm-l6-v2__msl256"
    n = sum(len(v) for v in TOPICS.values())
    assert f"set {key}: {n} of {n} documents" in " ".join(res.stdout.split())
    man = json.loads((Path(ws.path) / "embeddings" / key / "manifest.json").read_text())
    assert man["model"] == "sentence-transformers/all-MiniLM-L6-v2" and man["dim"] == 384
    hits = json.loads(
        mixscope(
            "search",
            "galaxies, stars and planets seen through a telescope",
            "-k",
            "5",
            "--json",
            ws=ws,
        ).stdout  # fmt: skip
    )
    assert [h["source"] for h in hits] == ["astronomy"] * 5
    code = json.loads(
        mixscope("search", "--like", "programming-0", "-k", "3", "--json", ws=ws).stdout
    )
    assert [h["source"] for h in code] == ["programming"] * 3


# ---------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_embed_with_a_local_ray_instance_then_locally(docs_ws):
    pytest.importorskip("ray")
    res = mixscope("embed", "--model", "fake", "--engine", "ray", "--sample", "60",
                   "--ray-cpus-per-actor", "0", ws=docs_ws)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert len(set_ids(docs_ws)) == 60
    assert not (Path(docs_ws.path) / "ray-staging").exists()  # staging cleaned up
    rest = mixscope("embed", "--model", "fake", ws=docs_ws)  # the local engine continues
    assert rest.returncode == 0, rest.stderr
    assert "60 of the 357 asked for were already embedded" in " ".join(rest.stdout.split())
    ids = set_ids(docs_ws)
    assert len(ids) == len(set(ids)) == N_DOCS
