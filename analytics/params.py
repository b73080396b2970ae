"""Typed job parameters: one dataclass per job, written once, read by the CLI and the pages.

A job's options are a frozen dataclass whose fields are declared with :func:`option`, which
records the help text beside the default. The CLI takes its ``--option`` help from
:func:`help_for`, a page widget takes its ``help=`` from the same call, and :func:`describe`
gives the one-line summary a job prints and the Jobs page shows. The seed is always called
``seed``.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opts:
...     k: int = option(8, "Clusters.")
...     seed: int = option(0, SEED_HELP)
>>> help_for(Opts, "k")
'Clusters.'
>>> describe(Opts(k=3))
'k=3 (default 8), seed=0'
"""

from __future__ import annotations

import dataclasses
from typing import Any

SEED_HELP = "Seed of every random choice of this job (sampling, initialisation, order)."


def option(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - the CLI's word
    """A dataclass field with its help text. Mutable defaults go through a factory."""
    meta = {"help": help}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def help_for(cls: type, name: str) -> str:
    """The help text of option ``name`` of the options class ``cls``."""
    return str(_field(cls, name).metadata.get("help", ""))


def default_of(cls: type, name: str) -> Any:
    """The default value of option ``name`` (calling its factory when it has one)."""
    f = _field(cls, name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise KeyError(f"{cls.__name__}.{name} has no default")


def describe(obj: Any) -> str:
    """``name=value`` for each option, saying the default where the value differs."""
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        try:
            default = default_of(type(obj), f.name)
        except KeyError:
            default = dataclasses.MISSING
        if default is dataclasses.MISSING or value == default:
            parts.append(f"{f.name}={value!r}" if isinstance(value, str) else f"{f.name}={value}")
        else:
            shown = f"{value!r}" if isinstance(value, str) else f"{value}"
            parts.append(f"{f.name}={shown} (default {default!r})")
    return ", ".join(parts)


def helps(cls: type) -> dict[str, str]:
    """Every option's help text, by name (for a page's widgets or a CLI's docs)."""
    return {f.name: str(f.metadata.get("help", "")) for f in dataclasses.fields(cls)}
