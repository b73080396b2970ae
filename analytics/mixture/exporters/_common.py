"""Shared pieces of the exporters: the :class:`Export` value, locators, basis conversions."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from analytics.mixture.errors import ExportError
from analytics.mixture.manifest import Group, Manifest, Phase

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class Export:
    """An export: file name -> text, the structured data per phase, and notes on the basis."""

    format: str
    files: dict[str, str]
    data: dict[str, Any]
    basis: str
    notes: list[str] = field(default_factory=list)


def write_export(
    export: Export, out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> list[Path]:
    """Write every file of ``export`` under ``out_dir``; all appear at once (directory rename)."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ExportError(f"out_dir: {out} already exists; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    tmp = out.parent / f".{out.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        for name, text in export.files.items():
            p = tmp / name
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{tag}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / n for n in export.files]


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "phase"


def is_remote(locator: str) -> bool:
    return bool(_REMOTE.match(locator))


def select_phases(manifest: Manifest, phase: str | None) -> list[tuple[int, Phase]]:
    if phase is None:
        names = [safe_name(p.name) for p in manifest.phases]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ExportError(f"phases[*].name: several phases map to the file name(s) {clash}")
        return list(enumerate(manifest.phases))
    for i, p in enumerate(manifest.phases):
        if p.name == phase:
            return [(i, p)]
    raise ExportError(
        f"phase: unknown phase {phase!r}; manifest has {[p.name for p in manifest.phases]}"
    )


def active_groups(phase: Phase, notes: list[str]) -> list[tuple[int, Group]]:
    """Groups that receive tokens: weight > 0 and target_tokens > 0 (the others are dropped,
    with a note). A weight so small that the plan gives it no token (e.g. 1e-30 left by an
    iterative fit) would otherwise be written as a 0 that some trainers reject."""
    out = [(j, g) for j, g in enumerate(phase.groups) if g.weight > 0 and g.target_tokens > 0]
    dropped = [g.id for g in phase.groups if not (g.weight > 0 and g.target_tokens > 0)]
    if dropped:
        notes.append(f"phase {phase.name!r}: groups receiving no tokens omitted: {dropped}")
    return out


def group_locators(
    pi: int, j: int, g: Group, override: Mapping[str, Sequence[str]] | None
) -> list[str]:
    locs = list(override[g.id]) if override is not None and g.id in override else list(g.locators)
    if not locs:
        raise ExportError(
            f"phases[{pi}].groups[{j}].locators: group {g.id!r} has no locator; "
            "set locators in the manifest, pass locators={group: [paths]} or materialise first"
        )
    return locs


def split_over_locators(
    pi: int,
    phase: Phase,
    weights: Sequence[float],
    override: Mapping[str, Sequence[str]] | None,
    notes: list[str],
) -> list[tuple[str, str, float]]:
    """(group id, locator, weight) with a group's weight split equally over its locators."""
    out = []
    groups = active_groups(phase, [])
    for (j, g), w in zip(groups, weights):
        locs = group_locators(pi, j, g, override)
        if len(locs) > 1:
            notes.append(
                f"phase {phase.name!r} group {g.id!r}: weight split equally over {len(locs)} "
                "locators "
                "(assumes equal sizes; materialise to one locator per group to make it exact)"
            )
        out.extend((g.id, loc, w / len(locs)) for loc in locs)
    return out


def weighted_locators(
    pi: int,
    phase: Phase,
    weights: Sequence[float],
    override: Mapping[str, Sequence[str]] | None,
    notes: list[str],
    decimals: int,
) -> list[tuple[str, str, Decimal]]:
    """(group id, locator, exact decimal weight): :func:`split_over_locators` rounded so the
    written weights add up to exactly 1."""
    rows = split_over_locators(pi, phase, weights, override, notes)
    ws = exact_decimals([w for _, _, w in rows], decimals=decimals)
    return [(gid, loc, w) for (gid, loc, _), w in zip(rows, ws)]


def export_per_phase(
    manifest: Manifest,
    fmt: str,
    basis: str,
    phase: str | None,
    build: Callable[[int, Phase, list[str]], tuple[dict[str, str], Any]],
) -> Export:
    """The loop of every one-config-per-phase exporter: ``build(phase index, phase, notes)``
    returns that phase's files (name -> text) and its structured data."""
    notes: list[str] = []
    files: dict[str, str] = {}
    data: dict[str, Any] = {}
    for pi, ph in select_phases(manifest, phase):
        phase_files, data[ph.name] = build(pi, ph, notes)
        files.update(phase_files)
    return Export(format=fmt, files=files, data=data, basis=basis, notes=notes)


def check_per(per: str) -> None:
    if per not in ("document", "token-block"):
        raise ExportError(f"per: expected 'document' or 'token-block', got {per!r}")


def basis_weights(phase: Phase, per: str, notes: list[str]) -> list[float]:
    """Per-document weights for ``per="document"``, token weights for ``"token-block"``."""
    return per_document_weights(phase, notes) if per == "document" else token_weights(phase, notes)


def token_weights(phase: Phase, notes: list[str]) -> list[float]:
    """Token-basis weights of the active groups, renormalised to sum to 1."""
    groups = active_groups(phase, notes)
    total = sum(g.weight for _, g in groups)
    return [g.weight / total for _, g in groups]


def per_document_weights(phase: Phase, notes: list[str]) -> list[float]:
    """Per-document (per-example) basis: p_g proportional to w_g / mean_doc_tokens_g.

    mean_doc_tokens_g = tokens_g / documents_g of the group's available data, so drawing
    documents with p gives group g a share w_g of the tokens in expectation.
    """
    groups = active_groups(phase, notes)
    raw = []
    for _, g in groups:
        if g.documents <= 0 or g.tokens <= 0:
            raise ExportError(
                f"phase {phase.name!r} group {g.id!r}: per-document conversion needs documents > "
                "0 and tokens > 0"
            )
        raw.append(g.weight / (g.tokens / g.documents))
    total = sum(raw)
    return [r / total for r in raw]


def exact_decimals(values: Sequence[float], *, decimals: int = 10) -> list[Decimal]:
    """Round to ``decimals`` places so that the decimal sum is exactly 1.

    Every value is rounded half-even to ``decimals`` places; the rounding error is then put on
    the largest value (ties: the first), so the written decimals add up to exactly 1.
    """
    if not values:
        raise ExportError("weights: nothing to export (no group has weight > 0)")
    q = Decimal(1).scaleb(-decimals)
    total = sum(Decimal(repr(float(v))) for v in values)
    rounded = [(Decimal(repr(float(v))) / total).quantize(q) for v in values]
    big = max(range(len(values)), key=lambda i: (rounded[i], -i))
    rounded[big] = Decimal(1) - sum(r for i, r in enumerate(rounded) if i != big)
    if rounded[big] <= 0:
        raise ExportError("weights: cannot round the weights to sum to exactly 1")
    return rounded


def as_number(d: Decimal) -> float | int:
    """A YAML/JSON number whose shortest repr is the decimal (floats round-trip exactly)."""
    return float(d)


def decimal_text(d: Decimal) -> str:
    """Plain decimal notation without trailing zeros (``0.3000`` -> ``0.3``)."""
    return format(d.normalize(), "f")


def dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def dump_json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
