"""`mixscope checkpoints add|list|remove`, `geometry` and `demo-series` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from analytics.workspace import Workspace
from tests.conftest import fingerprint
from tests.workspaces.geometry import (
    PROBE,
    ROOT,
    cli,
    copy_of,
    counts,
    minilm_dir,
    mixscope,
    series_path,
    small_path,
)

# Runs the real CLI, but SIGKILLs the process right after its first checkpoint is published.
KILL_AFTER_FIRST_CHECKPOINT = textwrap.dedent(
    """
    import os, signal, sys
    from analytics.workspace import Workspace
    original = Workspace.checkpoint
    def checkpoint_then_die(self, con):
        original(self, con)
        os.kill(os.getpid(), signal.SIGKILL)
    Workspace.checkpoint = checkpoint_then_die
    from dashboard.cli import main
    sys.argv = ["mixscope", *sys.argv[1:]]
    main()
    """
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_main(monkeypatch, capsys, *args) -> tuple[int, str]:
    """The CLI entry point in this process (same error handling as the console script)."""
    capsys.readouterr()
    code = cli(*args)
    out = capsys.readouterr()
    return code, out.err + out.out


# ---------------------------------------------------------------------- happy path
def test_list_shows_registered_runs(geometry_ws):
    r = mixscope("checkpoints", "list", "--json", ws=geometry_ws.path)
    assert r.returncode == 0, r.stderr
    runs = {d["run"]: d for d in json.loads(r.stdout)}
    assert set(runs) == {"minilm", "tiny"}
    assert [c["step"] for c in runs["tiny"]["checkpoints"]] == [1, 2, 4, 8]
    assert runs["tiny"]["n_results"] == 7 and runs["minilm"]["n_results"] == 1
    table = mixscope("checkpoints", "list", ws=geometry_ws.path)
    assert "tiny" in table.stdout + table.stderr and "1..8" in table.stdout + table.stderr


def test_rerun_adds_nothing_and_writes_nothing(geometry_ws, tmp_path):
    ws = copy_of(geometry_ws.path, tmp_path / "ws")
    before, digest = counts(ws), fingerprint(ws)
    r = mixscope("geometry", "tiny", *PROBE, ws=ws.path)
    assert r.returncode == 0, r.stderr
    assert "nothing new" in r.stdout + r.stderr
    assert counts(ws) == before
    assert fingerprint(ws) == digest  # not even a write job was opened


@pytest.mark.slow
def test_killed_run_keeps_finished_checkpoints_and_rerun_adds_only_the_rest(
    geometry_ws, tmp_path_factory, tmp_path, monkeypatch, capsys
):
    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    assert (
        mixscope("checkpoints", "add", "tiny", series_path(tmp_path_factory), ws=ws.path).returncode
        == 0
    )
    killed = __import__("subprocess").run(
        [sys.executable, "-c", KILL_AFTER_FIRST_CHECKPOINT, "geometry", "tiny", *PROBE,
         "--workspace", str(ws.path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert killed.returncode == -9
    kept = (
        ws.cursor()
        .execute("SELECT kind, checkpoint FROM geometry_results WHERE run = 'tiny'")
        .fetchall()
    )
    assert kept == [("checkpoint", "checkpoint-1")]  # the first checkpoint survived the kill
    code, out = run_main(monkeypatch, capsys, "geometry", "tiny", *PROBE, "-w", ws.path)
    assert code == 0, out
    # checkpoint-1's own result is reused; its states are extracted again only for the CKA
    # pair with checkpoint-2: 3 checkpoint results + 3 pairs are new
    assert "checkpoint-1: already stored; extracted again for CKA" in out, out
    assert "checkpoint-1: computed" not in out and "6 new result(s)" in out, out
    want = {k: v for k, v in counts(geometry_ws).items()}
    got = counts(ws)
    for table in ("geometry_metrics", "geometry_spectra", "geometry_cka", "geometry_loss"):
        n_minilm = (
            geometry_ws.cursor()
            .execute(f"SELECT count(*) FROM {table} WHERE run = 'minilm'")
            .fetchall()[0][0]
        )
        assert got[table] == want[table] - n_minilm, table


def test_new_parameters_add_a_new_setting(geometry_ws, tmp_path):
    ws = copy_of(geometry_ws.path, tmp_path / "ws")
    code = cli(
        "geometry", "tiny", *PROBE, "--layers", "last", "--no-per-source", "--no-weights",
        "--rankme-eps", "1e-5", "--workspace", ws.path,
    )  # fmt: skip
    assert code == 0
    cfgs = (
        ws.cursor()
        .execute(
            "SELECT DISTINCT config, (params->'rankme_eps')::DOUBLE FROM geometry_results "
            "WHERE run = 'tiny'"
        )
        .fetchall()
    )
    assert len(cfgs) == 2 and {c[1] for c in cfgs} == {1e-7, 1e-5}
    new = (
        ws.cursor()
        .execute(
            """SELECT DISTINCT layer, "group", (params->'eps')::DOUBLE AS eps FROM geometry_metrics
           WHERE run = 'tiny' AND metric = 'rankme' AND (params->'eps')::DOUBLE = 1e-5"""
        )
        .fetchall()
    )
    assert new == [(2, "all", 1e-5)]  # --layers last, --no-per-source


def test_stored_rankme_equals_rankme_of_independently_extracted_states(geometry_ws):
    """Re-extract the final-layer last-token states of checkpoint-8 by hand (one text at a
    time, no padding) and compare RankMe with the stored numbers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from analytics.geometry import rankme

    cur = geometry_ws.cursor()
    path = cur.execute(
        "SELECT path FROM geometry_run_checkpoints WHERE run = 'tiny' AND step = 8"
    ).fetchall()[0][0]
    texts = [
        r[0]
        for r in cur.execute(
            """SELECT d.text FROM geometry_probe_docs p JOIN document_text d USING (doc_id)
               ORDER BY p.ordinal"""
        ).fetchall()
    ]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    rows = []
    with torch.no_grad():
        for t in texts:
            ids = tok(t, truncation=True, max_length=32)["input_ids"]
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
            rows.append(out.hidden_states[-1][0, -1].double().numpy())
    Z = np.stack(rows)
    stored = dict(
        cur.execute(
            """SELECT variant, value FROM geometry_metrics WHERE run = 'tiny' AND step = 8
               AND layer = 2 AND "group" = 'all' AND metric = 'rankme'"""
        ).fetchall()
    )
    assert stored["covariance"] == pytest.approx(rankme(Z, variant="covariance"), rel=1e-4)
    assert stored["singular"] == pytest.approx(rankme(Z, variant="singular"), rel=1e-4)
    # and by the formula itself, with numpy's SVD: p = s / sum(s) + 1e-7
    s = np.linalg.svd(Z, compute_uv=False)
    p = s / s.sum() + 1e-7
    assert stored["singular"] == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-4)


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def small_copy(tmp_path_factory, tmp_path) -> Workspace:
    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    series = series_path(tmp_path_factory)
    with ws.write(job="test: register") as con:
        from analytics.geometry.store import add_run

        add_run(con, "tiny", [series])
    return ws


