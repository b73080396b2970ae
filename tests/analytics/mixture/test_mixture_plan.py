"""Budget accounting: targets, epochs, effective data (data-constrained scaling law), caps."""

from __future__ import annotations

import math

import pytest

from analytics.mixture import (
    InfeasibleMixtureError,
    StrategyInputError,
    allocate_tokens,
    apply_caps,
    effective_tokens,
    plan_table,
    weight_diversity,
)


def test_plan_table_epochs_and_effective_tokens_by_formula():
    tokens = {"a": 100, "b": 1000}
    docs = {"a": 10, "b": 50}
    t = plan_table(tokens, docs, {"a": 0.5, "b": 0.5}, 1000, max_epochs=4).set_index("group")
    assert t.loc["a", "target_tokens"] == 500 and t.loc["b", "target_tokens"] == 500
    assert t.loc["a", "epochs"] == pytest.approx(5.0)
    assert t.loc["b", "epochs"] == pytest.approx(0.5)
    # D' = U + U R* (1 - exp(-R/R*)), U = 100, R = 4, R* = 15.4
    #    = 100 + 1540 (1 - e^{-0.25974}) = 452.27
    expected = 100 + 100 * 15.4 * (1 - math.exp(-4 / 15.4))
    assert t.loc["a", "effective_tokens"] == pytest.approx(expected)
    assert t.loc["a", "effective_tokens"] == pytest.approx(452.27, abs=0.01)
    # fresh data: effective = target
    assert t.loc["b", "effective_tokens"] == pytest.approx(500)
    assert t.loc["b", "effective_fraction"] == pytest.approx(1.0)
    assert t.loc["a", "repetitions"] == pytest.approx(4.0)
    assert t.loc["a", "unique_tokens"] == 100 and t.loc["b", "unique_tokens"] == 500
    # > 4 epochs warns, and the cap of 4 epochs is exceeded
    assert "5.00 epochs" in t.loc["a", "warning"] and "max_epochs" in t.loc["a", "warning"]
    assert bool(t.loc["a", "over_epoch_cap"]) and not bool(t.loc["b", "over_epoch_cap"])
    assert t.loc["b", "warning"] == ""
    assert t.loc["a", "available_docs"] == 10


def test_plan_table_groups_and_errors():
    t = plan_table({"a": 10, "b": 10, "c": 0}, {"a": 1, "b": 1, "c": 0}, {"a": 1.0}, 7)
    assert list(t["group"]) == ["a", "b", "c"]
    assert list(t["target_tokens"]) == [7, 0, 0]
    with pytest.raises(StrategyInputError, match="sum to 1"):
        plan_table({"a": 10}, {"a": 1}, {"a": 0.9}, 10)
    with pytest.raises(StrategyInputError, match="no entry in tokens"):
        plan_table({"a": 10}, {"a": 1}, {"a": 0.5, "z": 0.5}, 10)
    with pytest.raises(StrategyInputError, match=r"docs"):
        plan_table({"a": 10}, {}, {"a": 1.0}, 10)
    empty = plan_table({"a": 10, "b": 0}, {"a": 1, "b": 0}, {"a": 0.5, "b": 0.5}, 10).set_index(
        "group"
    )
    assert math.isinf(empty.loc["b", "epochs"]) and "no tokens" in empty.loc["b", "warning"]


def test_effective_tokens_limits():
    assert effective_tokens(100, 1.0) == 100
    assert effective_tokens(100, 0.25) == 25
    # many epochs saturate at U (1 + R*)
    assert effective_tokens(100, 1e6) == pytest.approx(100 * (1 + 15.4))


def test_allocate_tokens_sums_exactly():
    # 10/3 each: floors 3,3,3 + one extra to the first (equal remainders, order kept)
    assert allocate_tokens({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10) == {"a": 4, "b": 3, "c": 3}
    # exact 0.6 and 4.4: floors 0 and 4, the larger remainder (.6, group a) gets the extra token
    assert allocate_tokens({"a": 0.12, "b": 0.88}, 5) == {"a": 1, "b": 4}
    big = allocate_tokens({"a": 0.1, "b": 0.2, "c": 0.7}, 10**15 + 7)
    assert sum(big.values()) == 10**15 + 7


def test_apply_caps_water_filling_by_hand():
    # a can take at most 2 epochs x 100 tokens of a 1000 budget = 0.2; the excess 0.3 goes to
    # b and c in proportion 0.3 : 0.2 -> b = 0.3 + 0.18 = 0.48, c = 0.2 + 0.12 = 0.32
    w = apply_caps(
        {"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 100, "b": 1000, "c": 1000}, 1000, max_epochs=2
    )
    assert w == pytest.approx({"a": 0.2, "b": 0.48, "c": 0.32})
    assert w.diagnostics["capped_groups"] == ["a"]
    # max_fraction 0.45 for b then binds in the second round: b = 0.45, c = 0.35
    w2 = apply_caps(
        {"a": 0.5, "b": 0.3, "c": 0.2},
        {"a": 100, "b": 1000, "c": 1000},
        1000,
        max_epochs=2,
        max_fraction={"b": 0.45},
    )
    assert w2 == pytest.approx({"a": 0.2, "b": 0.45, "c": 0.35})
    with pytest.raises(InfeasibleMixtureError):
        apply_caps({"a": 0.5, "b": 0.5}, {"a": 100, "b": 100}, 1000, max_epochs=2)


def test_weight_diversity():
    d = weight_diversity({"a": 0.5, "b": 0.5})
    assert d["effective_groups"] == pytest.approx(2.0)
    assert d["gini_simpson"] == pytest.approx(0.5)
