"""Exporters, checked with the real consumer libraries where they are importable.

megatron-core and datasets are installed in the project venv (dev extras). ai2-olmo-core,
mosaicml-streaming and litdata pull CUDA torch or conflicting pins, so they are not project
dependencies: .ci/run installs them with ``pip install --no-deps`` (plus their light
dependencies, pinned) into a side folder, ``$MIXSCOPE_CONSUMERS`` (default ``.consumers`` at the
repository root). The ``consumer`` fixture appends that folder to ``sys.path`` for the test that
asks for it only (removing it, and the modules loaded from it, afterwards), so the main
environment is never shadowed. A missing consumer library skips its test locally and FAILS it
when ``CI=true``.
"""

from __future__ import annotations

import collections
import datetime as dt
import importlib
import json
import os
import sys
import types
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

from analytics.mixture import (
    EXPORTERS,
    ExportError,
    build_manifest,
    build_phase,
    export_manifest,
    plan_table,
    write_export,
)
from tests.conftest import ROOT

TOKENS = {"web": 6000, "books": 4000, "code": 2000}
DOCS = {"web": 30, "books": 5, "code": 20}  # mean tokens per doc: 200, 800, 100
WEIGHTS = {"web": 0.5, "books": 0.3, "code": 0.2}
# per-document basis by hand: w / mean = .0025, .000375, .002 (total .004875)
PER_DOC = {"web": 0.0025 / 0.004875, "books": 0.000375 / 0.004875, "code": 0.002 / 0.004875}


def manifest(weights=WEIGHTS, tokens=TOKENS, docs=DOCS, budget=10_000, locators=None, phases=1):
    plan = plan_table(tokens, docs, weights, budget, max_epochs=4)
    locs = locators or {g: [f"/data/{g}/tok_text_document"] for g in tokens}
    ph = [build_phase(plan, name="main", budget_tokens=budget, method="manual", locators=locs)]
    if phases == 2:
        plan2 = plan_table(tokens, docs, {"web": 0.25, "books": 0.25, "code": 0.5}, 2000)
        ph.append(
            build_phase(plan2, name="anneal", budget_tokens=2000, method="manual", locators=locs)
        )
    return build_manifest(
        phases=ph,
        tokenizer={"name": "gpt2"},
        seed=5,
        corpus_snapshot_hash="snap",
        created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        version="0",
    )


CONSUMERS = Path(os.environ.get("MIXSCOPE_CONSUMERS") or ROOT / ".consumers")


def missing(what: str, exc: BaseException) -> None:
    """Skip locally; fail in CI, where .ci/run installs every consumer library."""
    msg = f"{what} is not importable ({exc}); .ci/run installs it into {CONSUMERS}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def consumer():
    """``consumer(module)`` imports a consumer library, looking in the side folder too.

    The folder is appended to ``sys.path`` (the main environment keeps precedence) for this
    test only; afterwards it is removed together with every module loaded from it.
    """
    added = CONSUMERS.is_dir() and str(CONSUMERS) not in sys.path
    if added:
        sys.path.append(str(CONSUMERS))
        importlib.invalidate_caches()

    def load(module: str):
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            missing(module, exc)

    yield load
    if added:
        sys.path.remove(str(CONSUMERS))
        root = str(CONSUMERS) + os.sep
        for name, mod in list(sys.modules.items()):
            if (getattr(mod, "__file__", None) or "").startswith(root):
                del sys.modules[name]
        importlib.invalidate_caches()


def decimal_sum(values) -> Decimal:
    return sum(Decimal(repr(float(v))) for v in values)


def test_registry():
    assert set(EXPORTERS.names()) == {
        "megatron",
        "gpt-neox",
        "olmo-core",
        "mosaic-streaming",
        "hf-datasets",
        "litdata",
        "nanotron",
    }
    with pytest.raises(ValueError, match="unknown export format"):
        export_manifest(manifest(), "dolma")


# ------------------------------------------------------------------------- Megatron


