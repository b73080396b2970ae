"""`mixscope mix ...` end to end, as a user runs it (subprocesses on demo workspace copies)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from analytics.filters import DocFilter
from analytics.mixture import EXPORTERS, read_manifest, temperature_weights
from tests.conftest import mixscope

SOURCES = "licenses,austen,fortunes-en"  # three sources of very different sizes


def counts(ws, sources=SOURCES.split(",")):
    """Per-source tokens/documents computed here with plain SQL (independent of the library)."""
    where, params = DocFilter(source=tuple(sources)).where()
    rows = (
        ws.cursor()
        .execute(
            f"SELECT source, sum(n_tokens), count(*) FROM documents WHERE {where} GROUP BY 1",
            params,
        )
        .fetchall()
    )
    return {s: int(t) for s, t, _ in rows}, {s: int(n) for s, _, n in rows}


def create(ws, name, *extra, budget=400_000):
    r = mixscope(
        "mix", "create", name, "--group-by", "source", "--budget", str(budget),
        "--where-from-url", f"src={SOURCES}", *extra, ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.slow
def test_create_export_every_format_validate_reproduce(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    r = create(
        ws, "web-mix", "--strategy", "temperature", "--param", "temperature=3", "--seed", "7"
    )
    assert "saved mixture web-mix@1" in r.stderr.replace("\n", " ")
    tokens, docs = counts(ws)
    assert mixscope("mix", "list", "--json", ws=ws.path).stdout.count('"web-mix"') == 1

    out = tmp_path / "all"
    r = mixscope("mix", "export", "web-mix@1", "--format", "all", "--out", str(out), ws=ws.path)
    assert r.returncode == 0, r.stderr
    m = read_manifest(out / "manifest.yaml")
    assert m.model_dump() == read_manifest(out / "manifest.json").model_dump()
    assert m.seed == 7 and m.total_tokens == 400_000 and m.weight_basis == "tokens"
    assert m.tokenizer.name and m.tokenizer.sha256 and len(m.tokenizer.sha256) == 64
    want = temperature_weights(tokens, 3)  # weights from independently counted tokens
    ph = m.phases[0]
    assert {g.id: g.weight for g in ph.groups} == pytest.approx(dict(want), abs=1e-12)
    for g in ph.groups:
        assert g.tokens == tokens[g.id] and g.documents == docs[g.id]
        assert g.epochs == pytest.approx(g.target_tokens / tokens[g.id])
        assert g.method.name == "temperature" and g.method.params["temperature"] == 3
        assert g.selection.filter == {"src": SOURCES} and g.locators == [g.id]
    assert sum(g.target_tokens for g in ph.groups) == 400_000
    for fmt in EXPORTERS.names():  # one folder per framework, each non-empty
        assert any((out / fmt).iterdir()), fmt
    olmo = yaml.safe_load((out / "olmo-core" / "main.olmo-core.yaml").read_text())
    ratios = {s["source_name"]: s["target_ratio"] for s in olmo["source_list"]["sources"]}
    assert ratios == pytest.approx(dict(want), abs=1e-9)
    hf = json.loads((out / "hf-datasets" / "main.interleave.json").read_text())
    per_doc = {g: want[g] / (tokens[g] / docs[g]) for g in tokens}  # p_doc ~ w / mean tokens
    z = sum(per_doc.values())
    assert hf["probabilities"] == pytest.approx(
        [per_doc[g] / z for g in [d["group"] for d in hf["datasets"]]], abs=1e-9
    )

    for single in ("yaml", "json", "megatron"):
        r = mixscope(
            "mix", "export", "web-mix", "--format", single, "--out", str(tmp_path / single),
            ws=ws.path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = mixscope("mix", "validate", str(out / "manifest.yaml"), ws=ws.path)
    assert r.returncode == 0 and "valid" in r.stderr, r.stderr
    r = mixscope("mix", "reproduce", str(out / "manifest.json"), ws=ws.path)
    assert r.returncode == 0 and "reproduced" in r.stderr, r.stderr
    r = mixscope("mix", "show", "web-mix@1", "--format", "json", ws=ws.path)
    assert json.loads(r.stdout)["phases"][0]["name"] == "main"


@pytest.mark.slow
def test_reproduce_uses_the_manifests_snapshot_and_reports_the_latest(
    demo_workspace_copy, tmp_path
):
    ws = demo_workspace_copy
    create(ws, "m", "--strategy", "uniform")
    manifest = tmp_path / "m.yaml"
    assert mixscope("mix", "show", "m", "--format", "yaml", ws=ws.path).returncode == 0
    manifest.write_text(mixscope("mix", "show", "m", "--format", "yaml", ws=ws.path).stdout)
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "new-1", "text": "An added licence text."}) + "\n")
    r = mixscope("ingest", str(extra), "--source", "licenses", ws=ws.path)
    assert r.returncode == 0, r.stderr
    # time travel: the manifest's own snapshot still selects exactly what it recorded
    r = mixscope("mix", "reproduce", str(manifest), ws=ws.path)
    assert r.returncode == 0 and "unchanged" in r.stdout + r.stderr, r.stderr
    r = mixscope("mix", "reproduce", str(manifest), "--against-latest", ws=ws.path)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "group 'licenses': documents 17 -> 18" in out
    assert "austen" not in out  # only the group that changed is listed
    # materialise rebuilds the recorded selection: the later document is not in it
    r = mixscope("mix", "materialize", "m@1", "--out", str(tmp_path / "out"), ws=ws.path)
    assert r.returncode == 0, r.stderr
    samples = pd.read_parquet(tmp_path / "out" / "main" / "samples.parquet")
    assert "new-1" not in set(samples["doc_id"]) and len(samples) > 0


def test_reproduce_names_the_cli_flag_when_only_the_snapshot_changed(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    create(ws, "m", "--strategy", "uniform")
    other = tmp_path / "other.jsonl"  # a source outside the mixture: same selections
    other.write_text(json.dumps({"id": "o-1", "text": "Another source's text."}) + "\n")
    r = mixscope("ingest", str(other), "--source", "zz-outside", ws=ws.path)
    assert r.returncode == 0, r.stderr
    # a manifest without a lake snapshot (written elsewhere, or by mixscope 0.1)
    data = yaml.safe_load(mixscope("mix", "show", "m", "--format", "yaml", ws=ws.path).stdout)
    data.pop("corpus_snapshot_id", None)
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(data))
    r = mixscope("mix", "reproduce", str(old), ws=ws.path)
    assert r.returncode == 2 and "the corpus snapshot changed" in r.stderr
    assert "pass --allow-snapshot-change to accept" in r.stderr and "strict=False" not in r.stderr
    r = mixscope("mix", "reproduce", str(old), "--allow-snapshot-change", ws=ws.path)
    assert r.returncode == 0 and "changed (accepted)" in " ".join(r.stderr.split()), r.stderr


@pytest.mark.slow
def test_materialize_is_deterministic_and_atomic(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    create(ws, "mat", "--strategy", "temperature", "--param", "temperature=2", budget=300_000)
    runs = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        out = tmp_path / name
        r = mixscope(
            "mix", "materialize", "mat@1", "--out", str(out), "--shard-rows", "500",
            "--seed", seed, ws=ws.path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "materialised mat@1" in r.stderr.replace("\n", " ")
        runs.append(sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()))
    a, b, c = (tmp_path / n for n in "abc")
    assert runs[0] == runs[1] and len(runs[0]) > 3
    for rel in runs[0]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    shards = sorted((a / "main").glob("part-*.jsonl"))
    assert (a / "main" / "part-00000.jsonl").read_bytes() != (c / "main" / "part-00000.jsonl")
    rows = [json.loads(line) for f in shards for line in f.read_text().splitlines()]
    assert all(len(f.read_text().splitlines()) <= 500 for f in shards)
    m = read_manifest_from_ws(ws, "mat")
    for g in m.phases[0].groups:  # realised tokens reach the target, overshoot < one document
        got = sum(r["n_tokens"] for r in rows if r["group"] == g.id)
        assert g.target_tokens <= got < g.target_tokens + max_doc_tokens(ws, g.id)
        assert math.floor(g.epochs) <= max(r["repeat"] for r in rows if r["group"] == g.id) + 1
    # the default engine (local) and in-process write the same bytes; a bad engine: one line
    r = mixscope(
        "mix", "materialize", "mat@1", "--out", str(tmp_path / "inproc"), "--shard-rows", "500",
        "--seed", "5", "--engine", "in-process", ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for rel in runs[0]:
        assert (a / rel).read_bytes() == (tmp_path / "inproc" / rel).read_bytes(), rel
    r = mixscope("mix", "materialize", "mat", "--out", str(tmp_path / "y"), "--engine", "spark",
                 ws=ws.path)  # fmt: skip
    assert r.returncode == 2 and "expected one of in-process, local, ray" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "y").exists()
    # an existing output is not touched without --overwrite; a bad format writes nothing
    r = mixscope("mix", "materialize", "mat", "--out", str(a), ws=ws.path)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = mixscope("mix", "materialize", "mat", "--out", str(tmp_path / "x"), "--format", "csv",
                 ws=ws.path)  # fmt: skip
    assert r.returncode == 2 and not (tmp_path / "x").exists()
    # a manifest whose SQL reads a file is refused on the locked snapshot, before any write
    evil = json.loads(mixscope("mix", "show", "mat", "--format", "json", ws=ws.path).stdout)
    evil["phases"][0]["groups"][0]["selection"].update(
        sql="SELECT 'x' AS doc_id, 1 AS n_tokens FROM read_text('/etc/hostname')", params=[]
    )
    (tmp_path / "evil.json").write_text(json.dumps(evil))
    r = mixscope("mix", "materialize", str(tmp_path / "evil.json"), "--out",
                 str(tmp_path / "evil"), ws=ws.path)  # fmt: skip
    assert r.returncode == 2 and "file system operations are disabled" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "evil").exists()


def read_manifest_from_ws(ws, name):
    from analytics.mixture import load_mixture

    return load_mixture(ws.cursor(), name)


def max_doc_tokens(ws, source):
    return (
        ws.cursor()
        .execute("SELECT max(n_tokens) FROM documents WHERE source = ?", [source])
        .fetchall()[0][0]
    )


BREAKAGES = {
    "weights sum to": lambda d: d["phases"][0]["groups"][0].update(weight=0.9),
    "total_tokens: Input should be less than": lambda d: d.update(total_tokens=10**20),
    "seed: Field required": lambda d: d.pop("seed"),
    "epochs: Input should be greater than or equal to 0": lambda d: d["phases"][0]["groups"][
        0
    ].update(epochs=-1),
    "unknown group(s) in workspace": lambda d: d["phases"][0]["groups"][0]["selection"][
        "params"
    ].__setitem__(-1, "no-such-source"),
}


@pytest.mark.slow
def test_bad_manifests_are_one_clear_line_and_write_nothing(demo_workspace, tmp_path):
    from analytics.mixture import builder as mb

    ws = demo_workspace
    tokens, _ = counts(ws, ["licenses", "austen"])
    spec = mb.PhaseSpec("main", 100_000, mb.token_strategy_weights("natural", tokens))
    m = mb.create_manifest(
        ws.cursor(), DocFilter(source=("licenses", "austen")), group_by="source", phases=[spec]
    )
    good = tmp_path / "good.json"
    good.write_text(m.model_dump_json())
    assert mixscope("mix", "validate", str(good), ws=ws.path).returncode == 0
    for i, (message, breakage) in enumerate(BREAKAGES.items()):
        data = json.loads(good.read_text())
        breakage(data)
        bad = tmp_path / f"bad{i}.json"
        bad.write_text(json.dumps(data))
        r = mixscope("mix", "validate", str(bad), ws=ws.path)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, r.stderr
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], r.stderr
    out = tmp_path / "export"  # a manifest failing its checks is never exported
    r = mixscope("mix", "export", str(tmp_path / "bad0.json"), "--format", "all", "--out",
                 str(out), ws=ws.path)  # fmt: skip
    assert r.returncode == 2 and "weights sum to" in r.stderr and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["good.json"] + [f"bad{i}.json" for i in range(len(BREAKAGES))]
    )


def test_create_rejects_bad_options_with_one_line(demo_workspace):
    for args, message in [
        (["--group-by", "nope"], "unknown column 'nope'"),
        (["--group-by", "source", "--strategy", "temperature", "--param", "T=2"], "takes"),
        (["--group-by", "source", "--strategy", "bogus"], "unknown strategy"),
        (["--group-by", "source", "--param", "noequals"], "KEY=VALUE"),
    ]:
        r = mixscope("mix", "create", "x", "--budget", "1000", *args, ws=demo_workspace.path)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert '"x"' not in mixscope("mix", "list", "--json", ws=demo_workspace.path).stdout


def test_help_lists_mix_commands():
    out = mixscope("mix", "--help").stdout
    for name in ("list", "show", "create", "export", "materialize", "validate", "reproduce"):
        assert name in out


@pytest.mark.slow
def test_create_from_target_texts_and_from_proxy_runs(demo_workspace_copy, tmp_path):
    import numpy as np
    import pandas as pd

    ws = demo_workspace_copy
    target = tmp_path / "target.txt"
    target.write_text(
        "It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife.\n\nMrs. Bennet was a woman of mean understanding, "
        "little information, and uncertain temper; her sister Elizabeth was at Netherfield.\n"
    )
    create(ws, "tm", "--strategy", "target_matching", "--param", f"target={target}",
           "--param", "per_group=30", "--out", str(tmp_path / "tm.yaml"))  # fmt: skip
    m = read_manifest(tmp_path / "tm.yaml")
    w = {g.id: g.weight for g in m.phases[0].groups}
    method = m.phases[0].groups[0].method
    assert method.name == "target_matching" and max(w, key=w.get) == "austen"
    assert method.diagnostics["kl_after"] < method.diagnostics["kl_before"]
    assert method.params["group_sample"]["per_group"] == 30

    rng = np.random.default_rng(1)
    runs = rng.dirichlet([1, 1, 1], size=20)
    groups = SOURCES.split(",")
    frame = pd.DataFrame(runs, columns=groups)
    frame["val_loss"] = 3.0 - 0.6 * frame["austen"] + rng.normal(0, 0.01, 20)
    csv = tmp_path / "runs.csv"
    frame.to_csv(csv, index=False)
    create(ws, "rm", "--strategy", "regmix", "--param", f"runs={csv}",
           "--param", "n_candidates=5000", "--out", str(tmp_path / "rm.json"))  # fmt: skip
    m = read_manifest(tmp_path / "rm.json")
    w = {g.id: g.weight for g in m.phases[0].groups}
    d = m.phases[0].groups[0].method.diagnostics
    assert max(w, key=w.get) == "austen" and d["n_runs"] == 20 and d["spearman"] > 0.5
    missing = f"runs={tmp_path / 'nope.csv'}"
    r = mixscope("mix", "create", "bad", "--group-by", "source", "--budget", "1000",
                 "--strategy", "regmix", "--param", missing, ws=ws.path)  # fmt: skip
    assert r.returncode == 2 and "nope.csv: no such file" in r.stderr
