"""A document filter: structured state that becomes one SQL predicate with bound parameters.

Explore builds it from widgets, every other page reuses `where()`, and `to_params()` /
`from_params()` round-trip it through the URL so a colleague can open the same view.
User values never enter the SQL text; only whitelisted column names do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from analytics.errors import MixscopeError

FACET_COLUMNS = ("source", "domain", "lang")

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
            clauses.append(f"contains(lower({p}text), lower(?))")
            params.append(self.text_contains)
        if self.doc_ids:
            clauses.append(f"{p}doc_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.doc_ids))
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
        return cls(**kw)

    def with_(self, **changes: Any) -> DocFilter:
        return replace(self, **changes)
