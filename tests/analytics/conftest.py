"""Fixtures shared by the library tests: small workspaces with text in a Parquet file, the
SmolLM2 tokenizer, a materialisation workspace and its manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.tokenizer import TokenCounter
from analytics.workspace import Workspace
from tests.conftest import DEMO
from tests.workspaces.mixture import corpus_frame, manifest_for

#: documents per source of the materialisation workspace
MAT_SIZES = {"web": 120, "books": 30, "code": 60}


@pytest.fixture(scope="module")
def smol(smollm2_gguf) -> TokenCounter:
    return TokenCounter(str(smollm2_gguf))


@pytest.fixture
def small_ws(tmp_path) -> Workspace:
    """A workspace of 90 demo documents whose text stays in their Parquet file."""
    from analytics.ingest import ingest

    t = pq.read_table(DEMO).slice(0, 90)
    # shorter texts keep the test light; the locator still reads them from the file
    short = pa.array([s[:1500] for s in t["text"].to_pylist()])
    t = t.set_column(t.schema.get_field_index("text"), "text", short)
    pq.write_table(t, tmp_path / "corpus.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(tmp_path / "corpus.parquet")], id_field="id")
    return ws


def stored_counts(ws: Workspace, name: str) -> dict[str, int]:
    rows = (
        ws.cursor()
        .execute("SELECT doc_id, n_tokens FROM token_counts WHERE tokenizer = ?", [name])
        .fetchall()
    )
    assert len(rows) == len({r[0] for r in rows}), "a document was counted twice"
    return dict(rows)


def file_hashes(out: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `out`."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def mat_ws(tmp_path):
    """A workspace of 210 documents and a 3-group manifest (books repeated 2.5 times)."""
    ws = Workspace(tmp_path / "ws")
    ws.initialise()
    frame = corpus_frame(MAT_SIZES).drop(columns="quality")
    with ws.write(job="test-materialize") as c:
        c.register("_src", pa.Table.from_pandas(frame, preserve_index=False))
        c.execute("INSERT INTO documents BY NAME SELECT * EXCLUDE (text) FROM _src")
        c.execute("INSERT INTO texts SELECT doc_id, text FROM _src")
    m = manifest_for(ws.user_cursor(), {"web": 0.5, "books": 2.5, "code": 1.0})
    return ws, m
