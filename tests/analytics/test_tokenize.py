"""Token counts in named tokenizers through the shard engine.

The exact pre-token cache is checked against each tokenizer's own full encoding on real
text (the demo corpus: six languages, code, web and encyclopedic text), and the engine's
results against direct counts, across worker counts, a SIGKILL and resume, and Ray.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from analytics.engine import EngineError, done_shards, plan_shards
from analytics.tokenize import TokenizeError, TokenizeTask, list_tokenizers, tokenize
from analytics.tokenizer import TokenCounter, TokenizerLoadError
from analytics.workspace import Workspace
from tests.analytics.conftest import stored_counts
from tests.conftest import DEMO, ROOT, fingerprint

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
#: texts where pre-tokenizers disagree easily: contractions, unicode spaces and digits,
#: combining marks, emoji, CRLF, special tokens typed into the text, tabs and runs of spaces
TRICKY = [
    "I'm sure they'll've done it; it's 'quoted' — isn't it?",
    "tab\there  and   runs\u00a0of\u2003spaces\u3000end \n\n  \r\n\r\nx",
    "digits 1234567 ١٢٣ ²³ Ⅻ 3.14159 and 0x1F",
    "combining e\u0301 a\u0308 and emoji 👩‍👩‍👧 🇫🇷 ok",
    "a literal <|endoftext|> and <|im_start|>user in the middle",
    "[CLS] bert [SEP] specials [MASK] typed",
    "中文字符和日本語のテキスト、한국어 텍스트",
    "def f(x):\n    return x**2  # comment\n\n\n",
    "",
    " ",
    "   leading spaces",
]


@pytest.fixture(scope="module")
def demo_texts() -> list[str]:
    """A stratified sample of the demo corpus (every source and language) + tricky texts."""
    t = pq.read_table(DEMO, columns=["text", "source", "lang"])
    keys = pc.binary_join_element_wise(t["source"], t["lang"], "/").to_pylist()
    seen: dict[str, int] = {}
    texts = []
    for text, k in zip(t["text"].to_pylist(), keys, strict=True):
        if seen.get(k, 0) < 60:
            seen[k] = seen.get(k, 0) + 1
            texts.append(text)
    return texts + TRICKY


def _trained(pre_tokenizer, tmp_path: Path, texts: list[str], *, normalizer=None) -> Path:
    """A small BPE tokenizer trained here on `texts` with `pre_tokenizer`, saved as
    <dir>/tokenizer.json (with two special tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizer
    if normalizer is not None:
        tok.normalizer = normalizer
    byte_level = "ByteLevel" in json.dumps(json.loads(tok.to_str())["pre_tokenizer"])
    if byte_level:
        tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<unk>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if byte_level else [],
        show_progress=False,
    )
    tok.train_from_iterator(texts[:300], trainer=trainer)
    tmp_path.mkdir(parents=True, exist_ok=True)
    tok.save(str(tmp_path / "tokenizer.json"))
    return tmp_path


def _assert_exact(counter: TokenCounter, texts: list[str]) -> None:
    assert counter.cached, counter.cache_reason
    got = counter.count(texts)
    ref = counter.count_full(texts)
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, [(texts[i][:60], got[i], ref[i]) for i in bad[:5]]
    # a second pass runs on a warm cache: still exact
    np.testing.assert_array_equal(counter.count(texts), ref)


# ------------------------------------------------------------------ the exact cache
def test_smollm2_gguf_cache_equals_full_encoding(smol, demo_texts):
    assert smol.kind == "gguf" and len(smol.sha256) == 64
    _assert_exact(smol, demo_texts)
    # independent of mixscope: transformers' own tokenizer of the GGUF, no special tokens
    from transformers import AutoTokenizer

    path = Path(smol.source)
    hf = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    sample = demo_texts[::25] + TRICKY
    ref = [len(hf(t, add_special_tokens=False)["input_ids"]) for t in sample]
    assert smol.count(sample).tolist() == ref
    # a special token typed into a text is one token (the text falls back to full encoding)
    plain, special = smol.count(["a b", "a <|endoftext|> b"]).tolist()
    assert special == plain + 2  # " " before it stays a token of its own, then the special


