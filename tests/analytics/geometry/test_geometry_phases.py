"""Phase labelling rule on synthetic RankMe / alpha trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.geometry import GeometryInputError, phase_bands, phases

W, E, C, M = "warmup-collapse", "entropy-seeking", "compression-seeking", "mixed"


def _trajectory():
    # steps 0..12: RankMe falls for 3 intervals (warmup), rises for 5 while alpha
    # falls (entropy-seeking), then falls for 4 while alpha rises (compression-seeking)
    steps = np.arange(13) * 100
    r = np.array([50, 30, 15, 8, 12, 18, 25, 33, 40, 36, 31, 27, 24], dtype=float)
    a = np.array([1.0, 1.1, 1.2, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.9, 1.0, 1.1, 1.2])
    return steps, r, a


def test_phases_without_smoothing_follow_the_rule_exactly():
    steps, r, a = _trajectory()
    labels = phases(steps, r, a, window=1)
    assert labels == [W, W, W, W] + [E] * 5 + [C] * 4


def test_phases_with_smoothing_keep_order_and_are_input_order_invariant():
    steps, r, a = _trajectory()
    labels = phases(steps, r, a, window=3)
    # order of phases is warmup -> entropy -> compression, boundaries move by <= 1 step
    firsts = [labels.index(x) for x in (W, E, C)]
    assert firsts == sorted(firsts)
    assert abs(firsts[1] - 4) <= 1 and abs(firsts[2] - 9) <= 1
    perm = np.random.default_rng(0).permutation(13)
    shuffled = phases(steps[perm], r[perm], a[perm], window=3)
    assert shuffled == [labels[i] for i in perm]


def test_no_warmup_when_rankme_rises_first_and_conflicts_resolved_by_larger_move():
    steps = [1, 2, 3, 4]
    # RankMe rises, alpha constant: z = dR - dA = 1/3 > 0 everywhere, no warmup
    assert phases(steps, [1, 5, 9, 13], [2.0, 2.0, 2.0, 2.0], window=1) == [E] * 4
    # RankMe falls from the start: the whole run is the warmup prefix
    assert phases(steps, [13, 9, 5, 1], [2.0, 2.1, 2.2, 2.3], window=1) == [W] * 4
    # RankMe keeps rising but alpha jumps in the last interval: both rise there, which is
    # neither phase: "mixed" (the old rule called it compression-seeking, z = 1/3 - 1 < 0)
    assert phases(steps, [1, 2, 3, 4], [1.0, 1.0, 1.0, 10.0], window=1) == [E, E, E, M]


def test_dead_band_keeps_previous_label():
    steps = [1, 2, 3, 4]
    r = [1.0, 10.0, 9.9, 9.8]  # dR = 1, -0.011, -0.011 after normalising by the range 9
    a = [2.0, 2.0, 2.0, 2.0]
    assert phases(steps, r, a, window=1, tol=0.0) == [E, E, C, C]
    assert phases(steps, r, a, window=1, tol=0.05) == [E, E, E, E]


def test_phase_bands_are_contiguous():
    steps, r, a = _trajectory()
    labels = phases(steps, r, a, window=1)
    bands = phase_bands(steps, labels)
    assert [b["phase"] for b in bands] == [W, E, C]
    assert bands[0]["start_step"] == 0 and bands[-1]["end_step"] == 1200
    assert bands[1]["start_step"] == bands[0]["end_step"]


def test_phases_input_errors():
    with pytest.raises(GeometryInputError, match="equal lengths"):
        phases([1, 2], [1.0], [1.0, 2.0])
    assert phases([], [], []) == []


# ---------------------------------------------------------------- one synthetic run per label
def test_each_label_on_its_own_synthetic_trajectory():
    steps = [0, 1, 2, 3, 4]
    # warmup: RankMe only falls
    assert phases(steps, [50, 40, 30, 20, 10], [1, 1, 1, 1, 1], window=1) == [W] * 5
    # entropy-seeking: RankMe up, alpha down
    assert phases(steps, [10, 20, 30, 40, 50], [2.0, 1.8, 1.6, 1.4, 1.2], window=1) == [E] * 5
    # compression-seeking: after the collapse RankMe down... it is the collapse itself unless
    # RankMe rose first; so RankMe rises once, then falls while alpha rises
    lab = phases(steps, [10, 20, 18, 16, 14], [1.0, 0.9, 1.1, 1.3, 1.5], window=1)
    assert lab == [E, E, C, C, C]
    # mixed: RankMe and alpha rise together (and fall together)
    assert phases(steps, [10, 20, 30, 40, 50], [1.0, 1.1, 1.2, 1.3, 1.4], window=1) == [M] * 5
    lab = phases(steps, [10, 20, 18, 16, 14], [1.0, 0.9, 0.8, 0.7, 0.6], window=1)
    assert lab == [E, E, M, M, M]


def test_after_the_collapse_rankme_rising_with_alpha_is_mixed_not_compression():
    # the demo's shape: a deep warmup collapse, then RankMe rises a little while alpha rises
    steps = [0, 64, 128, 200, 300, 400]
    r = [120.0, 12.0, 10.0, 11.0, 12.0, 13.0]
    a = [0.8, 1.0, 1.1, 1.2, 1.3, 1.4]
    assert phases(steps, r, a, window=1) == [W, W, W, M, M, M]


def test_changes_are_normalised_over_the_steps_after_the_collapse():
    # RankMe collapses 100 -> 10, alpha jumps once, then RankMe rises by 2 per step with
    # alpha flat. Normalised over all steps, dR = 2/90 falls inside the dead band 0.05 and
    # the jump's "compression" label would stick; over the steps after the collapse
    # dR = 2/6 and the RankMe rise is entropy-seeking.
    steps = [0, 1, 2, 3, 4, 5]
    r = [100.0, 10.0, 10.0, 12.0, 14.0, 16.0]
    a = [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert phases(steps, r, a, window=1, tol=0.05) == [W, W, C, E, E, E]


def test_the_rule_text_names_the_mixed_label_and_the_normalisation():
    from analytics.geometry.phases import PHASE_RULE

    assert "is mixed" in PHASE_RULE and "range over the steps after the collapse" in PHASE_RULE