@pytest.mark.slow
def test_megatron_blend_parsed_by_megatron_core(tmp_path, consumer):
    utils = consumer("megatron.core.datasets.utils")
    ex = export_manifest(manifest(), "megatron", seq_length=100)
    files = write_export(ex, tmp_path / "meg")
    args_text = (tmp_path / "meg" / "main.data-args").read_text()
    prefixes, weights = utils.get_blend_from_list(args_text.split())
    assert prefixes == [f"/data/{g}/tok_text_document" for g in TOKENS]
    assert weights == pytest.approx([0.5, 0.3, 0.2])
    split = json.loads((tmp_path / "meg" / "main.per-split.json").read_text())
    assert utils.get_blend_from_list(split["train"])[1] == pytest.approx([0.5, 0.3, 0.2])
    args = ex.data["main"]["args"]
    assert (
        args[args.index("--train-samples") + 1] == "100" and args[args.index("--seed") + 1] == "5"
    )
    assert len(files) == 2


# --------------------------------------------------------------------------- GPT-NeoX


def test_gpt_neox_writes_explicit_weights():
    ex = export_manifest(
        manifest(weights={"web": 1 / 3, "books": 1 / 3, "code": 1 / 3}, budget=9000), "gpt-neox"
    )
    cfg = yaml.safe_load(ex.files["main.yml"])
    assert cfg["train_data_paths"] == [f"/data/{g}/tok_text_document" for g in TOKENS]
    assert len(cfg["train_data_weights"]) == 3 and decimal_sum(cfg["train_data_weights"]) == 1
    assert cfg["weight_by_num_documents"] is False and cfg["seed"] == 5


# -------------------------------------------------------------------------- OLMo-core


def test_olmo_core_ratios_sum_to_exactly_one():
    ex = export_manifest(
        manifest(weights={"web": 1 / 3, "books": 1 / 3, "code": 1 / 3}, budget=9000), "olmo-core"
    )
    cfg = yaml.safe_load(ex.files["main.olmo-core.yaml"])
    ratios = [s["target_ratio"] for s in cfg["source_list"]["sources"]]
    assert decimal_sum(ratios) == 1
    assert ratios == [0.3333333334, 0.3333333333, 0.3333333333]  # error on the (first) largest
    assert cfg["requested_tokens"] == 9000 and cfg["seed"] == 5
    assert [s["max_repetition_ratio"] for s in cfg["source_list"]["sources"]] == [
        4.0,
        4.0,
        4.0,
    ]  # caps.max_epochs


def test_olmo_core_config_builds_with_olmo_core(tmp_path, consumer):
    consumer("olmo_core")
    from olmo_core.data.source_mixture import SourceMixtureDatasetConfig

    # A: 4096 tokens used once, B: 2048 tokens repeated twice (epochs 2.0)
    tokens, docs = {"A": 4096, "B": 2048}, {"A": 16, "B": 8}
    paths = {}
    for g, n in tokens.items():
        p = tmp_path / f"{g}.npy"
        np.arange(n, dtype=np.uint32).tofile(p)
        paths[g] = [str(p)]
    plan = plan_table(tokens, docs, {"A": 0.5, "B": 0.5}, 8192)
    ph = build_phase(plan, name="main", budget_tokens=8192, method="manual", locators=paths)
    m = build_manifest(phases=[ph], tokenizer={"name": "t"}, seed=3, corpus_snapshot_hash="s")
    ex = export_manifest(m, "olmo-core", global_batch_size=512)
    cfg = SourceMixtureDatasetConfig.from_dict(yaml.safe_load(ex.files["main.olmo-core.yaml"]))
    cfg.render_tables = False
    cfg.quiet = True
    cfg.validate()
    assert [s.max_repetition_ratio for s in cfg.source_list.sources] == [1.0, 2.0]
    out = cfg.build(npdtype=np.uint32, sequence_length=64)
    got = {s.name: sum(p.tokens for p in s.path_tokens) for s in out.sources}
    assert got == {"A": 4096, "B": 4096}


# ----------------------------------------------------------------- MosaicML streaming


def _import_streaming(consumer):
    """``import streaming`` (the ``consumer`` fixture has put the side folder on the path)."""
    try:
        import streaming  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "torchvision":
            missing("mosaicml-streaming", exc)
        # streaming/__init__ imports its vision subpackage, which needs torchvision (only a CUDA
        # build is on PyPI); Stream/StreamingDataset/MDSWriter do not use it, so stub it.
        for k in [k for k in sys.modules if k.startswith(("streaming", "torchvision"))]:
            del sys.modules[k]
        tv, ds, tr, fn = (
            types.ModuleType(n)
            for n in (
                "torchvision",
                "torchvision.datasets",
                "torchvision.transforms",
                "torchvision.transforms.functional",
            )
        )
        ds.VisionDataset = ds.CIFAR10 = type("VisionDataset", (), {})
        fn.to_tensor = lambda x: x
        tv.datasets, tv.transforms, tr.functional = ds, tr, fn
        stubs = {m.__name__: m for m in (tv, ds, tr, fn)}
        sys.modules.update(stubs)
        try:
            import streaming
        finally:  # do not leave a fake torchvision behind for other libraries (datasets probes it)
            for name in stubs:
                sys.modules.pop(name, None)
    import streaming

    return streaming