def test_wordpiece_bert_cache_equals_full_encoding(demo_texts):
    _assert_exact(TokenCounter(MINILM), demo_texts)


@pytest.mark.parametrize(
    "kind",
    ["llama3_split_bytelevel", "digits_bytelevel_prefix", "whitespace", "whitespace_split_nfkc"],
)
def test_trained_pretokenizers_cache_equals_full_encoding(kind, tmp_path, demo_texts):
    from tokenizers import Regex, normalizers, pre_tokenizers

    llama3 = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
        r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    normalizer = None
    if kind == "llama3_split_bytelevel":
        pre = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(llama3), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])  # fmt: skip
    elif kind == "digits_bytelevel_prefix":
        pre = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
        ])  # fmt: skip
    elif kind == "whitespace":
        pre = pre_tokenizers.Whitespace()
    else:
        pre = pre_tokenizers.WhitespaceSplit()
        normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    d = _trained(pre, tmp_path / kind, demo_texts, normalizer=normalizer)
    _assert_exact(TokenCounter(str(d)), demo_texts)


def test_unsupported_pretokenizer_falls_back_to_full_encoding(tmp_path, demo_texts):
    from tokenizers import pre_tokenizers

    d = _trained(pre_tokenizers.Metaspace(), tmp_path / "meta", demo_texts)
    counter = TokenCounter(str(d))
    assert not counter.cached and "Metaspace" in counter.cache_reason
    np.testing.assert_array_equal(
        counter.count(demo_texts[:50]), counter.count_full(demo_texts[:50])
    )


@pytest.mark.parametrize("what", ["missing", "empty_dir", "not_json", "bad_gguf"])
def test_not_a_tokenizer_is_a_clear_error(what, tmp_path):
    if what == "missing":
        src = tmp_path / "nope" / "tokenizer.json"
    elif what == "empty_dir":
        src = tmp_path
    elif what == "not_json":
        src = tmp_path / "tokenizer.json"
        src.write_text("this is not json")
    else:
        src = tmp_path / "model.gguf"
        src.write_bytes(b"GGUF not really")
    with pytest.raises(TokenizerLoadError) as err:
        TokenCounter(str(src))
    assert "\n" not in str(err.value) and (
        "tokenizer" in str(err.value) or "GGUF" in str(err.value)
    )


# ------------------------------------------------------------------ the engine
def _direct(ws: Workspace, counter: TokenCounter) -> dict[str, int]:
    rows = (
        ws.cursor()
        .execute("SELECT d.doc_id, x.text FROM documents d JOIN document_text x USING (doc_id)")
        .fetchall()
    )
    counts = counter.count_full([r[1] for r in rows])
    return {r[0]: int(c) for r, c in zip(rows, counts, strict=True)}


def test_local_engine_counts_every_document_once_per_shard(small_ws, smol):
    ref = _direct(small_ws, smol)
    rep = tokenize(small_ws, smol.source, name="smol", counter=smol, workers=2, shard_size=25)
    assert (rep.shards, rep.docs, rep.skipped_docs) == (4, 90, 0)
    assert stored_counts(small_ws, "smol") == ref
    cur = small_ws.cursor()
    shards = cur.execute(
        "SELECT shard, n_docs, engine FROM engine_shards WHERE job_key = 'tokenize:smol' "
        "ORDER BY shard"
    ).fetchall()
    assert shards == [(0, 25, "local"), (1, 25, "local"), (2, 25, "local"), (3, 15, "local")]
    # one worker gives the same counts under another name; a rerun has nothing to do
    tokenize(small_ws, smol.source, name="smol1", counter=smol, workers=1, shard_size=40)
    assert stored_counts(small_ws, "smol1") == ref
    again = tokenize(small_ws, smol.source, name="smol", counter=smol, shard_size=25)
    assert (again.shards, again.docs, again.skipped_docs) == (0, 0, 90)
    toks = {t["name"]: t for t in list_tokenizers(cur)}
    assert toks["smol"]["tokens"] == sum(ref.values()) and toks["smol"]["documents"] == 90
    assert toks["smol"]["sha256"] == smol.sha256 and toks["smol"]["kind"] == "gguf"
    assert toks["ingest"]["source"] == MINILM


