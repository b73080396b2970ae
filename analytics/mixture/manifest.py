"""The tool-neutral mixture manifest: pydantic v2 models, validation, YAML/JSON I/O, JSON Schema.

A manifest records everything needed to re-create a mixture exactly: schema and tool
versions, the tokenizer (name, sha256), the weight basis (always ``"tokens"``), total tokens,
the seed, the corpus snapshot hash, and per phase (budget, document order) and per group the
locators, document/token counts, the selection (SQL + params + hashes), weight, target
tokens, epochs, caps and the method (name, params, diagnostics).

Checks beyond the JSON Schema (all reported with the field path):
weights of a phase sum to 1 within 1e-6; group ids unique per phase and phase names unique;
total_tokens = sum of phase budgets; sum of target_tokens = budget and each target within
one token (+1e-6 relative) of weight x budget; epochs = target_tokens / tokens (1e-6 relative);
caps respected; ``order`` ascending/descending-quality names an ``order_column``; every
selection's snapshot_hash equals the manifest's corpus_snapshot_hash.
Absurd values are schema errors: negatives, NaN/inf, budgets or counts > 1e16,
epochs > 1000, more than 10,000 groups in a phase.

Files are written atomically (temporary file in the target directory, fsync, ``os.replace``):
a failed validation or write leaves any previous file untouched.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ManifestError
from .weights import WEIGHT_TOLERANCE, MixtureWeights, _jsonable

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
MAX_TOKENS = 10**16
MAX_EPOCHS = 1000
MAX_GROUPS = 10_000
MAX_PHASES = 100

Order = Literal["shuffled", "ascending-quality", "descending-quality", "as-is"]
Scalar = str | int | float | bool | None
Param = Scalar | list[Scalar]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)


class Tokenizer(_Model):
    """Tokenizer that produced the token counts."""

    name: str = Field(min_length=1, max_length=512)
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="sha256 of the tokenizer file(s)"
    )


class Selection(_Model):
    """How the group's documents are selected from the workspace.

    ``sql`` is one SELECT statement returning ``doc_id`` and ``n_tokens`` with ``?``
    placeholders bound to ``params``; ``doc_ids_hash`` is the order-independent hash of the
    selected doc ids and ``snapshot_hash`` the corpus snapshot it was computed on.
    """

    sql: str = Field(min_length=1, max_length=100_000)
    params: list[Param] = Field(
        default_factory=list, description="bound parameters (dates as ISO strings)"
    )
    snapshot_hash: str = Field(min_length=1, max_length=256)
    doc_ids_hash: str = Field(min_length=1, max_length=256)
    group_by: str | None = Field(
        default=None, description="group specification the selection was built from"
    )
    group_value: str | None = Field(
        default=None, description="value of the group expression (null group: None)"
    )
    filter: dict[str, str] | None = Field(
        default=None,
        description="the dashboard filter the selection was built from, as its URL parameters "
        "(provenance; the SQL and params above are what reproduce it)",
    )


class Caps(_Model):
    """Per-group caps: at most ``max_epochs`` passes, at most ``max_fraction`` of the phase."""

    max_epochs: float | None = Field(default=None, gt=0, le=MAX_EPOCHS)
    max_fraction: float | None = Field(default=None, gt=0, le=1)


class Method(_Model):
    """The strategy that produced the weight, its parameters and fit diagnostics."""

    name: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    diagnostics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params", "diagnostics", mode="before")
    @classmethod
    def _json_values(cls, v: Any) -> Any:
        # NaN/inf inside free-form dicts become null so that the JSON stays valid
        return _jsonable(v) if isinstance(v, Mapping) else v


class Group(_Model):
    """One group of a phase (a source, domain, cluster, quality bucket ...)."""

    id: str = Field(min_length=1, max_length=512)
    locators: list[str] = Field(
        default_factory=list, description="paths/URIs of the group's data for trainers"
    )
    documents: int = Field(ge=0, le=MAX_TOKENS)
    tokens: int = Field(ge=0, le=MAX_TOKENS, description="available tokens")
    selection: Selection | None = None
    weight: float = Field(ge=0, le=1, description="share of the phase budget, in tokens")
    target_tokens: int = Field(ge=0, le=MAX_TOKENS)
    epochs: float = Field(ge=0, le=MAX_EPOCHS, description="target_tokens / tokens")
    caps: Caps = Field(default_factory=Caps)
    method: Method


class Phase(_Model):
    """A training phase with its own budget, weights and document order."""

    name: str = Field(min_length=1, max_length=256)
    budget_tokens: int = Field(gt=0, le=MAX_TOKENS)
    order: Order = "shuffled"
    order_column: str | None = Field(
        default=None, description="quality column for ascending/descending-quality order"
    )
    groups: list[Group] = Field(min_length=1, max_length=MAX_GROUPS)


class Manifest(_Model):
    """A complete, reproducible mixture."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    tool_version: str = Field(min_length=1, max_length=128)
    created_at: _dt.datetime
    tokenizer: Tokenizer
    weight_basis: Literal["tokens"] = "tokens"
    total_tokens: int = Field(gt=0, le=MAX_TOKENS)
    seed: int = Field(ge=0, le=2**63 - 1)
    corpus_snapshot_hash: str = Field(min_length=1, max_length=256)
    #: the workspace lake snapshot the selection was computed on (time travel re-creates it)
    corpus_snapshot_id: int | None = Field(default=None, ge=0)
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES)

    @model_validator(mode="after")
    def _cross_checks(self) -> Manifest:
        problems = cross_check_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self


