"""The lakehouse with real services: a corpus on an S3-compatible store (moto on 127.0.0.1)
and a PostgreSQL catalog shared by concurrent writers."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import uuid

import pandas as pd
import pytest

from analytics.db import scalar
from analytics.errors import IngestError
from analytics.ingest import ingest
from analytics.signals import run_signals
from analytics.text import fetch_texts
from analytics.workspace import Workspace
from tests.conftest import fingerprint

DOCS = pd.DataFrame(
    {
        "id": [f"w{i}" for i in range(40)],
        "text": [f"web page {i} about rivers and stones " + "more " * i for i in range(40)],
        "url": [f"https://site{i % 4}.example.com/p{i}" for i in range(40)],
    }
)


def put_parquet(client, bucket, key, df):
    buf = io.BytesIO()
    df.to_parquet(buf)
    client.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())


def test_ingest_view_and_signals_from_s3(s3, tmp_path):
    client, bucket = s3
    put_parquet(client, bucket, "web/part-0.parquet", DOCS.iloc[:25])
    put_parquet(client, bucket, "web/part-1.parquet", DOCS.iloc[25:])
    jsonl = "".join(
        r.to_json() + "\n" for _, r in DOCS.head(5).assign(id=lambda d: "j" + d.id).iterrows()
    )
    client.put_object(Bucket=bucket, Key="jsonl/a.jsonl", Body=jsonl.encode())
    ws = Workspace(tmp_path / "ws")
    rep = ingest(ws, [f"s3://{bucket}/web/*.parquet"], source="web")
    assert rep.n_added == 40 and len(rep.files) == 2
    rep = ingest(ws, [f"s3://{bucket}/jsonl/a.jsonl"], source="j")
    assert rep.n_added == 5
    cur = ws.cursor()
    assert scalar(cur, "SELECT count(*) FROM texts") == 0  # the text stayed in the bucket
    assert fetch_texts(cur, ["w30", "jw2"]) == {
        "w30": DOCS.text[30],
        "jw2": DOCS.text[2],
    }
    with ws.write(job="signals") as con:
        run_signals(con, ["compression", "url_domain"])
    n = scalar(ws.cursor(), "SELECT count(*) FROM signal_compression")
    assert n == 45


def test_s3_bad_inputs_are_one_clear_error(s3, tmp_path, monkeypatch):
    client, bucket = s3
    put_parquet(client, bucket, "web/part-0.parquet", DOCS)
    ws = Workspace.open(tmp_path / "ws", create=True)
    before = fingerprint(ws)
    with pytest.raises(IngestError, match=rf"s3://{bucket}/nothing/\*\.parquet: no such object"):
        ingest(ws, [f"s3://{bucket}/nothing/*.parquet"], source="web")
    with pytest.raises(IngestError, match=r"s3://no-such-bucket-x/.*"):
        ingest(ws, ["s3://no-such-bucket-x/a/*.parquet"], source="web")
    with pytest.raises(
        IngestError, match=rf"s3://{bucket}/web/absent\.parquet: cannot be read: no such object"
    ):
        ingest(ws, [f"s3://{bucket}/web/absent.parquet"], source="web")
    from tests.conftest import _free_port

    # moto does not check credentials; an endpoint that does not answer stands in for an
    # unreachable store
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(IngestError, match=rf"s3://{bucket}/web/part-0\.parquet"):
        ingest(ws, [f"s3://{bucket}/web/part-0.parquet"], source="web")
    assert fingerprint(ws) == before


def _create_database(url: str) -> str:
    """A fresh database on the test server (one catalog per test)."""
    import shutil
    from urllib.parse import urlparse

    u = urlparse(url)
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    name = f"mx_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        [
            psql,
            "-h",
            u.hostname,
            "-p",
            str(u.port),
            "-U",
            "postgres",
            "-q",
            "-c",
            f"CREATE DATABASE {name}",
        ],
        check=True,
    )
    return url.rsplit("/", 1)[0] + "/" + name


def test_postgres_catalog_with_concurrent_writers(postgres_server, tmp_path):
    url = _create_database(postgres_server)
    ws = Workspace.open(tmp_path / "ws", create=True, catalog=url)
    assert not ws.uses_sqlite and "password" not in (tmp_path / "ws" / "workspace.json").read_text()
    code = textwrap.dedent(
        """
        import sys
        from analytics.workspace import Workspace
        ws = Workspace(sys.argv[1])
        for k in range(5):
            with ws.write(job=f"w{sys.argv[2]}") as con:
                con.execute("INSERT INTO meta VALUES (?, ?)", [f"w{sys.argv[2]}-{k}", "x"])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "ws"), str(i)])
        for i in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert scalar(ws.cursor(), "SELECT count(*) FROM meta WHERE key LIKE 'w%-%'") == 15


def test_postgres_catalog_refuses_a_password_in_the_url(tmp_path):
    from analytics.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="PGPASSWORD"):
        Workspace.open(tmp_path / "ws", create=True, catalog="postgresql://u:secret@127.0.0.1:1/db")


def test_lake_data_on_s3(s3, tmp_path):
    """--data s3://bucket/prefix/: the lake's Parquet files live on the object store."""
    client, bucket = s3
    src = tmp_path / "docs.parquet"
    DOCS.to_parquet(src)
    ws = Workspace.open(tmp_path / "ws", create=True, data=f"s3://{bucket}/lake/")
    ingest(ws, [str(src)], source="web", copy_text=True)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("lake/main/documents/") and k.endswith(".parquet") for k in keys)
    assert not (tmp_path / "ws" / "data").exists()
    cur = ws.cursor()
    assert scalar(cur, "SELECT count(*) FROM documents") == 40
    assert fetch_texts(cur, ["w7"]) == {"w7": DOCS.text[7]}
    # the locked reader of user SQL reads the lake's own files there, and nothing else
    want = int(DOCS.url.str.len().sum())
    assert scalar(ws.user_cursor(), "SELECT sum(length(url)) FROM documents") == want
    with pytest.raises(Exception, match="(?i)permission|disabled"):
        ws.user_cursor().execute(f"SELECT * FROM read_parquet('s3://{bucket}/other.parquet')")
