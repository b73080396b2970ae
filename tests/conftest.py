"""Shared fixtures: tiny corpora in every format and a session workspace from the demo corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo_corpus.parquet"

TEXTS = [
    ("a1", "The quick brown fox jumps over the lazy dog near the river bank.", "2001-05-04"),
    ("a2", "Der schnelle braune Fuchs springt über den faulen Hund.", "1999-12-31"),
    ("a3", "import os\nprint(os.getcwd())\n", None),
    ("a4", "A licence grants permission to copy, modify and distribute the work.", "2007-06-29"),
]


@pytest.fixture
def records():
    return [
        {"id": i, "text": t, "date": d, "url": f"https://example.org/{i}", "lang_hint": n}
        for n, (i, t, d) in enumerate(TEXTS)
    ]


@pytest.fixture
def jsonl_file(tmp_path, records):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """A workspace ingested from the shipped demo corpus, once per test session."""
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    if not DEMO.exists():
        pytest.fail(f"{DEMO} is missing: the demo corpus must ship with the repository.")
    path = tmp_path_factory.mktemp("demo_ws")
    ws = Workspace(path)
    ingest(ws, [str(DEMO)], id_field="id")
    return ws


@pytest.fixture
def demo_workspace_copy(demo_workspace, tmp_path):
    """A private copy of the demo workspace that a test may write to."""
    from analytics.workspace import Workspace

    dst = tmp_path / "ws"
    shutil.copytree(demo_workspace.path, dst)
    return Workspace(dst)


def fingerprint(ws) -> tuple:
    """What a workspace has committed: its last lake snapshot id and its data files.
    Equal fingerprints = nothing was committed and no file was left behind."""
    data = Path(ws.data_path)
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    return (ws.snapshot_id(), tuple(files))


def add_doc(con, **row) -> None:
    """Insert one document into a workspace-schema connection: its metadata into `documents`
    and its text (if given) into `texts`, as an ingest with --copy-text would."""
    text = row.pop("text", None)
    cols = list(row)
    con.execute(
        f"INSERT INTO documents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        list(row.values()),
    )
    if text is not None:
        con.execute("INSERT INTO texts VALUES (?, ?)", [row["doc_id"], text])
