"""Checkpoint discovery, step parsing, fingerprints, probe selection."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analytics.geometry import (
    Checkpoint,
    CheckpointError,
    ProbeError,
    TokenizerMissingError,
    checkpoint_fingerprint,
    discover_checkpoints,
    parse_step,
    parse_tokens_b,
    probe_hash,
    require_tokenizer,
    select_probe,
)


def _ckpt(path: Path, *, tokenizer: bool = False, weights: bytes = b"w") -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "gpt2"}')
    (path / "model.safetensors").write_bytes(weights)
    if tokenizer:
        (path / "tokenizer.json").write_text("{}")
    return path


@pytest.mark.parametrize(
    ("name", "step", "tokens"),
    [
        ("checkpoint-500", 500, None),
        ("step1000", 1000, None),
        ("stage1-step928646-tokens3896B", 928646, 3896.0),
        ("stage2-ingredient1-step11931-tokens50B", 11931, 50.0),
        ("global_step_20", 20, None),
        ("iter_0004000", 4000, None),
        ("final", None, None),
    ],
)
def test_parse_step_and_tokens(name, step, tokens):
    assert parse_step(name) == step
    assert parse_tokens_b(name) == tokens


def test_run_dir_of_trainer_checkpoints_sorted_by_step_with_root_tokenizer(tmp_path):
    run = tmp_path / "run"
    for s in (10, 2, 300):
        _ckpt(run / f"checkpoint-{s}")
    (run / "tokenizer.json").write_text("{}")
    (run / "logs").mkdir()  # unrelated directory is ignored
    cks = discover_checkpoints(run)
    assert [c.step for c in cks] == [2, 10, 300]
    assert [c.name for c in cks] == ["checkpoint-2", "checkpoint-10", "checkpoint-300"]
    assert all(c.tokenizer_path == str(run) for c in cks)
    assert all(c.source == "dir" and c.revision is None for c in cks)


def test_olmo_and_pythia_style_names(tmp_path):
    run = tmp_path / "olmo"
    _ckpt(run / "stage1-step2000-tokens9B", tokenizer=True)
    _ckpt(run / "stage1-step1000-tokens5B", tokenizer=True)
    cks = discover_checkpoints(run)
    assert [(c.step, c.tokens_b) for c in cks] == [(1000, 5.0), (2000, 9.0)]
    assert cks[0].tokenizer_path == str(run / "stage1-step1000-tokens5B")
    pythia = tmp_path / "pythia"
    _ckpt(pythia / "step143000", tokenizer=True)
    assert discover_checkpoints(pythia)[0].step == 143000


def test_single_model_dir_step_from_trainer_state_and_list_of_paths(tmp_path):
    final = _ckpt(tmp_path / "final", tokenizer=True)
    (final / "trainer_state.json").write_text(json.dumps({"global_step": 77}))
    other = _ckpt(tmp_path / "checkpoint-5", tokenizer=True)
    cks = discover_checkpoints([final, str(other)])
    assert [(c.name, c.step) for c in cks] == [("checkpoint-5", 5), ("final", 77)]


def test_hub_specs_are_parsed_without_network():
    cks = discover_checkpoints("EleutherAI/pythia-70m@step2000,step1000")
    assert [c.name for c in cks] == [
        "EleutherAI/pythia-70m@step1000",
        "EleutherAI/pythia-70m@step2000",
    ]
    assert all(c.is_hub and c.path == "EleutherAI/pythia-70m" for c in cks)
    assert cks[0].load_kwargs() == {"revision": "step1000"}
    assert checkpoint_fingerprint(cks[0]) == "hub:EleutherAI/pythia-70m@step1000"
    assert discover_checkpoints("allenai/OLMo-2-0425-1B")[0].revision == "main"
    assert discover_checkpoints("gpt2@main")[0].path == "gpt2"
    with pytest.raises(CheckpointError, match="hub id"):
        discover_checkpoints("not a/valid id@x")


def test_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        discover_checkpoints(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        discover_checkpoints(empty)
    bad = tmp_path / "bad"
    (bad / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"checkpoint-3.*no config.json"):
        discover_checkpoints(bad)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(CheckpointError, match="directory"):
        discover_checkpoints(f)
    lonely = _ckpt(tmp_path / "deep" / "nested" / "m")
    (ck,) = discover_checkpoints(lonely)
    with pytest.raises(TokenizerMissingError, match="no tokenizer"):
        require_tokenizer(ck)
    assert issubclass(TokenizerMissingError, ValueError)


def test_fingerprint_changes_with_weights_not_with_location(tmp_path):
    a = Checkpoint(name="a", path=str(_ckpt(tmp_path / "a", weights=b"abc")))
    b = Checkpoint(name="b", path=str(_ckpt(tmp_path / "b", weights=b"abc")))
    c = Checkpoint(name="c", path=str(_ckpt(tmp_path / "c", weights=b"abd")))
    assert checkpoint_fingerprint(a) == checkpoint_fingerprint(b)
    assert checkpoint_fingerprint(a) != checkpoint_fingerprint(c)


def _docs() -> pd.DataFrame:
    rows = [
        (f"{s}-{i}", s, f"text {s} {i}")
        for s, n in (("web", 50), ("code", 30), ("wiki", 3))
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=["doc_id", "source", "text"])


def test_select_probe_is_stratified_deterministic_and_redistributes_shortfall():
    docs = _docs()
    p1 = select_probe(docs, size=21, stratify_by="source", seed=1)
    p2 = select_probe(docs.sample(frac=1.0, random_state=0), size=21, stratify_by="source", seed=1)
    assert p1.equals(p2)  # input order does not matter
    counts = p1["group"].value_counts().to_dict()
    # 21 / 3 = 7 each, wiki only has 3: the missing 4 go to the others (2 each)
    assert counts == {"web": 9, "code": 9, "wiki": 3}
    assert p1["doc_id"].is_unique
    assert set(p1.columns) == {"doc_id", "group", "text"}
    assert not p1.equals(select_probe(docs, size=21, seed=2))
    assert select_probe(docs, size=5, stratify_by=None)["group"].eq("all").all()


def test_select_probe_errors_and_probe_hash():
    docs = _docs()
    with pytest.raises(ProbeError, match="larger than the corpus"):
        select_probe(docs, size=84)
    with pytest.raises(ProbeError, match="missing column 'lang'"):
        select_probe(docs, size=3, stratify_by="lang")
    assert issubclass(ProbeError, ValueError)
    h = probe_hash(["a", "b"], ["x", "y"])
    assert h == probe_hash(["a", "b"], ["x", "y"])
    assert h != probe_hash(["b", "a"], ["x", "y"]) and h != probe_hash(["a", "b"])


def test_cache_key_is_canonical_and_sensitive():
    from analytics.geometry import cache_key

    k1 = cache_key("sha256:abc", "sha256:p", {"eps": 1e-7, "fit": [11, 100]})
    k2 = cache_key("sha256:abc", "sha256:p", {"fit": [11, 100], "eps": 1e-7})
    assert k1 == k2 and k1.startswith("sha256:") and len(k1) == 7 + 64
    assert k1 != cache_key("sha256:abc", "sha256:p", {"eps": 1e-5, "fit": [11, 100]})
    assert k1 != cache_key("sha256:abd", "sha256:p", {"eps": 1e-7, "fit": [11, 100]})
    assert k1 != cache_key("sha256:abc", "sha256:q", {"eps": 1e-7, "fit": [11, 100]})


def test_directory_cache_round_trip(tmp_path):
    from analytics.geometry import DirectoryCache

    cache = DirectoryCache(tmp_path / "cache")
    assert cache.get("k") is None
    frames = {
        "metrics": pd.DataFrame({"metric": ["rankme"], "value": [3.5]}),
        "loss": pd.DataFrame({"x": [1]}),
    }
    cache.put("k", frames)
    got = cache.get("k")
    assert set(got) == {"metrics", "loss"}
    pd.testing.assert_frame_equal(got["metrics"], frames["metrics"])
    assert cache.get("other") is None
