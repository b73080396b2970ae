"""OLMo-core: ``SourceMixtureDatasetConfig`` (source_list.sources[...], requested_tokens, seed).

Basis: tokens - ``target_ratio`` is each source's share of ``requested_tokens`` and must sum
to exactly 1; ratios are written with ``decimals`` places and the rounding error is put on
the largest. ``max_repetition_ratio`` is the group's ``caps.max_epochs`` when set, else its
planned epochs rounded up (at least 1), so OLMo-core may repeat exactly as planned.
``max_source_fraction`` stays 1.0 (OLMo-core's meaning - a fraction of the source's own
tokens - is not the manifest's ``max_fraction`` share of the mixture). One YAML per phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from analytics.mixture.manifest import Manifest, Phase

from ._common import (
    Export,
    active_groups,
    as_number,
    dump_yaml,
    exact_decimals,
    export_per_phase,
    group_locators,
    safe_name,
)
from ._registry import register_exporter

BASIS = "tokens (target_ratio of requested_tokens; ratios sum to exactly 1)"


@register_exporter("olmo-core")
def export_olmo_core(
    manifest: Manifest,
    *,
    phase: str | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    global_batch_size: int = 4 * 1024 * 1024,
    decimals: int = 10,
) -> Export:
    """OLMo-core source mixture configs (``SourceMixtureDatasetConfig.from_dict`` input)."""

    def build(pi: int, ph: Phase, notes: list[str]) -> tuple[dict[str, str], dict]:
        groups = active_groups(ph, notes)
        ratios = exact_decimals([g.weight for _, g in groups], decimals=decimals)
        sources = []
        for (j, g), r in zip(groups, ratios):
            rep = (
                g.caps.max_epochs
                if g.caps.max_epochs is not None
                else math.ceil(max(1.0, g.epochs) * 1e4) / 1e4
            )
            sources.append(
                {
                    "source_name": g.id,
                    "target_ratio": as_number(r),
                    "paths": group_locators(pi, j, g, locators),
                    "max_repetition_ratio": float(max(1.0, rep)),
                    "max_source_fraction": 1.0,
                }
            )
        cfg = {
            "source_list": {"sources": sources},
            "requested_tokens": int(ph.budget_tokens),
            "global_batch_size": int(global_batch_size),
            "seed": int(manifest.seed),
        }
        return {f"{safe_name(ph.name)}.olmo-core.yaml": dump_yaml(cfg)}, cfg

    return export_per_phase(manifest, "olmo-core", BASIS, phase, build)
