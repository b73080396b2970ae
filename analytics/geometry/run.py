"""Geometry of a checkpoint series: extraction + every metric, as tables.

:func:`compute_geometry` runs each checkpoint once over the probe texts (one forward pass
per batch, all layers), computes the registered representation metrics per (checkpoint,
layer, group), the covariance eigenspectra, per-group bits per byte, weight spectra, and
between consecutive checkpoints CKA per layer and intruder dimensions per matrix.

Caching: with a ``cache`` object (``get(key) -> dict[str, DataFrame] | None`` and
``put(key, frames)``), per-checkpoint results are stored under
``cache_key(checkpoint_fingerprint, probe_hash, params)`` and pair results (CKA,
intruders) under the key of the two fingerprints joined by "->"; a re-run only extracts
the checkpoints whose own or neighbouring-pair results are missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from analytics.params import option

from .checkpoints import Checkpoint, checkpoint_fingerprint, discover_checkpoints, load_state_dict
from .errors import GeometryInputError
from .extract import ExtractionResult, extract_hidden_states, resolve_device
from .metrics import DEFAULT_METRIC_PARAMS, REPRESENTATION_METRICS, ZSpectra
from .probe import probe_hash
from .similarity import linear_cka
from .weights import as_out_in, intruder_dimensions, uses_conv1d, weight_spectra

GEOMETRY_VERSION = 2  # 2: Conv1D weights transposed to out x in before intruders
Progress = Callable[[int, int, str], None]

METRICS_COLUMNS = [
    "checkpoint",
    "step",
    "layer",
    "group",
    "n",
    "d",
    "metric",
    "variant",
    "value",
    "params",
]
SPECTRA_COLUMNS = ["checkpoint", "step", "layer", "group", "k", "eigenvalue"]
CKA_COLUMNS = [
    "kind",
    "checkpoint_a",
    "step_a",
    "layer_a",
    "checkpoint_b",
    "step_b",
    "layer_b",
    "group",
    "linear",
    "debiased",
]
LOSS_COLUMNS = [
    "checkpoint",
    "step",
    "group",
    "bits_per_byte",
    "mean_text_bits_per_byte",
    "n_texts",
    "n_bytes",
    "n_tokens",
]
INTRUDER_COLUMNS = [
    "checkpoint_a",
    "step_a",
    "checkpoint_b",
    "step_b",
    "name",
    "shape",
    "k",
    "eps",
    "count",
    "max_abs_cos",
]
INFO_COLUMNS = [
    "checkpoint",
    "path",
    "revision",
    "step",
    "tokens_b",
    "fingerprint",
    "model_class",
    "num_layers",
    "hidden_size",
    "is_causal",
    "dtype",
    "device",
    "forward_passes",
    "n_tokens",
    "seconds",
    "from_cache",
]


class GeometryCache(Protocol):
    """Where compute_geometry stores and finds results (dict of DataFrames per key)."""

    def get(self, key: str) -> dict[str, pd.DataFrame] | None: ...

    def put(self, key: str, frames: dict[str, pd.DataFrame]) -> None: ...


class MemoryCache:
    """In-process :class:`GeometryCache` (a dict); ``hits``/``misses`` count lookups."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, pd.DataFrame]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, pd.DataFrame] | None:
        v = self.store.get(key)
        if v is None:
            self.misses += 1
            return None
        self.hits += 1
        return {k: f.copy() for k, f in v.items()}

    def put(self, key: str, frames: dict[str, pd.DataFrame]) -> None:
        self.store[key] = {k: f.copy() for k, f in frames.items()}