def cross_check_problems(m: Manifest) -> list[str]:
    """The non-schema checks of the module docstring, as ``path: message`` lines."""
    out: list[str] = []
    names = [p.name for p in m.phases]
    for name in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"phases[*].name: phase name {name!r} is used more than once")
    budgets = sum(p.budget_tokens for p in m.phases)
    if budgets != m.total_tokens:
        out.append(
            f"total_tokens: {m.total_tokens} differs from the sum of phase budgets {budgets}"
        )
    for i, ph in enumerate(m.phases):
        at = f"phases[{i}]"
        ids = [g.id for g in ph.groups]
        for gid in sorted({x for x in ids if ids.count(x) > 1}):
            out.append(f"{at}.groups[*].id: group id {gid!r} appears more than once")
        total_w = math.fsum(g.weight for g in ph.groups)
        if abs(total_w - 1.0) > WEIGHT_TOLERANCE:
            out.append(
                f"{at}.groups[*].weight: weights sum to {total_w:.12g}, expected 1 within "
                f"{WEIGHT_TOLERANCE:g}"
            )
        total_t = sum(g.target_tokens for g in ph.groups)
        if total_t != ph.budget_tokens:
            out.append(
                f"{at}.groups[*].target_tokens: they sum to {total_t}, expected budget_tokens = "
                f"{ph.budget_tokens}"
            )
        if ph.order in ("ascending-quality", "descending-quality") and not ph.order_column:
            out.append(f"{at}.order_column: required when order is {ph.order!r}")
        for j, g in enumerate(ph.groups):
            gat = f"{at}.groups[{j}]"
            expect = g.weight * ph.budget_tokens
            if abs(g.target_tokens - expect) > 1 + 1e-6 * ph.budget_tokens:
                out.append(
                    f"{gat}.target_tokens: {g.target_tokens} does not match weight x budget = "
                    f"{expect:.1f}"
                )
            if g.tokens == 0:
                if g.target_tokens > 0:
                    out.append(
                        f"{gat}.tokens: group {g.id!r} has no tokens but target_tokens = "
                        f"{g.target_tokens}"
                    )
            else:
                e = g.target_tokens / g.tokens
                if abs(g.epochs - e) > 1e-6 * max(1.0, e):
                    out.append(
                        f"{gat}.epochs: {g.epochs} does not match target_tokens / tokens = {e:.9g}"
                    )
            if g.caps.max_epochs is not None and g.epochs > g.caps.max_epochs * (1 + 1e-9):
                out.append(
                    f"{gat}.epochs: {g.epochs:.6g} exceeds caps.max_epochs = {g.caps.max_epochs:g}"
                )
            if g.caps.max_fraction is not None and g.weight > g.caps.max_fraction + 1e-12:
                out.append(
                    f"{gat}.weight: {g.weight:.6g} exceeds caps.max_fraction = "
                    f"{g.caps.max_fraction:g}"
                )
            if g.selection is not None and g.selection.snapshot_hash != m.corpus_snapshot_hash:
                out.append(f"{gat}.selection.snapshot_hash: differs from corpus_snapshot_hash")
    return out


