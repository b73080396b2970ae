"""The one resolver from a strategy name and its parameters to weights.

Each strategy declares the inputs it needs (:class:`~analytics.mixture.strategies.StrategySpec`
``needs``, names from :data:`~analytics.mixture.strategies.INPUTS`); :func:`gather_inputs`
gets exactly those (reading the workspace where needed, taking the parameters that name
files and columns), and the strategy's adapter turns them into weights. The CLI
(`mixscope mix create --strategy NAME --param k=v`), the queue and the pages' token
strategies all come through here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import MixtureError, StrategyInputError
from .strategies import INPUTS, SPECS, StrategyInputs, StrategySpec
from .weights import MixtureWeights


def strategy_names() -> list[str]:
    return SPECS.names()


def spec(strategy: str) -> StrategySpec:
    try:
        return SPECS.get(strategy)
    except MixtureError:
        raise StrategyInputError(
            f"--strategy: unknown strategy {strategy!r}; expected one of {', '.join(SPECS.names())}"
        ) from None


#: the parameters through which an input is given
INPUT_PARAMS = {
    "target_texts": {"target": "FILE of target texts (required)"},
    "group_features": {
        "per_group": "sample per group (200)",
        "max_chars": "(4000)",
        "buckets": "(10000)",
    },  # fmt: skip
    "proxy_runs": {"runs": "CSV of proxy runs (required)"},
    "quality_docs": {"quality": "COLUMN with a quality score (required)"},
}


def describe() -> list[dict[str, Any]]:
    """Every strategy: name, summary, the inputs it needs (with how they are given), params."""
    return [
        {
            "name": s.name,
            "summary": s.summary,
            "needs": {n: INPUTS[n] for n in s.needs},
            "params": {
                **{k: v for n in s.needs for k, v in INPUT_PARAMS.get(n, {}).items()},
                **s.params,
            },
        }
        for s in (SPECS.get(n) for n in SPECS.names())
    ]


# ----------------------------------------------------------------------------- gatherers


def _need(params: dict, key: str, strategy: str, what: str) -> Any:
    value = params.pop(key, None)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise StrategyInputError(f"params: {strategy} needs {key}={what}")
    return value


def _target_texts(inp: StrategyInputs, params: dict, strategy: str, ctx: dict) -> None:
    from .builder import split_target_texts

    target = _need(params, "target", strategy, "FILE (target texts)")
    if isinstance(target, (list, tuple)):
        inp.target_texts = [str(t) for t in target]
        return
    path = Path(str(target))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyInputError(f"{path}: cannot read the target texts ({exc})") from None
    inp.target_texts = split_target_texts(text, name=path.name)


def _group_features(inp: StrategyInputs, params: dict, strategy: str, ctx: dict) -> None:
    from .builder import group_ngram_features

    per_group = int(params.pop("per_group", 200))
    max_chars = int(params.pop("max_chars", 4000))
    inp.buckets = int(params.pop("buckets", 10_000))
    inp.group_sample = {"per_group": per_group, "max_chars": max_chars, "seed": inp.seed}
    inp.group_features = group_ngram_features(
        ctx["cur"], ctx["flt"], group_by=ctx["group_by"], buckets=inp.buckets, **inp.group_sample
    )


def _proxy_runs(inp: StrategyInputs, params: dict, strategy: str, ctx: dict) -> None:
    from .builder import read_proxy_runs

    runs = _need(params, "runs", strategy, "CSV (proxy runs)")
    data = runs if isinstance(runs, bytes) else Path(str(runs))
    inp.proxy_runs = read_proxy_runs(data, groups=inp.groups)


def _quality_docs(inp: StrategyInputs, params: dict, strategy: str, ctx: dict) -> None:
    from .builder import quality_docs

    inp.quality_column = str(_need(params, "quality", strategy, "COLUMN (a quality score)"))
    inp.quality_docs = quality_docs(
        ctx["cur"], ctx["flt"], group_by=ctx["group_by"], quality_column=inp.quality_column,
        seed=inp.seed,
    )  # fmt: skip


GATHERERS: dict[str, Callable[[StrategyInputs, dict, str, dict], None]] = {
    "target_texts": _target_texts,
    "group_features": _group_features,
    "proxy_runs": _proxy_runs,
    "quality_docs": _quality_docs,
}
#: inputs read from the workspace (they need a cursor and a grouping)
_FROM_WORKSPACE = ("group_features", "quality_docs")


def gather_inputs(
    strategy: str,
    params: dict[str, Any],
    *,
    tokens: Mapping[str, float],
    budget: int | float | None = None,
    seed: int = 0,
    cur: Any = None,
    flt: Any = None,
    group_by: str | None = None,
) -> StrategyInputs:
    """The inputs `strategy` declares, gathered once; the parameters that named them (files,
    columns, sample sizes) are taken out of ``params``."""
    s = spec(strategy)
    inp = StrategyInputs(
        tokens={str(k): float(v) for k, v in tokens.items()},
        budget=None if budget is None else int(budget),
        seed=int(seed),
    )
    missing = [n for n in s.needs if n in _FROM_WORKSPACE] if cur is None or not group_by else []
    if missing:
        raise StrategyInputError(f"{strategy} needs {', '.join(missing)} from a workspace")
    ctx = {"cur": cur, "flt": flt, "group_by": group_by}
    for name in s.needs:
        if name in GATHERERS:
            GATHERERS[name](inp, params, strategy, ctx)
    return inp


def strategy_weights(
    strategy: str,
    params: Mapping[str, Any] | None = None,
    *,
    tokens: Mapping[str, float] | None = None,
    counts: Any = None,
    budget: int | float | None = None,
    seed: int = 0,
    cur: Any = None,
    flt: Any = None,
    group_by: str | None = None,
) -> MixtureWeights:
    """Weights of ``strategy`` with ``params``: per-group ``tokens`` (or a ``counts`` frame
    with group/tokens columns), and for strategies that read the workspace, ``cur``, ``flt``
    and ``group_by``."""
    if tokens is None:
        if counts is None:
            raise StrategyInputError("tokens: the per-group token counts are required")
        tokens = dict(zip(counts["group"], counts["tokens"]))
    p = dict(params or {})
    inp = gather_inputs(
        strategy, p, tokens=tokens, budget=budget, seed=seed, cur=cur, flt=flt, group_by=group_by
    )
    return spec(strategy).weights(inp, p)
