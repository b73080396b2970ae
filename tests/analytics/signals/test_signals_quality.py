"""Heuristic quality signals on hand-made pages whose verdicts are obvious."""

from __future__ import annotations

import pyarrow as pa
import pytest

from analytics.signals import SignalError, get_signal

PROSE = (
    "The history of the old harbour town goes back to the Roman period, when a small "
    "settlement was founded on the bank of the river.\n"
    "Over the following centuries it grew into an important market town, and by the twelfth "
    "century it had a cathedral, a castle and a busy weekly fair.\n"
    "Today the town is known for its university, which was founded in 1209 and has trained "
    "many scientists, doctors and writers.\n"
    "Local industry has shifted from wool and textiles to software and biotechnology, and the "
    "population has doubled since the end of the war.\n"
    "Several parks, gardens and museums are open to the public throughout the year, and the "
    "river path is popular with walkers and cyclists.\n"
    "Visitors who arrive by train can reach the historic centre in ten minutes on foot, "
    "passing the covered market and the medieval bridge.\n"
)
REPEATED = "Click here to buy cheap watches now!\n" * 30
LOREM = PROSE + "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n"


def batch(*texts: str) -> pa.Table:
    return pa.table(
        {
            "doc_id": [f"d{i}" for i in range(len(texts))],
            "text": list(texts),
            "url": [None] * len(texts),
        }
    )


def rows(name: str, *texts: str, **params) -> list[dict]:
    return get_signal(name, **params).compute(batch(*texts)).to_pylist()


def test_gopher_repetition_fails_repeated_lines_and_passes_prose():
    prose, rep = rows("gopher_repetition", PROSE, REPEATED)
    assert prose["gopher_rep_pass"] is True and prose["gopher_rep_reason"] is None
    assert rep["gopher_rep_pass"] is False
    assert rep["gopher_rep_reason"] == "dup_line_frac"
    # 30 identical lines plus the empty string after the final newline: 29 duplicates of 31
    assert rep["rep_dup_line_frac"] == pytest.approx(29 / 31)
    assert prose["rep_dup_line_frac"] == 0.0


def test_gopher_quality_numbers_and_verdicts():
    prose, rep, short = rows("gopher_quality", PROSE, REPEATED, "Too short to judge.")
    assert prose["gopher_quality_pass"] is True
    assert short["gopher_quality_pass"] is False
    assert short["gopher_quality_reason"] == "gopher_short_doc"
    # the repeated page has no stop words from the Gopher list except "to"
    assert rep["gopher_quality_pass"] is False
    assert rep["gopher_quality_reason"] == "gopher_enough_stop_words"
    assert short["gopher_n_words"] == 4  # Too / short / to / judge (the full stop is a symbol)
    assert short["gopher_mean_word_length"] == pytest.approx((3 + 5 + 2 + 5) / 4)
    assert prose["gopher_stop_words"] >= 3
    assert prose["gopher_bullet_lines_ratio"] == 0.0


def test_gopher_quality_bullets_rule():
    bullets = "\n".join(f"- item number {i} of the list with the words" for i in range(60))
    (r,) = rows("gopher_quality", bullets)
    assert r["gopher_bullet_lines_ratio"] == pytest.approx(1.0)
    assert r["gopher_quality_pass"] is False


def test_c4_rules():
    prose, lorem, code = rows(
        "c4_quality", PROSE, LOREM, PROSE + "The snippet is if (x) { return y; } in C.\n"
    )
    assert prose["c4_pass"] is True
    assert prose["c4_n_lines"] == 6 and prose["c4_kept_lines"] == 6
    assert prose["c4_kept_char_frac"] == pytest.approx(1.0, abs=0.01)
    assert lorem["c4_pass"] is False and lorem["c4_reason"] == "lorem_ipsum"
    assert code["c4_pass"] is False and code["c4_reason"] == "curly_bracket"
    (few,) = rows("c4_quality", "One sentence here.\nAnother one here.")
    assert few["c4_reason"] == "too_few_sentences"


def test_fineweb_rules():
    prose, rep = rows("fineweb_quality", PROSE, REPEATED)
    assert prose["fineweb_pass"] is True
    assert prose["fineweb_line_punct_ratio"] == pytest.approx(1.0)
    assert rep["fineweb_pass"] is False
    # every non-empty line ends with "!" (terminal), 30 of 30 lines are duplicates after the 1st
    assert rep["fineweb_char_dup_ratio"] == pytest.approx(29 * 36 / (30 * 36))


def test_regex_tokenizer_gives_a_new_version_and_same_obvious_verdicts():
    a = get_signal("gopher_repetition")
    b = get_signal("gopher_repetition", tokenizer="regex")
    assert a.version != b.version
    prose, rep = rows("gopher_repetition", PROSE, REPEATED, tokenizer="regex")
    assert prose["gopher_rep_pass"] and not rep["gopher_rep_pass"]
    with pytest.raises(SignalError, match="tokenizer"):
        get_signal("gopher_quality", tokenizer="nltk")


def test_empty_text_fails_without_crashing():
    for name in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"):
        (r,) = rows(name, "")
        passed = next(v for k, v in r.items() if k.endswith("_pass"))
        assert passed is False, name
