"""nanotron: ``data_stages`` with a Nanoset ``dataset_folder: {folder: weight}`` per stage.

Basis: nanotron draws samples of sequence_length + 1 tokens per the weights, so token
weights are written unchanged. Each manifest phase becomes a stage; a later stage starts at
``start_training_step = 1 + (tokens of the earlier phases) / tokens_per_step`` (rounded up),
so ``tokens_per_step`` (global batch size x sequence length) is required with more than one
phase. ``style="dict"`` (default) writes ``dataset_folder: {path: weight}``; ``style="lists"``
writes ``dataset_folder: [paths]`` + ``dataset_weights: [weights]`` (newer nanotron versions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from analytics.mixture.errors import ExportError
from analytics.mixture.manifest import Manifest

from ._common import (
    Export,
    as_number,
    dump_yaml,
    select_phases,
    token_weights,
    weighted_locators,
)
from ._registry import register_exporter

BASIS = "tokens (samples of sequence_length + 1 tokens)"


@register_exporter("nanotron")
def export_nanotron(
    manifest: Manifest,
    *,
    locators: Mapping[str, Sequence[str]] | None = None,
    tokens_per_step: int | None = None,
    num_loading_workers: int = 1,
    style: Literal["dict", "lists"] = "dict",
    decimals: int = 10,
) -> Export:
    """One ``data_stages`` YAML covering every phase."""
    if style not in ("dict", "lists"):
        raise ExportError(f"style: expected 'dict' or 'lists', got {style!r}")
    phases = select_phases(manifest, None)
    if len(phases) > 1 and not tokens_per_step:
        raise ExportError(
            "tokens_per_step: required (global batch size x sequence length) when the manifest "
            "has more than one phase"
        )
    notes: list[str] = []
    stages = []
    seen = 0
    for pi, ph in phases:
        rows = weighted_locators(pi, ph, token_weights(ph, notes), locators, notes, decimals)
        paths = [loc for _, loc, _ in rows]
        ws = [w for _, _, w in rows]
        if len(set(paths)) != len(paths):
            raise ExportError(
                f"phase {ph.name!r}: the same locator appears twice; nanotron keys folders by path"
            )
        if style == "dict":
            dataset = {"dataset_folder": {p: as_number(w) for p, w in zip(paths, ws)}}
        else:
            dataset = {"dataset_folder": paths, "dataset_weights": [as_number(w) for w in ws]}
        start = 1 if seen == 0 else 1 + math.ceil(seen / int(tokens_per_step or 1))
        stages.append(
            {
                "name": ph.name,
                "start_training_step": start,
                "data": {
                    "dataset": dataset,
                    "seed": int(manifest.seed),
                    "num_loading_workers": int(num_loading_workers),
                },
            }
        )
        seen += ph.budget_tokens
    cfg = {"data_stages": stages}
    return Export(
        format="nanotron",
        files={"data_stages.yaml": dump_yaml(cfg)},
        data={"data_stages": stages},
        basis=BASIS,
        notes=notes,
    )
