"""The registry of document signals: name -> Signal class.

Adding a signal is adding one module with a `@register` class and naming the module in
`BUILTIN_MODULES`. Look-ups load the built-in modules on first use (their heavy dependencies
stay lazy: each imports its model only inside `compute`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from analytics.registry import Registry
from analytics.signals.base import Signal, SignalError

SIGNALS: Registry[type[Signal]] = Registry("signal", SignalError)

BUILTIN_MODULES = (
    "gopher_quality",
    "gopher_repetition",
    "c4_quality",
    "fineweb_quality",
    "language",
    "toxicity",
    "compression",
    "exact_dup",
    "near_dup",
    "url_domain",
)

_loaded = False


def register(cls: type[Signal]) -> type[Signal]:
    """Class decorator: add a Signal subclass to SIGNALS under `cls.name`."""
    if not cls.name:
        raise SignalError(f"{cls.__name__} has no name")
    return SIGNALS.add(cls.name, cls)


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        for mod in BUILTIN_MODULES:
            importlib.import_module(f"analytics.signals.{mod}")
        _loaded = True


def signal_names() -> list[str]:
    """Names of every registered signal, in registration order."""
    _load_builtin()
    return list(SIGNALS)


def get_signal_class(name: str) -> type[Signal]:
    _load_builtin()
    try:
        return SIGNALS[name]
    except KeyError:
        raise SignalError(f"unknown signal {name!r}; valid names: {', '.join(SIGNALS)}") from None


def get_signal(name: str, **params: Any) -> Signal:
    """An instance of signal `name` with `params` (defaults for the rest)."""
    return get_signal_class(name)(**params)


def resolve_signals(
    names: Iterable[str | Signal] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Signal]:
    """Instances for `names` (all registered signals when None).

    `names` may mix names and ready-made Signal instances; `params` maps a name to its
    parameters. Every name is checked before anything is built: an unknown name raises
    SignalError listing the valid names.
    """
    _load_builtin()
    params = dict(params or {})
    # all = every built-in signal; external ones (imported, classifiers) are named explicitly
    builtin = [n for n, c in SIGNALS.items() if not getattr(c, "external", False)]
    items = builtin if names is None else list(names)
    if isinstance(names, str):
        items = [names]
    unknown = [n for n in items if isinstance(n, str) and n not in SIGNALS]
    unknown += [n for n in params if n not in SIGNALS]
    if unknown:
        raise SignalError(
            f"unknown signal name(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(SIGNALS)}"
        )
    out: list[Signal] = []
    seen: set[str] = set()
    for item in items:
        sig = item if isinstance(item, Signal) else SIGNALS[item](**params.get(item, {}))
        if sig.name in seen:
            continue
        seen.add(sig.name)
        out.append(sig)
    return out


def signal_info(name: str | None = None) -> list[dict[str, Any]]:
    """Documentation of registered signals (all, or one), for CLIs and filter widgets.

    Each entry: name, kind, description, version (default parameters), params
    [{name, default, description}], columns [{name, type, description}].
    """
    names = [name] if name is not None else signal_names()
    out = []
    for n in names:
        cls = get_signal_class(n)
        out.append(
            {
                "name": cls.name,
                "kind": cls.kind,
                "description": cls.description,
                "version": cls().version,
                "params": [
                    {"name": k, "default": d, "description": doc}
                    for k, (d, doc) in cls.params_doc.items()
                ],
                "columns": [
                    {"name": c.name, "type": c.type, "description": c.description}
                    for c in cls.columns
                ],
            }
        )
    return out


def all_columns() -> dict[str, tuple[str, str]]:
    """Every final output column name -> (signal name, DuckDB type)."""
    _load_builtin()
    return {c.name: (name, c.type) for name, cls in SIGNALS.items() for c in cls.columns}