class DirectoryCache:
    """:class:`GeometryCache` writing one Parquet file per frame under ``root/<key hash>/``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()[:32]

    def get(self, key: str) -> dict[str, pd.DataFrame] | None:
        d = self._dir(key)
        if not (d / "_complete").is_file():
            return None
        return {p.stem: pd.read_parquet(p) for p in sorted(d.glob("*.parquet"))}

    def put(self, key: str, frames: dict[str, pd.DataFrame]) -> None:
        d = self._dir(key)
        d.mkdir(parents=True, exist_ok=True)
        for name, f in frames.items():
            f.to_parquet(d / f"{name}.parquet", index=False)
        (d / "_complete").write_text(key)


def cache_key(checkpoint_fingerprint: str, probe_hash: str, params: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of the three inputs."""
    payload = {
        "checkpoint": checkpoint_fingerprint,
        "probe": probe_hash,
        "params": params,
        "version": GEOMETRY_VERSION,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


@dataclass
class GeometryResult:
    """Tables produced by :func:`compute_geometry` (see the column constants in this module).

    metrics: long format, one row per (checkpoint, layer, group, metric, variant) with the
    parameters as JSON; spectra: covariance eigenvalues by 1-based rank k; cka: kind
    "checkpoints" (consecutive checkpoints, same layer) and "layers" (all layer pairs
    within a checkpoint); weights: weight spectra per matrix per checkpoint; intruders:
    per matrix between consecutive checkpoints; loss: bits per byte per checkpoint and
    group (causal LMs); checkpoints: one row per checkpoint with model facts.
    """

    metrics: pd.DataFrame
    spectra: pd.DataFrame
    cka: pd.DataFrame
    weights: pd.DataFrame
    intruders: pd.DataFrame
    loss: pd.DataFrame
    checkpoints: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            k: getattr(self, k)
            for k in ("metrics", "spectra", "cka", "weights", "intruders", "loss", "checkpoints")
        }


def _groups_of(
    texts: Sequence[str], groups: Sequence[Any] | None, per_group: bool, min_size: int
) -> dict[str, np.ndarray]:
    out = {"all": np.arange(len(texts))}
    if groups is None or not per_group:
        return out
    g = np.asarray([str(x) for x in groups])
    for name in sorted(set(g.tolist())):
        idx = np.flatnonzero(g == name)
        if name != "all" and idx.size >= min_size:
            out[name] = idx
    return out


def _metric_rows(
    base: dict[str, Any],
    ex: ExtractionResult,
    groups_idx: dict[str, np.ndarray],
    p: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metric rows, eigenspectrum rows) of every (layer, group) of one checkpoint."""
    mrows: list[dict[str, Any]] = []
    srows: list[dict[str, Any]] = []
    for layer, Z in sorted(ex.hidden.items()):
        for gname, idx in groups_idx.items():
            if idx.size < 2:
                continue
            sp = ZSpectra(Z[idx])
            for mname in p["metrics"]:
                for rec in REPRESENTATION_METRICS[mname](sp, p):
                    mrows.append(
                        {
                            **base,
                            "layer": layer,
                            "group": gname,
                            "n": sp.n,
                            "d": sp.d,
                            "metric": rec["metric"],
                            "variant": rec["variant"],
                            "value": rec["value"],
                            "params": json.dumps(rec["params"], sort_keys=True),
                        }
                    )
            lam = sp.cov_eigs[: int(p["max_eigs"])]
            srows.extend(
                {**base, "layer": layer, "group": gname, "k": k + 1, "eigenvalue": float(v)}
                for k, v in enumerate(lam)
            )
    return mrows, srows


def _loss_rows(
    base: dict[str, Any], ex: ExtractionResult, loss_groups: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Bits per byte per probe group (none when the model gave no loss)."""
    lrows: list[dict[str, Any]] = []
    if ex.bits_per_byte is None or ex.nll_nats is None or ex.n_bytes is None:
        return lrows
    for gname, idx in loss_groups.items():
        ok = idx[np.isfinite(ex.nll_nats[idx]) & (ex.n_bytes[idx] > 0)]
        nb = int(ex.n_bytes[ok].sum())
        lrows.append(
            {
                **base,
                "group": gname,
                "bits_per_byte": float(ex.nll_nats[ok].sum() / np.log(2) / nb)
                if nb
                else float("nan"),
                "mean_text_bits_per_byte": float(np.mean(ex.bits_per_byte[ok]))
                if ok.size
                else float("nan"),
                "n_texts": int(ok.size),
                "n_bytes": nb,
                "n_tokens": int(ex.n_tokens[idx].sum()),
            }
        )
    return lrows


