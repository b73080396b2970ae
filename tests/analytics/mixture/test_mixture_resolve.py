"""The one strategy resolver: declared inputs, gathered once; adding a strategy is one
registration."""

from __future__ import annotations

import pytest

from analytics.mixture import StrategyInputError, resolve
from analytics.mixture import builder as b
from analytics.mixture.strategies import INPUTS, SPECS, strategy_spec
from analytics.mixture.weights import MixtureWeights

TOKENS = {"web": 600.0, "code": 300.0, "books": 100.0}


def test_every_strategy_declares_known_inputs_and_is_described():
    names = SPECS.names()
    for expected in ("natural", "uniform", "temperature", "unimax", "manual",
                     "target_matching", "quality_diversity", "regmix", "mixing_law"):  # fmt: skip
        assert expected in names
    for row in resolve.describe():
        assert set(row["needs"]) <= set(INPUTS)
        assert "tokens" in row["needs"]
    target = next(r for r in resolve.describe() if r["name"] == "target_matching")
    assert "target" in target["params"]


def test_token_strategies_match_their_closed_forms():
    w = resolve.strategy_weights("natural", tokens=TOKENS)
    assert w == pytest.approx({"web": 0.6, "code": 0.3, "books": 0.1})
    w = resolve.strategy_weights("temperature", {"temperature": 2.0}, tokens=TOKENS)
    z = sum(v**0.5 for v in TOKENS.values())
    assert w == pytest.approx({g: v**0.5 / z for g, v in TOKENS.items()})
    w = resolve.strategy_weights("manual", {"web": 1, "books": 3}, tokens=TOKENS)
    assert w == pytest.approx({"web": 0.25, "code": 0.0, "books": 0.75})
    # the page's entry point goes through the same resolver
    assert b.token_strategy_weights("uniform", TOKENS) == pytest.approx({g: 1 / 3 for g in TOKENS})


def test_bad_parameters_name_what_was_expected():
    with pytest.raises(StrategyInputError, match="temperature takes temperature, cap"):
        resolve.strategy_weights("temperature", {"t": 2}, tokens=TOKENS)
    with pytest.raises(StrategyInputError, match="budget"):
        resolve.strategy_weights("unimax", tokens=TOKENS)
    with pytest.raises(StrategyInputError, match="target=FILE"):
        resolve.strategy_weights("target_matching", tokens=TOKENS, cur=object(), group_by="s")
    with pytest.raises(StrategyInputError, match="from a workspace"):
        resolve.strategy_weights("quality_diversity", {"quality": "q"}, tokens=TOKENS)
    with pytest.raises(StrategyInputError, match="unknown strategy 'nope'"):
        resolve.strategy_weights("nope", tokens=TOKENS)


def test_target_texts_come_from_the_file(tmp_path):
    from analytics.mixture.strategies import StrategyInputs

    f = tmp_path / "target.jsonl"
    f.write_text('{"text": "def f(x): return x"}\n\n{"text": "import os"}\n')
    inp = StrategyInputs(tokens=dict(TOKENS))
    params = {"target": str(f), "other": 1}
    resolve.GATHERERS["target_texts"](inp, params, "target_matching", {})
    assert inp.target_texts == ["def f(x): return x", "import os"]
    assert params == {"other": 1}  # the parameter that named the input was taken
    f.write_text("not json\n")
    with pytest.raises(StrategyInputError, match="line 1"):
        resolve.GATHERERS["target_texts"](inp, {"target": str(f)}, "target_matching", {})


def test_a_new_strategy_is_one_registration():
    @strategy_spec("test_budget_share", needs=("budget",), summary="test only")
    def _share(inputs, params):
        share = {g: min(t, inputs.budget / len(inputs.tokens)) for g, t in inputs.tokens.items()}
        total = sum(share.values())
        return MixtureWeights({g: v / total for g, v in share.items()}, method="test", params={})

    try:
        w = resolve.strategy_weights("test_budget_share", tokens=TOKENS, budget=600)
        assert w == pytest.approx({"web": 200 / 500, "code": 200 / 500, "books": 100 / 500})
        assert "test_budget_share" in [r["name"] for r in resolve.describe()]
    finally:
        SPECS._items.pop("test_budget_share", None)