def _model_without_tokenizer(tmp_path_factory, dst: Path) -> Path:
    src = series_path(tmp_path_factory) / "checkpoint-1"
    (dst / "model").mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        (dst / "model" / f).write_bytes((src / f).read_bytes())
    return dst / "model"


def _encoder_decoder(dst: Path) -> Path:
    d = dst / "t5"
    d.mkdir(parents=True)
    (d / "config.json").write_text(
        json.dumps({"model_type": "t5", "is_encoder_decoder": True, "d_model": 32})
    )
    (d / "tokenizer.json").write_text("{}")
    return d


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty-dir", "holds no checkpoint"),
        ("no-tokenizer", "no tokenizer found"),
        ("encoder-decoder", "encoder-decoder architecture"),
        ("probe-too-large", "larger than the corpus (120 documents)"),
        ("unknown-run", "no checkpoint run named 'nope'"),
        ("bad-fit-range", "--alpha-fit-range"),
        ("bad-pooling", "pooling: expected 'last' or 'mean'"),
        ("bad-run-name", "run name"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    case, message, small_copy, tmp_path, tmp_path_factory, monkeypatch, capsys
):
    ws = small_copy
    digest = fingerprint(ws)
    args = {
        "empty-dir": ("checkpoints", "add", "x", tmp_path / "empty"),
        "no-tokenizer": (
            "checkpoints", "add", "x", _model_without_tokenizer(tmp_path_factory, tmp_path),
        ),
        "encoder-decoder": ("checkpoints", "add", "x", _encoder_decoder(tmp_path)),
        "probe-too-large": ("geometry", "tiny", "--probe-size", "121"),
        "unknown-run": ("geometry", "nope"),
        "bad-fit-range": ("geometry", "tiny", "--alpha-fit-range", "100:11"),
        "bad-pooling": ("geometry", "tiny", "--pooling", "max"),
        "bad-run-name": ("checkpoints", "add", "../x", series_path(tmp_path_factory)),
    }[case]  # fmt: skip
    (tmp_path / "empty").mkdir(exist_ok=True)
    code, out = run_main(monkeypatch, capsys, *args, "--workspace", ws.path)
    assert code == 2, out
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out
    assert fingerprint(ws) == digest