def _layer_cka_rows(ck: Checkpoint, ex: ExtractionResult) -> list[dict[str, Any]]:
    """Linear CKA of every pair of layers of one checkpoint (kind "layers")."""
    crows: list[dict[str, Any]] = []
    layers = sorted(ex.hidden)
    for i, la in enumerate(layers):
        for lb in layers[i:]:
            a, b = ex.hidden[la], ex.hidden[lb]
            crows.append(
                {
                    "kind": "layers",
                    "checkpoint_a": ck.name,
                    "step_a": ck.step,
                    "layer_a": la,
                    "checkpoint_b": ck.name,
                    "step_b": ck.step,
                    "layer_b": lb,
                    "group": "all",
                    "linear": linear_cka(a, b),
                    "debiased": linear_cka(a, b, debiased=True),
                }
            )
    return crows


def _per_checkpoint_frames(
    ck: Checkpoint,
    ex: ExtractionResult,
    state: dict[str, Any] | None,
    groups_idx: dict[str, np.ndarray],
    loss_groups: dict[str, np.ndarray],
    p: dict[str, Any],
) -> dict[str, pd.DataFrame]:
    base = {"checkpoint": ck.name, "step": ck.step}
    mrows, srows = _metric_rows(base, ex, groups_idx, p)
    lrows = _loss_rows(base, ex, loss_groups)
    crows = _layer_cka_rows(ck, ex) if p["layer_cka"] else []
    wdf = pd.DataFrame()
    if state is not None:
        wdf = weight_spectra(state, min_dim=p["weights_min_dim"])
        wdf.insert(0, "step", ck.step)
        wdf.insert(0, "checkpoint", ck.name)
    return {
        "metrics": pd.DataFrame(mrows, columns=METRICS_COLUMNS),
        "spectra": pd.DataFrame(srows, columns=SPECTRA_COLUMNS),
        "loss": pd.DataFrame(lrows, columns=LOSS_COLUMNS),
        "cka": pd.DataFrame(crows, columns=CKA_COLUMNS),
        "weights": wdf,
    }


def _pair_frames(
    a: Checkpoint,
    ea: ExtractionResult,
    sa: dict[str, Any] | None,
    b: Checkpoint,
    eb: ExtractionResult,
    sb: dict[str, Any] | None,
    p: dict[str, Any],
) -> dict[str, pd.DataFrame]:
    crows = []
    for layer in sorted(set(ea.hidden) & set(eb.hidden)):
        x, y = ea.hidden[layer], eb.hidden[layer]
        crows.append(
            {
                "kind": "checkpoints",
                "checkpoint_a": a.name,
                "step_a": a.step,
                "layer_a": layer,
                "checkpoint_b": b.name,
                "step_b": b.step,
                "layer_b": layer,
                "group": "all",
                "linear": linear_cka(x, y),
                "debiased": linear_cka(x, y, debiased=True),
            }
        )
    irows = []
    if sa is not None and sb is not None and p["intruders"]:
        for name, w1 in sb.items():
            w0 = sa.get(name)
            if w0 is None or getattr(w1, "ndim", 0) != 2 or tuple(w0.shape) != tuple(w1.shape):
                continue
            if min(w1.shape) < p["weights_min_dim"] or max(w1.shape) > p["intruder_max_dim"]:
                continue
            res = intruder_dimensions(w0, w1, k=p["intruder_k"], eps=p["intruder_eps"])
            cosines = json.dumps([round(float(v), 6) for v in res.details["max_abs_cos"]])
            irows.append(
                {
                    "checkpoint_a": a.name,
                    "step_a": a.step,
                    "checkpoint_b": b.name,
                    "step_b": b.step,
                    "name": name,
                    "shape": f"{w1.shape[0]}x{w1.shape[1]}",
                    "k": res.k,
                    "eps": res.eps,
                    "count": res.count,
                    "max_abs_cos": cosines,
                }
            )
    return {
        "cka": pd.DataFrame(crows, columns=CKA_COLUMNS),
        "intruders": pd.DataFrame(irows, columns=INTRUDER_COLUMNS),
    }


