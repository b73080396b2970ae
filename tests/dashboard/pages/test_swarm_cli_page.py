"""Proxy swarms from the CLI (`mix swarm`, `swarm-import`, `swarm-fit`, `validate-proxy`) and
from the Mixtures page (start a swarm job; fit and propose on a click)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import JobStore
from analytics.mixture import load_mixture
from tests.conftest import mixscope
from tests.dashboard.conftest import APP

GROUPS = ["licenses", "austen", "fortunes-en"]
T = np.array([0.2, 0.5, 0.3])


def synthetic_runs(d: Path, n: int = 24) -> None:
    """An Olmix-format swarm whose objective is a closed form: sum (w - T)^2 + 1."""
    w = np.random.default_rng(0).dirichlet(np.ones(3), size=n)
    ids = [f"run-{i}" for i in range(n)]
    d.mkdir(parents=True, exist_ok=True)
    r = pd.DataFrame(w, columns=GROUPS)
    r.insert(0, "run_id", ids)
    r.to_csv(d / "ratios.csv", index=False)
    pd.DataFrame({"run_id": ids, "bpb": ((w - T) ** 2).sum(axis=1) + 1.0}).to_csv(
        d / "metrics.csv", index=False
    )


def tokens_by_sql(ws) -> dict[str, int]:
    rows = (
        ws.cursor()
        .execute(
            "SELECT source, sum(n_tokens) FROM documents WHERE source IN (?, ?, ?) GROUP BY 1",
            GROUPS,
        )
        .fetchall()
    )
    return {s: int(t) for s, t in rows}


def test_import_fit_under_constraints_and_refusals(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    synthetic_runs(tmp_path / "runs")
    budget = 300_000
    r = mixscope(
        "mix",
        "swarm-import",
        str(tmp_path / "runs"),
        "--name",
        "ext",
        "--group-by",
        "source",
        "--budget",
        str(budget),
        ws=ws.path,
    )
    assert r.returncode == 0, r.stderr
    assert "imported swarm ext: 24 runs over 3 groups" in r.stderr.replace("\n", " ")
    listed = json.loads(mixscope("mix", "swarm-list", "--json", ws=ws.path).stdout)
    assert [(s["name"], s["runs"]) for s in listed] == [("ext", 24)]

    tok = tokens_by_sql(ws)
    r = mixscope(
        "mix",
        "swarm-fit",
        "ext",
        "--max-epochs",
        "1",
        "--kl-max",
        "0.5",
        "--fix",
        "austen=0.4",
        ws=ws.path,
    )
    assert r.returncode == 0, r.stderr
    assert "saved the proposal as mixture ext@1" in r.stderr.replace("\n", " ")
    m = load_mixture(ws.cursor(), "ext", 1)
    w = {g.id: g.weight for g in m.phases[0].groups}
    assert w["austen"] == pytest.approx(0.4, abs=1e-6)
    for g in GROUPS:  # max 1 epoch, from token counts computed here
        assert w[g] * budget <= tok[g] * 1.0 + 1e-3 * budget
    nat = np.array([tok[g] for g in GROUPS], dtype=float)
    nat /= nat.sum()
    x = np.array([w[g] for g in GROUPS])
    assert float(np.sum(x[x > 0] * np.log(x[x > 0] / nat[x > 0]))) <= 0.5 + 1e-4
    diag = m.phases[0].groups[0].method.diagnostics
    assert set(diag["fit"]) == {"lightgbm", "mixing_law", "loglinear"}
    assert {c["mixture"] for c in diag["comparison"]} >= {
        "proposal",
        "natural",
        "uniform",
        "temperature",
    }

    # refusals: one line, exit 2, nothing written
    r = mixscope("mix", "validate-proxy", "ext@1", ws=ws.path)
    assert r.returncode == 2 and "not trained here" in r.stderr
    r = mixscope("mix", "swarm-fit", "ext", "--max-epochs", "0.01", ws=ws.path)
    assert r.returncode == 2 and "max_epochs" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad"
    synthetic_runs(bad)
    pd.DataFrame({"run_id": ["run-0"], "nosuch": [0.5], "austen": [0.5]}).to_csv(
        bad / "ratios.csv", index=False
    )
    r = mixscope(
        "mix",
        "swarm-import",
        str(bad),
        "--name",
        "bad",
        "--group-by",
        "source",
        "--budget",
        "100",
        ws=ws.path,
    )
    assert r.returncode == 2 and "'nosuch'" in r.stderr and "not groups" in r.stderr
    r = mixscope("mix", "swarm", "x", "--eval", "no-such-source", "--steps", "1", ws=ws.path)
    assert r.returncode == 2 and "unknown group" in r.stderr


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_swarm_command_end_to_end_with_olmix_out(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    out = tmp_path / "olmix"
    tiny = [
        "--steps",
        "3",
        "--n-layer",
        "1",
        "--n-embd",
        "16",
        "--n-head",
        "1",
        "--vocab-size",
        "300",
        "--block-size",
        "16",
        "--batch-size",
        "2",
        "--heldout-per-group",
        "1",
        "--eval-chars",
        "200",
    ]
    r = mixscope(
        "mix",
        "swarm",
        "cli",
        "--proxies",
        "4",
        "--eval",
        "python-doc",
        "--out",
        str(out),
        *tiny,
        ws=ws.path,
    )
    assert r.returncode == 0, r.stderr
    err = r.stderr.replace("\n", " ")
    assert "RegMix's authors" in err and "saved the proposal as mixture cli@1" in err
    assert "proxies: 4/4" in err  # progress per proxy
    # the job's log says its options (describe of SwarmOptions), defaults named where they differ
    assert "options: group_by='source', proxies=4 (default 16), steps=3 (default 200)" in err
    ratios = pd.read_csv(out / "ratios.csv")
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(ratios) == len(metrics) == 4 and list(ratios["run_id"]) == list(metrics["run_id"])
    groups = [c for c in ratios.columns if c not in ("run_id", "name")]
    assert np.allclose(ratios[groups].sum(axis=1), 1.0)
    assert "bpb:python-doc" in metrics.columns and len(metrics.columns) == len(groups) + 2


def test_demo_swarm_is_queued_once(demo_workspace_copy):
    from analytics.mixture.swarm_demo import DEMO_SWARM_ARGS, queue_demo_swarm

    ws = demo_workspace_copy
    first = queue_demo_swarm(ws, start_worker=False)
    assert first and queue_demo_swarm(ws, start_worker=False) == first
    job = JobStore(ws.path).get(first)
    assert job.args == DEMO_SWARM_ARGS and job.status == "queued"


def frame(at, *cols) -> pd.DataFrame:
    hits = [d.value for d in at.dataframe if set(cols) <= set(d.value.columns)]
    assert len(hits) == 1, [list(d.value.columns) for d in at.dataframe]
    return hits[0]


def test_mixtures_page_fits_a_swarm_and_starts_one(demo_workspace_copy, tmp_path, monkeypatch):
    ws = demo_workspace_copy
    synthetic_runs(tmp_path / "runs")
    r = mixscope(
        "mix",
        "swarm-import",
        str(tmp_path / "runs"),
        "--name",
        "ext",
        "--group-by",
        "source",
        "--budget",
        "2000000",
        ws=ws.path,
    )
    assert r.returncode == 0, r.stderr
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    monkeypatch.setattr(JobStore, "ensure_worker", lambda self, *a, **k: None)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/mixtures.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="mx_sw_pick").value == "ext"
    # the widgets' help is the options' help (the CLI's --help reads the same)
    from analytics.mixture.swarm import SwarmOptions
    from analytics.mixture.swarm_fit import FitOptions
    from analytics.params import help_for

    assert at.number_input(key="mx_sw_proxies").help == help_for(SwarmOptions, "proxies")
    assert at.selectbox(key="mx_sw_engine").help == help_for(SwarmOptions, "engine")
    assert at.selectbox(key="mx_sw_reg").help == help_for(FitOptions, "regressor")
    runs = frame(at, "run", "objective")
    assert len(runs) == 24 and runs["objective"].is_monotonic_increasing  # best run first
    at.button(key="mx_sw_fit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    comp = frame(at, "mixture", "spread")
    assert list(comp["mixture"])[:4] == ["proposal", "natural", "uniform", "temperature"]
    assert np.all(comp["spread"] >= 0)
    scores = frame(at, "regressor", "spearman")
    assert set(scores["regressor"]) == {"lightgbm", "mixing_law", "loglinear"}
    # the closed-form optimum is T; the proposal is predicted no worse than every baseline
    prop = comp.set_index("mixture")["chosen"]
    assert prop["proposal"] <= prop[["natural", "uniform", "temperature"]].min() + 1e-9

    at.text_input(key="mx_sw_name").input("pagesw")
    at.text_input(key="mx_sw_eval").input("python-doc")
    at.button(key="mx_sw_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    jobs = [j for j in JobStore(ws.path).list() if j.args[:3] == ["mix", "swarm", "pagesw"]]
    assert len(jobs) == 1 and "--eval" in jobs[0].args and "python-doc" in jobs[0].args
    assert jobs[0].args[jobs[0].args.index("--engine") + 1] == "local"

    # the engine choice queues the same CLI job with --engine ray (and the address)
    at.text_input(key="mx_sw_name").input("raysw")
    at.selectbox(key="mx_sw_engine").set_value("ray").run()
    at.text_input(key="mx_sw_ray").input("127.0.0.1:6379")
    at.button(key="mx_sw_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    jobs = [j for j in JobStore(ws.path).list() if j.args[:3] == ["mix", "swarm", "raysw"]]
    assert len(jobs) == 1
    a = jobs[0].args
    assert a[a.index("--engine") + 1] == "ray" and a[a.index("--ray-address") + 1] == (
        "127.0.0.1:6379"
    )