def test_architecture_without_hidden_states_exit_2_nothing_written(small_copy, monkeypatch, capsys):
    from types import SimpleNamespace

    import torch
    from transformers import AutoTokenizer

    from analytics.geometry import extract as ex_mod

    class NoHidden(torch.nn.Module):
        config = SimpleNamespace()

        def forward(self, **kwargs):
            return SimpleNamespace(hidden_states=None, last_hidden_state=torch.zeros(1))

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    monkeypatch.setattr(
        ex_mod, "load_model_and_tokenizer", lambda *a, **k: (NoHidden(), tok, False, "cpu")
    )
    digest = fingerprint(small_copy)
    code, out = run_main(
        monkeypatch, capsys, "geometry", "tiny", *PROBE, "--workspace", small_copy.path
    )
    assert code == 2 and "error: " in out and "no hidden states" in out, out
    assert fingerprint(small_copy) == digest


def test_mixed_hidden_sizes_are_allowed_with_a_note(
    tmp_path_factory, tmp_path, monkeypatch, capsys
):
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    tok = AutoTokenizer.from_pretrained(series_path(tmp_path_factory) / "checkpoint-1")
    run = tmp_path / "mixed"
    for step, width in ((1, 32), (2, 48)):
        torch.manual_seed(step)
        cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=width, n_layer=1, n_head=2)
        GPT2LMHeadModel(cfg).save_pretrained(str(run / f"checkpoint-{step}"))
    tok.save_pretrained(str(run))
    code, out = run_main(monkeypatch, capsys, "checkpoints", "add", "mixed", run, "-w", ws.path)
    assert code == 0 and "hidden sizes differ" in out, out
    code, out = run_main(
        monkeypatch, capsys, "geometry", "mixed", "--probe-size", "16", "--max-tokens", "16",
        "--no-per-source", "-w", ws.path,
    )  # fmt: skip
    assert code == 0 and "different hidden sizes [32, 48]" in out, out
    cka = (
        ws.cursor()
        .execute("SELECT linear FROM geometry_cka WHERE run = 'mixed' AND kind = 'checkpoints'")
        .fetchall()
    )
    assert len(cka) == 2 and all(0 <= c[0] <= 1 for c in cka)  # layers 0 and 1


# ---------------------------------------------------------------------- demo series
@pytest.mark.slow
def test_demo_series_trains_registers_and_computes_once(tmp_path_factory, tmp_path):
    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    args = ("demo-series", "--steps", "2", "--probe-size", "24", "--max-tokens", "16")
    r = mixscope(*args, ws=ws.path, timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout + r.stderr
    assert "trained demo-lm for 2 steps" in out and "demo series ready" in out
    series = ws.path / "checkpoints" / "demo-lm"
    assert sorted(p.name for p in series.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    cur = ws.cursor()
    runs = dict(cur.execute("SELECT run, count(*) FROM geometry_results GROUP BY 1").fetchall())
    assert runs == {"demo-lm": 3, "minilm": 1}  # 2 checkpoints + 1 pair; one model
    # the probe is held out of training: none of its documents is in the training texts
    from analytics.geometry.demo import training_texts

    probe_ids = [r[0] for r in cur.execute("SELECT doc_id FROM geometry_probe_docs").fetchall()]
    probe_texts = {
        r[0]
        for r in cur.execute(
            "SELECT text FROM documents "
            "JOIN document_text USING (doc_id) "
            "WHERE doc_id IN (SELECT doc_id FROM geometry_probe_docs)"
        ).fetchall()
    }
    assert len(probe_ids) == 24
    assert not probe_texts & set(training_texts(cur, exclude=probe_ids))
    digest = fingerprint(ws)
    again = mixscope(*args, ws=ws.path, timeout=600)
    assert again.returncode == 0, again.stderr
    out = again.stdout + again.stderr
    assert "already trained" in out and out.count("nothing new") == 2
    assert fingerprint(ws) == digest


def test_demo_queues_the_series_once(tmp_path_factory, tmp_path, monkeypatch):
    from analytics.geometry import demo
    from analytics.jobs import JobStore

    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    started = []
    monkeypatch.setattr(JobStore, "ensure_worker", lambda self: started.append(1))
    first = demo.queue_demo_series(ws)
    assert first and demo.queue_demo_series(ws) == first  # pending: not queued twice
    jobs = JobStore(ws.path).list()
    assert len(jobs) == 1 and jobs[0].args == ["demo-series"] and jobs[0].status == "queued"
    assert started  # a worker is started for it
    JobStore(ws.path).cancel(first)
    monkeypatch.setattr(demo, "demo_done", lambda cur: True)
    assert demo.queue_demo_series(ws) is None  # done: nothing queued
