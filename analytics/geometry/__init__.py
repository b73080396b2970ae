"""Checkpoint geometry: how a series of checkpoints represents a probe set.

Pure metrics (numpy arrays or torch tensors in, floats/records out, float64 inside):
:func:`rankme` (singular / covariance variants), :func:`alpha_req`, :func:`eigenspectrum`,
:func:`participation_ratio`, :func:`stable_rank`, :func:`anisotropy`,
:func:`intrinsic_dimension`, :func:`linear_cka` (``debiased=True``),
:func:`intruder_dimensions`, :func:`powerlaw_alpha`, :func:`weight_spectra`,
:func:`phases`. Pipeline: :func:`discover_checkpoints` -> :func:`extract_hidden_states`
-> :func:`compute_geometry`; :func:`train_demo_series` makes a small checkpoint series.
Heavy dependencies (torch, transformers, scikit-dimension) are imported only when used.
"""

from __future__ import annotations

from typing import Any

from .checkpoints import (
    Checkpoint,
    checkpoint_fingerprint,
    discover_checkpoints,
    load_state_dict,
    parse_step,
    parse_tokens_b,
    require_tokenizer,
)
from .errors import (
    ArchitectureError,
    CheckpointError,
    GeometryError,
    GeometryInputError,
    ProbeError,
    TokenizerMissingError,
)
from .metrics import *  # noqa: F403
from .metrics import __all__ as _metrics_all
from .probe import probe_hash, select_probe

_LAZY = {
    "extract_hidden_states": "extract",
    "ExtractionResult": "extract",
    "compute_geometry": "run",
    "cache_key": "run",
    "geometry_params": "run",
    "GeometryOptions": "run",
    "GeometryResult": "run",
    "MemoryCache": "run",
    "DirectoryCache": "run",
    "train_demo_series": "train_demo",
    "DemoSeries": "train_demo",
    "log_spaced_steps": "train_demo",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'analytics.geometry' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{mod}", __name__), name)


__all__ = [
    *_metrics_all,
    *_LAZY,
    "ArchitectureError",
    "Checkpoint",
    "CheckpointError",
    "GeometryError",
    "GeometryInputError",
    "ProbeError",
    "TokenizerMissingError",
    "checkpoint_fingerprint",
    "discover_checkpoints",
    "load_state_dict",
    "parse_step",
    "parse_tokens_b",
    "probe_hash",
    "require_tokenizer",
    "select_probe",
]
