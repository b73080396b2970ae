"""Mixture library: weighting strategies, budget/epoch accounting, manifests, selection and
reproduction, materialisation and exporters. Pure library code (no UI imports).

Weights are on a **token** basis everywhere in this package: a group's weight is its share
of a phase's token budget. Exporters convert to a framework's basis (see
:mod:`analytics.mixture.exporters`).
"""

from __future__ import annotations

from .errors import (
    ExportError,
    InfeasibleMixtureError,
    ManifestError,
    MixtureError,
    ReproductionError,
    SelectionError,
    StrategyInputError,
)
from .exporters import EXPORTERS, Export, export_manifest, register_exporter, write_export
from .manifest import (
    SCHEMA_PATH,
    Caps,
    Group,
    Manifest,
    Method,
    Phase,
    Selection,
    Tokenizer,
    build_manifest,
    build_phase,
    dumps_manifest,
    loads_manifest,
    manifest_json_schema,
    read_manifest,
    validate_manifest,
    write_json_schema,
    write_manifest,
)
from .materialize import MaterializeResult, materialize, open_for_materialize
from .plan import (
    R_STAR,
    allocate_tokens,
    apply_caps,
    effective_tokens,
    plan_table,
    weight_diversity,
)
from .selection import (
    ReproductionReport,
    group_counts,
    group_expression,
    group_selections,
    reproduce,
    selection_stats,
    snapshot_hash,
)
from .store import diff_manifests, list_mixtures, load_mixture, save_mixture, version_info
from .strategies import (
    STRATEGIES,
    dsir_log_importance,
    dsir_select,
    fit_mixing_law,
    fit_regmix,
    hashed_ngram_features,
    kl_divergence,
    natural_weights,
    quality_diversity_sampling,
    quality_diversity_weights,
    register_strategy,
    target_matching_weights,
    temperature_weights,
    uniform_weights,
    unimax_weights,
)
from .weights import MixtureWeights

__all__ = [
    # strategies
    "STRATEGIES",
    "register_strategy",
    "MixtureWeights",
    "natural_weights",
    "uniform_weights",
    "temperature_weights",
    "unimax_weights",
    "hashed_ngram_features",
    "dsir_log_importance",
    "dsir_select",
    "kl_divergence",
    "target_matching_weights",
    "quality_diversity_sampling",
    "quality_diversity_weights",
    "fit_regmix",
    "fit_mixing_law",
    # plan
    "plan_table",
    "allocate_tokens",
    "apply_caps",
    "effective_tokens",
    "weight_diversity",
    "R_STAR",
    # manifest
    "Manifest",
    "Phase",
    "Group",
    "Selection",
    "Caps",
    "Method",
    "Tokenizer",
    "SCHEMA_PATH",
    "build_manifest",
    "build_phase",
    "validate_manifest",
    "read_manifest",
    "write_manifest",
    "loads_manifest",
    "dumps_manifest",
    "manifest_json_schema",
    "write_json_schema",
    # selection / reproduction
    "group_expression",
    "group_counts",
    "group_selections",
    "selection_stats",
    "snapshot_hash",
    "reproduce",
    "ReproductionReport",
    # materialisation, export, store
    "materialize",
    "MaterializeResult",
    "open_for_materialize",
    "EXPORTERS",
    "Export",
    "export_manifest",
    "register_exporter",
    "write_export",
    "save_mixture",
    "list_mixtures",
    "load_mixture",
    "version_info",
    "diff_manifests",
    # errors
    "MixtureError",
    "StrategyInputError",
    "InfeasibleMixtureError",
    "ManifestError",
    "SelectionError",
    "ReproductionError",
    "ExportError",
]