def _resolve_checkpoints(checkpoints: Any) -> list[Checkpoint]:
    if isinstance(checkpoints, Checkpoint):
        return [checkpoints]
    if (
        isinstance(checkpoints, (list, tuple))
        and checkpoints
        and all(isinstance(c, Checkpoint) for c in checkpoints)
    ):
        return list(checkpoints)
    return discover_checkpoints(checkpoints)


@dataclass(frozen=True)
class GeometryOptions:
    """The options of one geometry computation, with their defaults (the one place they are
    written). :meth:`params` validates them and gives the canonical parameter dict that
    :func:`compute_geometry` puts in its cache keys."""

    pooling: str = option("last", "last (last real token) or mean.")
    max_tokens: int = option(512, "Truncate probe texts to T tokens.")
    layers: str | Sequence[int] = option("all", "all, last, or indices like 0,3,-1.")
    rankme_eps: float = option(
        DEFAULT_METRIC_PARAMS["rankme_eps"], "Epsilon added to p_k in RankMe."
    )
    alpha_fit_range: tuple[int, int] = option(
        DEFAULT_METRIC_PARAMS["alpha_fit_range"],
        "alpha-ReQ fit range START:END (0-based) or tracing/reptrix.",
    )
    max_eigs: int = option(
        DEFAULT_METRIC_PARAMS["max_eigs"], "Covariance eigenvalues kept per spectrum."
    )
    per_group: bool = option(True, "Also compute metrics per probe group (source).")
    min_group_size: int = option(
        8, "Probe groups with fewer texts get no spectral metrics (still a loss row)."
    )
    metrics: Sequence[str] | None = option(
        None, "Registered metric names to compute (default: all)."
    )
    weights: bool = option(True, "Weight spectra per matrix.")
    intruders: bool = option(True, "Intruder dimensions per matrix between checkpoints.")
    intruder_k: int = option(10, "Top singular vectors checked for intruder dimensions.")
    intruder_eps: float = option(0.5, "Intruder threshold on the largest absolute cosine.")
    intruder_max_dim: int = option(
        8192, "Matrices larger than this on a side get no intruder dimensions."
    )
    weights_min_dim: int = option(16, "Matrices smaller than this on a side are skipped.")
    layer_cka: bool = option(True, "Layer x layer CKA within each checkpoint.")
    device: str = option("auto", "auto (CUDA if available), cpu, cuda.")

    def params(self) -> dict[str, Any]:
        """Validated canonical parameters; ``device`` only contributes its kind ("cpu" /
        "cuda": bf16 on CUDA changes the numbers)."""
        if self.pooling not in ("last", "mean"):
            raise GeometryInputError(f"pooling: expected 'last' or 'mean', got {self.pooling!r}")
        names = list(self.metrics) if self.metrics is not None else list(REPRESENTATION_METRICS)
        unknown = [m for m in names if m not in REPRESENTATION_METRICS]
        if unknown:
            raise GeometryInputError(
                f"metrics: unknown {unknown}; registered: {sorted(REPRESENTATION_METRICS)}"
            )
        lo, hi = int(self.alpha_fit_range[0]), int(self.alpha_fit_range[1])
        if not 0 <= lo < hi:
            raise GeometryInputError(
                f"alpha_fit_range: expected 0 <= start < end (0-based, half-open), got {lo}:{hi}"
            )
        if not self.rankme_eps > 0:
            raise GeometryInputError(
                f"rankme_eps: expected a positive number, got {self.rankme_eps}"
            )
        dev = resolve_device(self.device)
        layers = self.layers
        return {
            **DEFAULT_METRIC_PARAMS,
            "rankme_eps": float(self.rankme_eps),
            "alpha_fit_range": [lo, hi],
            "max_eigs": int(self.max_eigs),
            "metrics": names,
            "pooling": self.pooling,
            "max_tokens": int(self.max_tokens),
            "layers": layers if isinstance(layers, str) else [int(x) for x in layers],
            "per_group": bool(self.per_group),
            "min_group_size": int(self.min_group_size),
            "weights": bool(self.weights),
            "intruders": bool(self.intruders),
            "intruder_k": int(self.intruder_k),
            "intruder_eps": float(self.intruder_eps),
            "intruder_max_dim": int(self.intruder_max_dim),
            "weights_min_dim": int(self.weights_min_dim),
            "layer_cka": bool(self.layer_cka),
            "device_kind": "cuda" if dev.startswith("cuda") else dev,
        }