# ---------------------------------------------------------------------------- validation


def _loc(loc: Sequence[Any]) -> str:
    s = ""
    for part in loc:
        if isinstance(part, int):
            s += f"[{part}]"
        else:
            s += ("." if s else "") + str(part)
    return s


def _format_errors(exc: ValidationError, source: str | None) -> ManifestError:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        msg = str(err.get("msg", ""))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        path = _loc(err.get("loc", ()))
        if err.get("type") not in ("value_error", "assertion_error", "missing") and "input" in err:
            shown = repr(err["input"])
            msg = f"{msg} (got {shown[:80]})"
        for sub in msg.split("\n"):
            lines.append(f"{path}: {sub}" if path else sub)
    where = f" {source}" if source else ""
    err = ManifestError(
        f"manifest{where} is invalid ({len(lines)} problem(s)):\n  " + "\n  ".join(lines)
    )
    err.problems = lines  # type: ignore[attr-defined]
    return err


def validate_manifest(data: Manifest | Mapping[str, Any], *, source: str | None = None) -> Manifest:
    """Validate a manifest (a :class:`Manifest` or a plain dict) and return the model.

    Raises :class:`ManifestError` (a ``ValueError``) listing every problem with its field path.
    """
    if isinstance(data, Manifest):
        data = data.model_dump(mode="json")
    if not isinstance(data, Mapping):
        raise ManifestError(
            f"manifest{' ' + source if source else ''}: expected a mapping at the top level, got "
            f"{type(data).__name__}"
        )
    try:
        return Manifest.model_validate(dict(data))
    except ValidationError as exc:
        raise _format_errors(exc, source) from None


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """JSON-compatible dict (datetimes as ISO 8601 strings)."""
    return manifest.model_dump(mode="json")


# ---------------------------------------------------------------------------- file I/O


def _fmt_for(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("yaml", "json"):
            raise ManifestError(f"format: expected 'yaml' or 'json', got {fmt!r}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    raise ManifestError(
        f"{path}: cannot tell the format from the suffix {suffix!r}; use .yaml, .yml or .json"
    )


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same directory + os.replace)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def dumps_manifest(
    manifest: Manifest | Mapping[str, Any], *, fmt: Literal["yaml", "json"] = "yaml"
) -> str:
    """Serialise a (validated) manifest to YAML or JSON text."""
    m = validate_manifest(manifest)
    data = manifest_to_dict(m)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def write_manifest(
    manifest: Manifest | Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    fmt: Literal["yaml", "json"] | None = None,
) -> Path:
    """Validate and write a manifest atomically; the format follows the suffix unless ``fmt`` is
    given.
    """
    target = Path(path)
    text = dumps_manifest(manifest, fmt=_fmt_for(target, fmt))  # validates before touching the disk
    return atomic_write_text(target, text)


def loads_manifest(
    text: str, *, fmt: Literal["yaml", "json"], source: str | None = None
) -> Manifest:
    """Parse and validate manifest text."""
    label = source or "<text>"
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"{label}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            raise ManifestError(
                f"{label}: {where}invalid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    return validate_manifest(data, source=label)


