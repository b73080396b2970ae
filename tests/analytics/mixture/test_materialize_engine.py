"""Materialise on the engine: the same bytes in-process, on a process pool (and on Ray, in
tests/analytics/test_engine_ray.py), and a killed run resumes at the next unfinished shard."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from analytics.engine import EngineError
from analytics.mixture import MixtureError, materialize
from analytics.mixture.manifest import manifest_to_dict, validate_manifest
from tests.analytics.conftest import MAT_SIZES, file_hashes
from tests.conftest import ROOT
from tests.workspaces.mixture import corpus_frame


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_engines_write_the_same_bytes(mat_ws, tmp_path, fmt):
    ws, m = mat_ws
    ref = materialize(ws, m, tmp_path / "inproc", fmt=fmt, shard_rows=40, engine="in-process")
    pooled = materialize(
        ws, m, tmp_path / "local", fmt=fmt, shard_rows=40, engine="local", workers=2
    )
    a, b = file_hashes(tmp_path / "inproc"), file_hashes(tmp_path / "local")
    shards = [k for k in a if "/part-" in k]
    assert len(shards) >= 5  # several units, so the pool really splits the work
    assert a == b
    assert ref.summary == pooled.summary
    assert ref.groups.equals(pooled.groups)
    # nothing of the run is left beside the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inproc", "local", "ws"]
    assert not (tmp_path / "local" / ".plan").exists()
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["main", "materialize.json"]


def test_rows_are_the_documents_with_their_text(mat_ws, tmp_path):
    ws, m = mat_ws
    res = materialize(ws, m, tmp_path / "out", shard_rows=50, engine="local", workers=2)
    rows = [
        json.loads(line)
        for f in sorted((tmp_path / "out" / "main").glob("part-*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert len(rows) == int(res.groups["rows"].sum())
    texts = dict(
        zip(corpus_frame(MAT_SIZES)["doc_id"], corpus_frame(MAT_SIZES)["text"], strict=True)
    )
    assert all(r["text"] == texts[r["doc_id"]] for r in rows)
    assert max(r["repeat"] for r in rows if r["group"] == "books") == 2  # 2.5 epochs


KILLER = textwrap.dedent(
    """
    import json, os, signal, sys
    from analytics.mixture import materialize
    from analytics.mixture.manifest import validate_manifest
    from analytics.workspace import Workspace

    ws_path, manifest_path, out, kill_after = sys.argv[1:5]
    m = validate_manifest(json.loads(open(manifest_path).read()))

    def progress(stage, done, total):
        if stage.endswith("writing shards") and done >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)

    materialize(Workspace(ws_path), m, out, shard_rows=40, engine="in-process",
                progress=progress)
    """
)


def test_a_killed_run_resumes_at_the_next_unfinished_shard(mat_ws, tmp_path):
    ws, m = mat_ws
    ref = tmp_path / "ref"
    materialize(ws, m, ref, shard_rows=40, engine="in-process")
    manifest_path = tmp_path / "m.json"
    manifest_path.write_text(json.dumps(manifest_to_dict(m)))
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-c", KILLER, str(ws.path), str(manifest_path), str(out), "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == -9, r.stderr
    assert not out.exists()  # nothing published
    (partial,) = [p for p in tmp_path.glob(".out.partial-*") if p.is_dir()]
    done = sorted(partial.glob("main/part-*.jsonl"))
    n_shards = len([k for k in file_hashes(ref) if "/part-" in k])
    assert 3 <= len(done) < n_shards
    stamps = {p.name: p.stat().st_mtime_ns for p in done}

    seen = []
    materialize(
        ws, validate_manifest(json.loads(manifest_path.read_text())), out, shard_rows=40,
        engine="local", workers=2, progress=lambda s, d, t: seen.append((s, d, t)),
    )  # fmt: skip
    writing = [x for x in seen if x[0] == "phase main: writing shards"]
    assert writing[0] == ("phase main: writing shards", len(done), n_shards)  # resumed there
    assert writing[-1] == ("phase main: writing shards", n_shards, n_shards)
    assert {p: (out / "main" / p).stat().st_mtime_ns for p in stamps} == stamps  # not redone
    assert file_hashes(out) == file_hashes(ref)
    assert not list(tmp_path.glob(".out.partial-*"))  # the killed run's lock file too


def test_bad_engine_input(mat_ws, tmp_path):
    ws, m = mat_ws
    with pytest.raises(EngineError, match="expected one of in-process, local, ray"):
        materialize(ws, m, tmp_path / "x", engine="spark")
    with pytest.raises(MixtureError, match="pass the workspace"):
        materialize(ws.connect(read_only=True, remote=True), m, tmp_path / "y", engine="local")
    with pytest.raises(EngineError, match="no Ray cluster answers"):
        materialize(ws, m, tmp_path / "z", engine="ray", ray_address="127.0.0.1:1")
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".z.partial-*"))