def geometry_params(**options: Any) -> dict[str, Any]:
    """The canonical parameter dict :func:`compute_geometry` uses (and puts in its cache
    keys) for these :class:`GeometryOptions`."""
    return GeometryOptions(**options).params()


def _check_probe(texts: list[str], probe_groups: Sequence[Any] | None) -> None:
    if not texts:
        raise GeometryInputError("probe_texts: expected at least one text")
    if probe_groups is not None and len(probe_groups) != len(texts):
        raise GeometryInputError(
            f"probe_groups: expected {len(texts)} labels (one per probe text), "
            f"got {len(probe_groups)}"
        )


def _info_frame(ck: Checkpoint, fingerprint: str, ex: ExtractionResult) -> pd.DataFrame:
    """The one-row ``checkpoints`` table of a freshly extracted checkpoint."""
    return pd.DataFrame(
        [
            {
                "checkpoint": ck.name,
                "path": ck.path,
                "revision": ck.revision,
                "step": ck.step,
                "tokens_b": ck.tokens_b,
                "fingerprint": fingerprint,
                "model_class": ex.model_class,
                "num_layers": ex.num_layers,
                "hidden_size": ex.hidden_size,
                "is_causal": ex.is_causal,
                "dtype": ex.dtype,
                "device": ex.device,
                "forward_passes": ex.forward_passes,
                "n_tokens": int(ex.n_tokens.sum()),
                "seconds": ex.seconds,
                "from_cache": False,
            }
        ],
        columns=INFO_COLUMNS,
    )


def _matrices(ck: Checkpoint, ex: ExtractionResult) -> dict[str, Any]:
    """The 2-D weights of a checkpoint, out x in."""
    state = {k: v for k, v in load_state_dict(ck).items() if getattr(v, "ndim", 0) == 2}
    # GPT-2's Conv1D weights are in x out: transpose to the out x in convention
    return as_out_in(state, conv1d=uses_conv1d(model_class=ex.model_class))


def _cat(frames: list[pd.DataFrame], columns: list[str] | None = None) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=columns) if columns else pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _assemble(
    single: list[dict[str, pd.DataFrame] | None],
    pairs: list[dict[str, pd.DataFrame] | None],
    params: dict[str, Any],
) -> GeometryResult:
    """One :class:`GeometryResult` from the per-checkpoint and per-pair frames."""
    s_ok = [s for s in single if s is not None]
    p_ok = [q for q in pairs if q is not None]
    return GeometryResult(
        metrics=_cat([s["metrics"] for s in s_ok], METRICS_COLUMNS),
        spectra=_cat([s["spectra"] for s in s_ok], SPECTRA_COLUMNS),
        cka=_cat([q["cka"] for q in p_ok] + [s["cka"] for s in s_ok], CKA_COLUMNS),
        weights=_cat([s["weights"] for s in s_ok]),
        intruders=_cat([q["intruders"] for q in p_ok], INTRUDER_COLUMNS),
        loss=_cat([s["loss"] for s in s_ok], LOSS_COLUMNS),
        checkpoints=_cat([s["info"] for s in s_ok], INFO_COLUMNS),
        params=params,
    )


def _from_cache(
    cache: GeometryCache | None, keys: list[str]
) -> list[dict[str, pd.DataFrame] | None]:
    """The cached frames of each key (None where missing); cached info rows say so."""
    found = [cache.get(k) if cache else None for k in keys]
    for frames in found:
        if frames is not None and "info" in frames:
            frames["info"] = frames["info"].assign(from_cache=True)
    return found


def _needs_extraction(single: list[Any], pairs: list[Any], i: int) -> bool:
    """Checkpoint ``i`` is extracted when its own result or a pair with a neighbour is missing."""
    return (
        single[i] is None
        or (i > 0 and pairs[i - 1] is None)
        or (i + 1 < len(single) and pairs[i] is None)
    )