@pytest.mark.slow
def test_mosaic_streams_drive_streaming_dataset(tmp_path, consumer):
    streaming = _import_streaming(consumer)
    mean = {g: TOKENS[g] // DOCS[g] for g in TOKENS}
    locs = {g: [str(tmp_path / g)] for g in TOKENS}
    for g in TOKENS:
        with streaming.MDSWriter(out=locs[g][0], columns={"group": "str", "n_tokens": "int"}) as w:
            for _ in range(DOCS[g] * 10):
                w.write({"group": g, "n_tokens": mean[g]})
    ex = export_manifest(manifest(locators=locs), "mosaic-streaming")
    cfg = yaml.safe_load(ex.files["main.streams.yaml"])["streams"]
    assert {k: v["proportion"] for k, v in cfg.items()} == pytest.approx(PER_DOC, abs=1e-9)
    streams = [streaming.Stream(**v) for v in cfg.values()]
    assert [s.proportion for s in streams] == pytest.approx([PER_DOC[g] for g in cfg])
    n = 4000
    ds = streaming.StreamingDataset(
        streams=streams, epoch_size=n, shuffle=True, shuffle_seed=5, batch_size=1
    )
    counts = collections.Counter(x["group"] for x in ds)
    assert sum(counts.values()) == n
    for g in TOKENS:  # sample counts follow the per-document proportions
        assert counts[g] / n == pytest.approx(PER_DOC[g], abs=2 / n)
    tok = {g: counts[g] * mean[g] for g in TOKENS}  # and the token shares follow the weights
    assert {g: tok[g] / sum(tok.values()) for g in TOKENS} == pytest.approx(WEIGHTS, abs=0.01)


def test_mosaic_remote_locators_and_token_blocks():
    m = manifest(
        locators={"web": ["s3://bucket/web"], "books": ["/local/books"], "code": ["gs://b/code"]}
    )
    cfg = export_manifest(m, "mosaic-streaming", local_root="/cache").data["main"]["streams"]
    assert cfg["web"] == {
        "remote": "s3://bucket/web",
        "local": "/cache/main/web",
        "proportion": pytest.approx(PER_DOC["web"]),
    }
    assert cfg["books"]["local"] == "/local/books" and "remote" not in cfg["books"]
    blocks = export_manifest(m, "mosaic-streaming", per="token-block").data["main"]["streams"]
    assert {k: v["proportion"] for k, v in blocks.items()} == pytest.approx(WEIGHTS)


# ------------------------------------------------------------------------ HF datasets


@pytest.mark.slow
def test_hf_interleave_datasets_empirical_mix(consumer):
    datasets = consumer("datasets")
    ex = export_manifest(manifest(), "hf-datasets")
    cfg = json.loads(ex.files["main.interleave.json"])
    assert cfg["probabilities"] == pytest.approx([PER_DOC[g] for g in TOKENS], abs=1e-9)
    assert decimal_sum(cfg["probabilities"]) == 1
    mean = {g: TOKENS[g] // DOCS[g] for g in TOKENS}
    parts = [
        datasets.Dataset.from_dict(
            {"group": [d["group"]] * 3000, "n_tokens": [mean[d["group"]]] * 3000}
        )
        for d in cfg["datasets"]
    ]
    mixed = datasets.interleave_datasets(
        parts,
        probabilities=cfg["probabilities"],
        seed=cfg["seed"],
        stopping_strategy=cfg["stopping_strategy"],
    )
    n = 4000  # no dataset can be exhausted within the first 4000 examples
    head = mixed.select(range(n))
    counts = collections.Counter(head["group"])
    for g in TOKENS:  # 5 binomial standard deviations
        p = PER_DOC[g]
        assert abs(counts[g] / n - p) < 5 * np.sqrt(p * (1 - p) / n)
    tok = collections.Counter()
    for g, t in zip(head["group"], head["n_tokens"]):
        tok[g] += t
    share = {g: tok[g] / sum(tok.values()) for g in TOKENS}
    assert share == pytest.approx(
        WEIGHTS, abs=0.06
    )  # token mix follows the manifest's token weights


# ---------------------------------------------------------------------------- LitData


@pytest.mark.slow
def test_litdata_combined_streaming_dataset(tmp_path, consumer):
    litdata = consumer("litdata")
    from litdata.streaming.writer import BinaryWriter

    locs = {}
    for g in TOKENS:
        d = tmp_path / g
        d.mkdir()
        w = BinaryWriter(str(d), chunk_size=256)
        for i in range(2000):
            w[i] = {"group": g, "i": i}
        w.done()
        w.merge()
        locs[g] = [str(d)]
    cfg = export_manifest(manifest(locators=locs), "litdata").data["main"]
    assert cfg["weights"] == pytest.approx([PER_DOC[g] for g in TOKENS], abs=1e-9)
    assert cfg["iterate_over_all"] is False
    comb = litdata.CombinedStreamingDataset(
        datasets=[litdata.StreamingDataset(d["input_dir"]) for d in cfg["datasets"]],
        weights=cfg["weights"],
        seed=cfg["seed"],
        iterate_over_all=cfg["iterate_over_all"],
    )
    n, counts = 1500, collections.Counter()
    for k, item in enumerate(comb):
        counts[item["group"]] += 1
        if k + 1 == n:
            break
    assert sum(counts.values()) == n
    for g in TOKENS:
        p = PER_DOC[g]
        assert abs(counts[g] / n - p) < 5 * np.sqrt(p * (1 - p) / n)


# --------------------------------------------------------------------------- nanotron


def test_nanotron_stages():
    m = manifest(phases=2)
    with pytest.raises(ExportError, match="tokens_per_step"):
        export_manifest(m, "nanotron")
    ex = export_manifest(m, "nanotron", tokens_per_step=1000)
    stages = yaml.safe_load(ex.files["data_stages.yaml"])["data_stages"]
    assert [s["start_training_step"] for s in stages] == [1, 11]  # 1 + 10,000 / 1,000
    folders = stages[0]["data"]["dataset"]["dataset_folder"]
    assert folders == {f"/data/{g}/tok_text_document": pytest.approx(WEIGHTS[g]) for g in TOKENS}
    assert (
        stages[1]["data"]["seed"] == 5
        and decimal_sum(stages[1]["data"]["dataset"]["dataset_folder"].values()) == 1
    )
    lists = export_manifest(m, "nanotron", tokens_per_step=1000, style="lists").data["data_stages"][
        0
    ]["data"]["dataset"]
    assert lists["dataset_weights"] == pytest.approx([0.5, 0.3, 0.2])


# ------------------------------------------------------------------------------ common


def test_locator_handling_and_zero_weights(tmp_path):
    m = manifest(
        weights={"web": 0.6, "books": 0.4, "code": 0.0},
        locators={"web": ["/w/a", "/w/b"], "books": ["/b"], "code": []},
    )
    ex = export_manifest(m, "megatron")
    assert ex.data["main"]["blend"] == ["0.3", "/w/a", "0.3", "/w/b", "0.4", "/b"]
    assert any("split equally" in n for n in ex.notes) and any(
        "receiving no tokens omitted: ['code']" in n for n in ex.notes
    )
    tiny = manifest(weights={"web": 0.6, "books": 0.4, "code": 1e-30})  # a fit's leftover
    assert tiny.phases[0].groups[2].target_tokens == 0
    for fmt in ("megatron", "olmo-core", "hf-datasets"):  # never written as a 0 weight
        assert "code" not in json.dumps(export_manifest(tiny, fmt).data), fmt
    no_loc = manifest(locators={"web": [], "books": ["/b"], "code": ["/c"]})
    with pytest.raises(ExportError, match=r"phases\[0\]\.groups\[0\]\.locators"):
        export_manifest(no_loc, "gpt-neox")
    fixed = export_manifest(no_loc, "gpt-neox", locators={"web": ["/override/web"]})
    assert fixed.data["main"]["train_data_paths"][0] == "/override/web"
    with pytest.raises(ExportError, match="unknown phase"):
        export_manifest(m, "olmo-core", phase="nope")
    write_export(ex, tmp_path / "x")
    with pytest.raises(ExportError, match="already exists"):
        write_export(ex, tmp_path / "x")