def read_manifest(
    path: str | os.PathLike[str], *, fmt: Literal["yaml", "json"] | None = None
) -> Manifest:
    """Read and validate a manifest file (.yaml/.yml/.json)."""
    p = Path(path)
    f = _fmt_for(p, fmt)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return loads_manifest(text, fmt=f, source=str(p))


# ---------------------------------------------------------------------------- JSON Schema


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) generated from :class:`Manifest`."""
    schema = Manifest.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://mixscope.invalid/schemas/mixture-manifest-{SCHEMA_VERSION}.json",
        **schema,
    }


def json_schema_text() -> str:
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"


def write_json_schema(path: str | os.PathLike[str] = SCHEMA_PATH) -> Path:
    """(Re)generate the committed schema file:
    ``python -c "from analytics.mixture import write_json_schema; write_json_schema()"``.
    """
    return atomic_write_text(path, json_schema_text())


# ---------------------------------------------------------------------------- builders


def tool_version() -> str:
    """The installed mixscope version, or ``0.0.0+unknown`` when running from a source tree."""
    from importlib import metadata

    try:
        return metadata.version("mixscope")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def build_phase(
    plan: pd.DataFrame,
    *,
    name: str,
    budget_tokens: int,
    method: MixtureWeights | Mapping[str, Any] | str,
    selections: Mapping[str, Selection | Mapping[str, Any]] | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    order: Order = "shuffled",
    order_column: str | None = None,
) -> Phase:
    """A :class:`Phase` from a :func:`~analytics.mixture.plan.plan_table` frame.

    ``method``: the strategy result (its ``method_block()``), a ``{name, params, diagnostics}``
    mapping, or a bare name. Groups with weight 0 are kept (documented as unused).
    """
    if isinstance(method, MixtureWeights):
        mblock = method.method_block()
    elif isinstance(method, str):
        mblock = {"name": method}
    else:
        mblock = dict(method)
    groups = []
    for row in plan.to_dict(orient="records"):
        gid = str(row["group"])
        caps = {
            "max_epochs": None if pd.isna(row.get("max_epochs")) else row.get("max_epochs"),
            "max_fraction": None if pd.isna(row.get("max_fraction")) else row.get("max_fraction"),
        }
        groups.append(
            {
                "id": gid,
                "locators": list((locators or {}).get(gid, [])),
                "documents": int(row["available_docs"]),
                "tokens": int(row["available_tokens"]),
                "selection": (selections or {}).get(gid),
                "weight": float(row["weight"]),
                "target_tokens": int(row["target_tokens"]),
                "epochs": float(row["epochs"]),
                "caps": caps,
                "method": mblock,
            }
        )
    data = {
        "name": name,
        "budget_tokens": int(budget_tokens),
        "order": order,
        "order_column": order_column,
        "groups": groups,
    }
    try:
        return Phase.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, f"phase {name!r}") from None


def build_manifest(
    *,
    phases: Sequence[Phase | Mapping[str, Any]],
    tokenizer: Tokenizer | Mapping[str, Any],
    seed: int,
    corpus_snapshot_hash: str,
    corpus_snapshot_id: int | None = None,
    created_at: _dt.datetime | None = None,
    version: str | None = None,
) -> Manifest:
    """Assemble and validate a manifest; ``total_tokens`` is the sum of the phase budgets."""
    ph = [p.model_dump(mode="json") if isinstance(p, Phase) else dict(p) for p in phases]
    tok = tokenizer.model_dump(mode="json") if isinstance(tokenizer, Tokenizer) else dict(tokenizer)
    data = {
        "schema_version": SCHEMA_VERSION,
        "tool_version": version or tool_version(),
        "created_at": (created_at or _dt.datetime.now(_dt.UTC)).isoformat(),
        "tokenizer": tok,
        "weight_basis": "tokens",
        "total_tokens": sum(int(p["budget_tokens"]) for p in ph),
        "seed": seed,
        "corpus_snapshot_hash": corpus_snapshot_hash,
        "corpus_snapshot_id": corpus_snapshot_id,
        "phases": ph,
    }
    return validate_manifest(data)
