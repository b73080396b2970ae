"""A document filter: structured state that becomes one SQL predicate with bound parameters.

Explore builds it from widgets, every other page reuses `where()`, and `to_params()` /
`from_params()` round-trip it through the URL so a colleague can open the same view.
User values never enter the SQL text; only whitelisted column names do.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from analytics.errors import MixscopeError
from analytics.registry import Registry

FACET_COLUMNS = ("source", "domain", "lang")
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_OPS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@dataclass(frozen=True)
class Condition:
    """One extra constraint contributed by a capability (a signal threshold, a cluster, a map
    selection, ...). `kind` picks the resolver registered in CONDITION_KINDS; `name` and
    `column` must be plain identifiers and are checked again by the resolver against what
    exists; `value` is always a bound parameter."""

    kind: str
    name: str
    column: str = ""
    op: str = "eq"
    value: Any = None

    def __post_init__(self):
        if not _NAME.match(self.kind) or not _NAME.match(self.name):
            raise MixscopeError(f"filter condition {self.kind}:{self.name}: not a valid name.")
        if self.column and not _NAME.match(self.column):
            raise MixscopeError(f"filter condition column {self.column!r}: not a valid name.")
        if self.op not in _OPS and self.op != "in":
            raise MixscopeError(f"filter condition op {self.op!r}: expected one of {sorted(_OPS)}.")

    @property
    def sql_op(self) -> str:
        return _OPS[self.op]

    def token(self) -> str:
        """URL form `kind.name.column.op.value` (value last, may contain dots)."""
        return f"{self.kind}.{self.name}.{self.column}.{self.op}.{self.value}"

    @classmethod
    def parse(cls, token: str) -> Condition:
        parts = token.split(".", 4)
        if len(parts) != 5:
            raise MixscopeError(f"URL parameter 'c': {token!r} is not kind.name.column.op.value.")
        return cls(*parts)


# kind -> resolver(condition, alias_prefix) -> (sql predicate, params). Capabilities register
# theirs in their own module, listed in _RESOLVER_MODULES so they load on first use.
CONDITION_KINDS: Registry[Callable[[Condition, str], tuple[str, list[Any]]]] = Registry(
    "filter condition kind", MixscopeError
)
_RESOLVER_MODULES = {
    "signal": "analytics.signals.filtering",
    "cluster": "analytics.maps.filtering",
    "selection": "analytics.maps.filtering",
}


register_condition = CONDITION_KINDS.register


def _resolve(cond: Condition, prefix: str) -> tuple[str, list[Any]]:
    if cond.kind not in CONDITION_KINDS and cond.kind in _RESOLVER_MODULES:
        import importlib

        importlib.import_module(_RESOLVER_MODULES[cond.kind])
    if cond.kind not in CONDITION_KINDS:
        raise MixscopeError(f"filter condition kind {cond.kind!r} is not known.")
    return CONDITION_KINDS[cond.kind](cond, prefix)


# URL keys, kept short so links stay readable.
_LIST_KEYS = {"source": "src", "domain": "dom", "lang": "lang"}


@dataclass(frozen=True)
class DocFilter:
    """Filter over the `documents` table. Empty fields mean "no constraint"."""

    source: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    lang: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    text_contains: str | None = None
    doc_ids: tuple[str, ...] = field(default=())
    conditions: tuple[Condition, ...] = ()

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        """(predicate, params) for `WHERE`; "TRUE" when nothing is constrained."""
        p = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        for col in FACET_COLUMNS:
            values = getattr(self, col)
            if values:
                clauses.append(f"{p}{col} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.date_from is not None:
            clauses.append(f"{p}date >= ?")
            params.append(self.date_from)
        if self.date_to is not None:
            clauses.append(f"{p}date <= ?")
            params.append(self.date_to)
        if self.min_tokens is not None:
            clauses.append(f"{p}n_tokens >= ?")
            params.append(int(self.min_tokens))
        if self.max_tokens is not None:
            clauses.append(f"{p}n_tokens <= ?")
            params.append(int(self.max_tokens))
        if self.text_contains:
            clauses.append(
                f"{p}doc_id IN (SELECT doc_id FROM document_text "
                "WHERE contains(lower(text), lower(?)))"
            )
            params.append(self.text_contains)
        if self.doc_ids:
            clauses.append(f"{p}doc_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.doc_ids))
        for cond in self.conditions:
            sql, cparams = _resolve(cond, p)
            clauses.append(f"({sql})")
            params.extend(cparams)
        return (" AND ".join(clauses) or "TRUE"), params

    def is_empty(self) -> bool:
        return self == DocFilter()

    def describe(self) -> str:
        """One readable line, e.g. `source in (a, b); 100 <= tokens`."""
        parts = []
        for col in FACET_COLUMNS:
            if getattr(self, col):
                parts.append(f"{col} in ({', '.join(getattr(self, col))})")
        if self.date_from or self.date_to:
            parts.append(f"date {self.date_from or '…'} to {self.date_to or '…'}")
        if self.min_tokens is not None or self.max_tokens is not None:
            parts.append(f"tokens {self.min_tokens or 0} to {self.max_tokens or '∞'}")
        if self.text_contains:
            parts.append(f"text contains {self.text_contains!r}")
        if self.doc_ids:
            parts.append(f"{len(self.doc_ids)} selected documents")
        for c in self.conditions:
            if c.kind == "selection":
                parts.append(f"map selection {c.name}")
            elif c.kind == "cluster":
                parts.append(f"clusters {c.value} of map {c.name}")
            else:
                parts.append(f"{c.kind} {c.name}.{c.column} {c.op} {c.value}")
        return "; ".join(parts) or "all documents"

    # ------------------------------------------------------------------ URL round trip
    def to_params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for col, key in _LIST_KEYS.items():
            if getattr(self, col):
                out[key] = ",".join(getattr(self, col))
        if self.date_from:
            out["from"] = self.date_from.isoformat()
        if self.date_to:
            out["to"] = self.date_to.isoformat()
        if self.min_tokens is not None:
            out["tmin"] = str(self.min_tokens)
        if self.max_tokens is not None:
            out["tmax"] = str(self.max_tokens)
        if self.text_contains:
            out["q"] = self.text_contains
        if self.conditions:
            out["c"] = "|".join(c.token() for c in self.conditions)
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> DocFilter:
        """Parse URL parameters; a malformed value raises a MixscopeError naming the key."""
        kw: dict[str, Any] = {}
        for col, key in _LIST_KEYS.items():
            if params.get(key):
                kw[col] = tuple(v for v in str(params[key]).split(",") if v)
        for key, name in (("from", "date_from"), ("to", "date_to")):
            if params.get(key):
                try:
                    kw[name] = dt.date.fromisoformat(str(params[key]))
                except ValueError as exc:
                    raise MixscopeError(
                        f"URL parameter {key!r}: expected a date YYYY-MM-DD, got {params[key]!r}."
                    ) from exc
        for key, name in (("tmin", "min_tokens"), ("tmax", "max_tokens")):
            if params.get(key):
                try:
                    kw[name] = int(params[key])
                except ValueError as exc:
                    raise MixscopeError(
                        f"URL parameter {key!r}: expected a whole number, got {params[key]!r}."
                    ) from exc
        if params.get("q"):
            kw["text_contains"] = str(params["q"])
        if params.get("c"):
            kw["conditions"] = tuple(Condition.parse(t) for t in str(params["c"]).split("|") if t)
        return cls(**kw)

    def with_(self, **changes: Any) -> DocFilter:
        return replace(self, **changes)