def _extract(
    ck: Checkpoint, texts: list[str], opts: GeometryOptions, batch_size: int
) -> ExtractionResult:
    return extract_hidden_states(
        ck,
        texts,
        pooling=opts.pooling,
        max_tokens=opts.max_tokens,
        batch_size=batch_size,
        layers=opts.layers,
        device=opts.device,
    )


def compute_geometry(
    checkpoints: Any,
    probe_texts: Sequence[str],
    probe_groups: Sequence[Any] | None = None,
    *,
    batch_size: int = 8,
    cache: GeometryCache | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> GeometryResult:
    """Geometry tables for a checkpoint series on a probe set.

    ``checkpoints``: anything :func:`discover_checkpoints` accepts, or a list of
    :class:`Checkpoint`. ``probe_texts``: the probe set; ``probe_groups``: same-length
    labels (e.g. source) for per-group metrics (groups with fewer than ``min_group_size``
    texts get no spectral metrics, but still a loss row) - group "all" is always present.
    ``options`` are :class:`GeometryOptions` fields: ``pooling``/``max_tokens``/``layers``/
    ``device`` (with ``batch_size``) go to :func:`extract_hidden_states`. ``rankme_eps``
    (1e-7), ``alpha_fit_range`` ((11, 100), 0-based half-open, 1-based rank regressor),
    ``max_eigs`` (2048) configure the metrics; ``metrics`` selects registered metric names
    (default: all of :data:`REPRESENTATION_METRICS`). ``weights`` adds weight spectra,
    ``intruders`` intruder dimensions (top ``intruder_k``, threshold ``intruder_eps``;
    matrices larger than ``intruder_max_dim`` on a side are skipped), ``layer_cka`` the
    layer x layer CKA of each checkpoint. ``progress(done, total, message)`` is called per
    checkpoint.
    """
    try:
        opts = GeometryOptions(**options)
    except TypeError as exc:
        raise GeometryInputError(f"options: {exc}") from None
    ckpts = _resolve_checkpoints(checkpoints)
    texts = list(probe_texts)
    _check_probe(texts, probe_groups)
    p = opts.params()
    ph = probe_hash(texts, probe_groups)
    groups_idx = _groups_of(texts, probe_groups, opts.per_group, opts.min_group_size)
    loss_groups = _groups_of(texts, probe_groups, True, 1)
    fps = [checkpoint_fingerprint(c) for c in ckpts]
    keys = [cache_key(fp, ph, p) for fp in fps]
    pair_keys = [cache_key(f"{fps[i - 1]}->{fps[i]}", ph, p) for i in range(1, len(ckpts))]
    single = _from_cache(cache, keys)
    pairs = _from_cache(cache, pair_keys)
    total = len(ckpts)
    prev: tuple[Checkpoint, ExtractionResult, dict[str, Any] | None] | None = None
    for i, ck in enumerate(ckpts):
        if not _needs_extraction(single, pairs, i):
            prev = None
            if progress:
                progress(i + 1, total, f"{ck.name}: cached")
            continue
        if progress:
            progress(i, total, f"{ck.name}: extracting hidden states")
        ex = _extract(ck, texts, opts, batch_size)
        state = _matrices(ck, ex) if opts.weights or opts.intruders else None
        if single[i] is None:
            if progress:
                progress(i, total, f"{ck.name}: computing metrics")
            frames = _per_checkpoint_frames(
                ck, ex, state if opts.weights else None, groups_idx, loss_groups, p
            )
            frames["info"] = _info_frame(ck, fps[i], ex)
            single[i] = frames
            if cache:
                cache.put(keys[i], frames)
        if i > 0 and pairs[i - 1] is None:
            assert prev is not None  # checkpoint i-1 was needed for this pair, so it was extracted
            pf = _pair_frames(prev[0], prev[1], prev[2], ck, ex, state, p)
            pairs[i - 1] = pf
            if cache:
                cache.put(pair_keys[i - 1], pf)
        prev = (ck, ex, state)
        if progress:
            progress(i + 1, total, f"{ck.name}: done")
    return _assemble(single, pairs, {**p, "probe_hash": ph})
