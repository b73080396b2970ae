"""Language, toxicity, compression ratio and URL domain signals on obvious cases."""

from __future__ import annotations

import zlib

import pyarrow as pa
import pytest

from analytics.signals import SignalError, get_signal
from analytics.signals.url_domain import host_of


def batch(texts, urls=None) -> pa.Table:
    return pa.table(
        {
            "doc_id": [f"d{i}" for i in range(len(texts))],
            "text": list(texts),
            "url": list(urls) if urls is not None else [None] * len(texts),
        }
    )


LANG_SAMPLES = {
    "en": "The weather was cold, so we stayed inside and read books all afternoon.",
    "de": "Das Wetter war kalt, also blieben wir drinnen und lasen den ganzen Nachmittag Bücher.",
    "fr": "Il faisait froid, alors nous sommes restés à l'intérieur pour lire tout l'après-midi.",
    "ru": "Было холодно, поэтому мы остались дома и весь день читали книги.",
    "zh": "天气很冷，所以我们整个下午都待在家里看书。",
}


def test_language_detects_obvious_languages():
    out = get_signal("language").compute(batch(list(LANG_SAMPLES.values()) + ["", "   "]))
    got = out.column("detected_lang").to_pylist()
    assert got[:5] == list(LANG_SAMPLES)
    assert got[5:] == ["und", "und"]
    conf = out.column("detected_lang_conf").to_pylist()
    assert all(0.5 < c <= 1.0 for c in conf[:5])
    assert conf[5] == 0.0


def test_language_params():
    sig = get_signal("language", langs=["de", "en"])
    (lang,) = sig.compute(batch([LANG_SAMPLES["fr"]])).column("detected_lang").to_pylist()
    assert lang in ("de", "en")  # French is not allowed, so it must pick one of the two
    with pytest.raises(SignalError, match="max_chars"):
        get_signal("language", max_chars=0)
    with pytest.raises(SignalError, match="langs"):
        get_signal("language", langs="most")
    # the default 'classic' set keeps Mandarin from being read as a close variety (Wu)
    proverb = "近来学得乌龟法，得缩头时且缩头。"
    assert (
        get_signal("language").compute(batch([proverb])).column("detected_lang")[0].as_py() == "zh"
    )
    assert get_signal("language", langs="all").version != get_signal("language").version


def test_toxicity_insult_scores_higher_than_neutral():
    texts = [
        "You are a stupid worthless idiot and everybody hates you, shut up.",
        "The committee meeting has been moved to Thursday at ten in room four.",
        "",
    ]
    out = get_signal("toxicity").compute(batch(texts)).to_pylist()
    assert out[0]["toxicity_doc"] > 0.5 > out[1]["toxicity_doc"]
    assert out[0]["toxicity_max"] > out[1]["toxicity_max"]
    assert out[2]["toxicity_doc"] is None


def test_toxicity_chunk_max_sees_an_insult_inside_a_long_page():
    neutral = "The committee meeting has been moved to Thursday at ten in room four. " * 40
    page = neutral + "You are a stupid worthless idiot. " + neutral
    (r,) = get_signal("toxicity", chunk_words=16).compute(batch([page])).to_pylist()
    assert r["toxicity_max"] > r["toxicity_doc"]
    assert r["toxicity_max"] > 0.5


def test_compression_ratio_lower_for_repetitive_text_and_matches_zlib():
    prose = (
        "Quantum computers exploit superposition and entanglement; practical machines still "
        "struggle with noise, error correction and the cost of keeping qubits cold enough."
    )
    rep = "buy now " * 40
    out = get_signal("compression").compute(batch([prose, rep, ""])).to_pylist()
    assert out[1]["compression_ratio"] < out[0]["compression_ratio"]
    raw = prose.encode()
    assert out[0]["compression_ratio"] == pytest.approx(len(zlib.compress(raw, 6)) / len(raw))
    assert out[0]["raw_bytes"] == len(raw)
    assert out[2]["compression_ratio"] is None
    pytest.importorskip("zstandard")
    z = get_signal("compression", method="zstd")
    assert z.version != get_signal("compression").version
    assert z.compute(batch([rep])).column("compression_ratio")[0].as_py() < 0.5


def test_url_domain_extraction():
    urls = [
        "https://a.b.example.co.uk/x",
        "http://www.Example.COM:8080/path?q=1",
        "example.org/page",
        None,
        "",
        "not a url",
        "http://127.0.0.1/x",
    ]
    out = get_signal("url_domain").compute(batch(["t"] * len(urls), urls)).to_pylist()
    assert (out[0]["url_domain"], out[0]["url_tld"], out[0]["url_host"]) == (
        "example.co.uk",
        "co.uk",
        "a.b.example.co.uk",
    )
    assert (out[1]["url_domain"], out[1]["url_tld"]) == ("example.com", "com")
    assert out[2]["url_domain"] == "example.org"
    for r in out[3:6]:
        assert r["url_domain"] is None and r["url_tld"] is None and r["url_host"] is None
    assert out[6]["url_domain"] == "127.0.0.1" and out[6]["url_tld"] is None


def test_url_private_suffix_option():
    out = get_signal("url_domain", include_private_suffixes=True).compute(
        batch(["t"], ["https://foo.blogspot.com/"])
    )
    assert out.column("url_domain")[0].as_py() == "foo.blogspot.com"
    assert host_of("https://x.y/") == "x.y"


def test_bad_batch_and_unknown_params():
    with pytest.raises(SignalError, match="text"):
        get_signal("compression").compute(pa.table({"doc_id": ["a"]}))
    with pytest.raises(SignalError, match="unknown parameter"):
        get_signal("compression", levle=3)
    with pytest.raises(ValueError, match="valid names"):
        get_signal("no_such_signal")