def test_same_name_other_tokenizer_is_refused_before_writing(small_ws, smol):
    tokenize(small_ws, smol.source, name="t", counter=smol, shard_size=50, workers=1)
    before = fingerprint(small_ws)
    with pytest.raises(TokenizeError, match="another tokenizer"):
        tokenize(small_ws, MINILM, name="t")
    assert fingerprint(small_ws) == before


KILL_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    from analytics.tokenize import tokenize
    from analytics.workspace import Workspace

    def die(shards, docs):
        if shards == 2:
            kids = [p.pid for p in multiprocessing.active_children()]
            print(" ".join(map(str, kids)), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    tokenize(Workspace(sys.argv[1]), sys.argv[2], name="mini", workers=1, shard_size=20,
             on_commit=die)
    """
)


def _gone(pid: int, timeout: float = 30.0) -> bool:
    import os
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_killed_job_resumes_at_the_next_unfinished_shard(small_ws, tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:  # files, not pipes: nothing of the killed job can hold them
        proc = subprocess.run(
            [sys.executable, "-c", KILL_SCRIPT, str(small_ws.path), MINILM],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, timeout=300,
        )  # fmt: skip
    assert proc.returncode == -9, out.read_text()  # killed by SIGKILL after its second shard
    kids = [int(p) for p in out.read_text().split()[:8] if p.isdigit()]
    assert kids and all(_gone(p) for p in kids), "a pool worker outlived its killed driver"
    ws = Workspace(small_ws.path)
    # killed once its second shard was committed (a commit may carry the next one too)
    n_done = done_shards(ws.cursor(), "tokenize:mini")
    assert 2 <= n_done <= 3 and len(stored_counts(ws, "mini")) == 20 * n_done
    counter = TokenCounter(MINILM)
    rep = tokenize(ws, MINILM, name="mini", counter=counter, workers=1, shard_size=20)
    left = 90 - 20 * n_done
    assert (rep.skipped_docs, rep.docs, rep.shards) == (20 * n_done, left, -(-left // 20))
    assert stored_counts(ws, "mini") == _direct(ws, counter)
    assert done_shards(ws.cursor(), "tokenize:mini") == 5


def test_shards_follow_storage_order_and_skip_done_documents(small_ws):
    counter = TokenCounter(MINILM)
    task = TokenizeTask("x", counter)
    with small_ws.write(job="prep") as con:
        task.prepare(con)
    cur = small_ws.cursor()
    shards = plan_shards(cur, task, 32)
    assert [len(s.doc_ids) for s in shards] == [32, 32, 26]
    rows = cur.execute("SELECT doc_id FROM documents ORDER BY text_row").fetchall()
    assert [d for s in shards for d in s.doc_ids] == [r[0] for r in rows]
    with pytest.raises(EngineError, match="shard-size"):
        plan_shards(cur, task, 0)


def test_unknown_engine_and_dead_ray_address_fail_before_writing(small_ws):
    before = fingerprint(small_ws)
    with pytest.raises(EngineError, match="expected one of local, ray"):
        tokenize(small_ws, MINILM, name="m", engine="spark")
    from tests.conftest import _free_port

    with pytest.raises(EngineError, match="no Ray cluster answers"):
        tokenize(small_ws, MINILM, name="m", engine="ray", ray_address=f"127.0.0.1:{_free_port()}")
    assert fingerprint(small_ws) == before


@pytest.mark.slow
def test_ray_two_node_cluster_gives_the_local_counts(small_ws, smol, ray_cluster):
    import ray

    local = tokenize(small_ws, smol.source, name="local", counter=smol, shard_size=30)
    try:
        rep = tokenize(
            small_ws, smol.source, name="onray", counter=smol, engine="ray",
            ray_address=ray_cluster, shard_size=30,
        )  # fmt: skip
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
    assert rep.engine == "ray" and rep.workers == 2 and rep.docs == local.docs == 90
    assert len(nodes) == 2
    assert stored_counts(small_ws, "onray") == stored_counts(small_ws, "local")
    workers = (
        small_ws.cursor()
        .execute(
            "SELECT DISTINCT engine, worker FROM engine_shards WHERE job_key = 'tokenize:onray'"
        )
        .fetchall()
    )
    assert {w[0] for w in workers} == {"ray"}
