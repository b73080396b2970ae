"""Megatron-LM: ``--data-path w1 prefix1 w2 prefix2 ...`` per phase.

Basis: Megatron's BlendedDataset draws *samples of seq_length tokens* in proportion to the
(normalised) weights, so token weights are written unchanged. Each prefix is a tokenised
``.bin/.idx`` pair without suffix (the group's locators). Files per phase:
``<phase>.data-args`` (for ``--data-args-path``: the blend, whitespace separated) and
``<phase>.per-split.json`` (for ``--per-split-data-args-path``: {"train": [w, prefix, ...]}).
With ``seq_length`` the phase's ``--train-samples`` = ceil(budget / seq_length) is added to
the arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from analytics.mixture.manifest import Manifest, Phase

from ._common import (
    Export,
    decimal_text,
    dump_json,
    export_per_phase,
    safe_name,
    token_weights,
    weighted_locators,
)
from ._registry import register_exporter

BASIS = "tokens (Megatron samples are seq_length tokens; weights are normalised by Megatron)"


@register_exporter("megatron")
def export_megatron(
    manifest: Manifest,
    *,
    phase: str | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    seq_length: int | None = None,
    decimals: int = 10,
) -> Export:
    """Megatron-LM blends, one per phase (see the module docstring)."""

    def build(pi: int, ph: Phase, notes: list[str]) -> tuple[dict[str, str], dict]:
        rows = weighted_locators(pi, ph, token_weights(ph, notes), locators, notes, decimals)
        blend: list[str] = []
        for _, loc, w in rows:
            blend += [decimal_text(w), loc]
        args = ["--data-path", *blend]
        if seq_length:
            args += ["--train-samples", str(math.ceil(ph.budget_tokens / int(seq_length)))]
        args += ["--seed", str(manifest.seed)]
        name = safe_name(ph.name)
        files = {
            f"{name}.data-args": " ".join(blend) + "\n",
            f"{name}.per-split.json": dump_json({"train": blend}),
        }
        return files, {"blend": blend, "args": args}

    return export_per_phase(manifest, "megatron", BASIS, phase, build)
