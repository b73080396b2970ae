"""The CLI's --help reads each job option's help text (and default) from its options class,
so the command line, the pages and the library cannot drift apart."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from analytics.geometry.run import GeometryOptions
from analytics.geometry.store import ProbeOptions
from analytics.maps.compute import MapOptions
from analytics.params import default_of, help_for
from dashboard.cli import app


def _help(*command: str) -> str:
    res = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "2000"})
    assert res.exit_code == 0, res.output
    return re.sub(r"\s+", " ", res.output)


def _option_line(text: str, flag: str) -> str:
    """The help of one --flag: from the flag to the next option's flag."""
    m = re.search(rf"│ {re.escape(flag)}\b(.*?)│", text)
    assert m, f"{flag} not in --help"
    return m.group(1)


GEOMETRY = [
    ("--probe-size", ProbeOptions, "probe_size"),
    ("--stratify-by", ProbeOptions, "stratify_by"),
    ("--seed", ProbeOptions, "seed"),
    ("--max-tokens", GeometryOptions, "max_tokens"),
    ("--pooling", GeometryOptions, "pooling"),
    ("--layers", GeometryOptions, "layers"),
    ("--rankme-eps", GeometryOptions, "rankme_eps"),
    ("--alpha-fit-range", GeometryOptions, "alpha_fit_range"),
    ("--per-source", GeometryOptions, "per_group"),
    ("--weights", GeometryOptions, "weights"),
    ("--weights", GeometryOptions, "intruders"),
    ("--device", GeometryOptions, "device"),
]

MAP = [
    ("--n-neighbors", "n_neighbors"),
    ("--min-dist", "min_dist"),
    ("--clusterer", "cluster_method"),
    ("--k", "n_clusters"),
    ("--min-cluster-size", "min_cluster_size"),
    ("--cluster-on", "cluster_on"),
    ("--seed", "random_state"),
    ("--max-points", "max_points"),
]


@pytest.mark.parametrize(("flag", "cls", "name"), GEOMETRY)
def test_geometry_help_is_the_options_help(flag, cls, name):
    line = _option_line(_help("geometry"), flag)
    text = help_for(cls, name)
    assert text and text in line


def test_geometry_defaults_are_the_options_defaults():
    text = _help("geometry")
    lo, hi = default_of(GeometryOptions, "alpha_fit_range")
    assert f"[default: {lo}:{hi}]" in _option_line(text, "--alpha-fit-range")
    assert f"[default: {default_of(GeometryOptions, 'max_tokens')}]" in _option_line(
        text, "--max-tokens"
    )
    assert f"[default: {default_of(ProbeOptions, 'probe_size')}]" in _option_line(
        text, "--probe-size"
    )
    assert f"[default: {default_of(GeometryOptions, 'pooling')}]" in _option_line(text, "--pooling")


@pytest.mark.parametrize(("flag", "name"), MAP)
def test_map_help_is_the_options_help(flag, name):
    line = _option_line(_help("map"), flag)
    text = help_for(MapOptions, name)
    assert text and text in line


def test_map_defaults_are_the_options_defaults():
    text = _help("map")
    assert f"[default: {default_of(MapOptions, 'random_state')}]" in _option_line(text, "--seed")
    assert f"[default: {default_of(MapOptions, 'n_neighbors')}]" in _option_line(
        text, "--n-neighbors"
    )
    assert f"[default: {default_of(MapOptions, 'cluster_method')}]" in _option_line(
        text, "--clusterer"
    )


def test_map_page_command_leaves_out_defaults():
    from dashboard.components.map_jobs import map_args

    assert map_args() == ["map"]
    assert map_args(seed=default_of(MapOptions, "random_state") + 1, clusterer="hdbscan") == [
        "map",
        "--clusterer",
        "hdbscan",
        "--seed",
        str(default_of(MapOptions, "random_state") + 1),
    ]


@pytest.mark.parametrize(
    ("flag", "name"),
    [
        ("--batch-size", "batch_size"),
        ("--jobs", "jobs"),
        ("--checkpoint-every", "checkpoint_every"),
        ("--shard-size", "shard_size"),
    ],
)
def test_signals_run_help_is_the_options_help(flag, name):
    from analytics.signals.runner import SignalRunOptions

    line = _option_line(_help("signals", "run"), flag)
    assert help_for(SignalRunOptions, name) in line
    assert f"[default: {default_of(SignalRunOptions, name)}]" in line
