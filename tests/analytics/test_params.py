"""Typed options: help text and defaults written once, read by the CLI and the pages."""

from __future__ import annotations

import doctest
from dataclasses import dataclass

import pytest

from analytics import params
from analytics.params import SEED_HELP, default_of, describe, help_for, helps, option


@dataclass(frozen=True)
class _Opts:
    k: int = option(8, "Clusters.")
    name: str = option("a", "A name.")
    tags: list = option(["x"], "Tags.")
    seed: int = option(0, SEED_HELP)


def test_help_and_defaults_come_from_the_declaration():
    assert help_for(_Opts, "k") == "Clusters."
    assert helps(_Opts)["seed"] == SEED_HELP
    assert default_of(_Opts, "tags") == ["x"]
    a, b = _Opts(), _Opts()
    assert a.tags == ["x"] and a.tags is not b.tags  # a fresh list per instance


def test_describe_marks_changed_values():
    assert describe(_Opts()) == "k=8, name='a', tags=['x'], seed=0"
    assert (
        describe(_Opts(k=3, name="b"))
        == "k=3 (default 8), name='b' (default 'a'), tags=['x'], seed=0"
    )


def test_unknown_option_names_the_class():
    with pytest.raises(KeyError, match="_Opts has no option 'nope'"):
        help_for(_Opts, "nope")


def test_module_examples():
    assert doctest.testmod(params).failed == 0
