"""One registry type behind every pluggable component."""

from __future__ import annotations

import doctest

import pytest

from analytics import registry
from analytics.registry import Registry


def test_every_capability_registers_through_the_one_type():
    from analytics.filters import CONDITION_KINDS
    from analytics.geometry.metrics import REPRESENTATION_METRICS
    from analytics.maps.cluster import CLUSTERERS
    from analytics.mixture.exporters import EXPORTERS
    from analytics.mixture.strategies import SPECS, STRATEGIES
    from analytics.signals.registry import SIGNALS, signal_names

    regs = [CONDITION_KINDS, REPRESENTATION_METRICS, CLUSTERERS, EXPORTERS, SPECS, STRATEGIES]
    assert all(isinstance(r, Registry) for r in [*regs, SIGNALS])
    assert "kmeans" in CLUSTERERS and "rankme_singular" in REPRESENTATION_METRICS
    assert signal_names()[:2] == ["gopher_quality", "gopher_repetition"]  # registration order


def test_unknown_names_raise_the_capability_error_with_the_known_names():
    from analytics.maps.cluster import CLUSTERERS
    from analytics.maps.errors import MapError
    from analytics.signals.base import SignalError
    from analytics.signals.registry import SIGNALS, signal_names

    signal_names()
    with pytest.raises(
        MapError, match="unknown clusterer 'kmean'; expected one of: hdbscan, kmeans"
    ):
        CLUSTERERS.get("kmean")
    with pytest.raises(SignalError, match="signal 'c4_quality' is already registered"):
        SIGNALS.add("c4_quality", object)


def test_same_object_twice_is_allowed_and_unregister_removes():
    reg: Registry[int] = Registry("thing", ValueError)
    one = object()
    reg.add("a", one)
    reg.add("a", one)
    assert reg.get("b", None) is None and dict(reg) == {"a": one}
    reg.unregister("a")
    reg.unregister("a")
    assert len(reg) == 0 and reg.names() == []


def test_module_examples():
    assert doctest.testmod(registry).failed == 0
