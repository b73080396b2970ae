"""The swarm's options are written once (analytics.mixture SwarmOptions, FitOptions,
ValidateOptions): the CLI's help and defaults, and the swarm's record, read them from there."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest
import typer

from analytics.mixture.swarm import SwarmOptions, SwarmSpec
from analytics.mixture.swarm_fit import FitOptions, ValidateOptions
from analytics.params import default_of, describe, help_for

CLI_ONLY = {"tokenizer_chars_per_group"}  # options no command line sets


def _command(*path: str):
    from dashboard.cli import app

    cmd = typer.main.get_command(app)
    for p in path:
        cmd = cmd.commands[p]
    return cmd


def _params(cmd) -> dict[str, object]:
    return {p.name: p for p in cmd.params}


@pytest.mark.parametrize(
    ("path", "classes"),
    [
        (("mix", "swarm"), (SwarmOptions, FitOptions)),
        (("mix", "swarm-fit"), (FitOptions,)),
        (("mix", "validate-proxy"), (ValidateOptions,)),
    ],
)
def test_cli_help_and_defaults_come_from_the_options(path, classes):
    params = _params(_command(*path))
    checked = 0
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name in CLI_ONLY:
                continue
            p = params[f.name]
            assert p.help == help_for(cls, f.name), (path, f.name)
            want = default_of(cls, f.name)
            if isinstance(want, tuple):  # a list option given comma-separated on the CLI
                want = ",".join(map(str, want))
            assert p.default == want, (path, f.name)
            checked += 1
    assert checked >= 3


def test_rendered_help_shows_the_options_help():
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "mix", "swarm", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    text = re.sub(r"\s+", " ", out.stdout)
    for f in dataclasses.fields(SwarmOptions):
        if f.name in CLI_ONLY:
            continue
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert re.sub(r"\s+", " ", help_for(SwarmOptions, f.name)) in text, f.name
    assert help_for(FitOptions, "regressor") in text


def test_options_round_trip_through_the_spec_and_describe():
    opts = SwarmOptions(proxies=4, seed=3, n_layer=1, lr=1e-3)
    spec = opts.spec("s", eval_groups=["a"])
    assert isinstance(spec, SwarmSpec) and spec.eval_groups == ["a"]
    assert spec.config.n_layer == 1 and spec.config.learning_rate == 1e-3
    assert spec.options() == opts
    text = describe(spec.options())
    assert "proxies=4 (default 16)" in text and "seed=3 (default 0)" in text
    assert SwarmSpec("s").options() == SwarmOptions()
    from analytics.mixture.swarm import _CONFIG_FIELDS, _SPEC_FIELDS

    names = {f.name for f in dataclasses.fields(SwarmOptions)}
    assert set(_SPEC_FIELDS) | set(_CONFIG_FIELDS) == names  # every option reaches the spec


def test_run_swarm_takes_options_but_needs_a_name():
    from analytics.mixture import MixtureError
    from analytics.mixture.swarm import run_swarm

    with pytest.raises(MixtureError, match="name"):
        run_swarm(object(), SwarmOptions())
