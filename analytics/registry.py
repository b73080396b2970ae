"""One small registry type: name -> component, for signals, filter conditions, geometry
metrics, map clusterers, mixture strategies and exporters.

It reads like a dict (``REG[name]``, ``name in REG``, ``REG.items()``, iteration in
registration order) and registers through a decorator that refuses a second, different
component under a taken name. ``get`` raises the capability's own error with the names
that are known, so a user typo reads the same everywhere.

>>> reg: Registry[Callable] = Registry("strategy")
>>> @reg.register("natural")
... def f(): ...
>>> reg.get("natural") is f, list(reg)
(True, ['natural'])
>>> reg.get("natual")
Traceback (most recent call last):
...
KeyError: "unknown strategy 'natual'; expected one of: natural"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Maps a name to a component; ``register`` is usable as a decorator."""

    def __init__(self, kind: str, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` (the same object twice is allowed)."""
        if name in self._items and self._items[name] is not obj:
            raise self.error(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            return self.add(name, obj)

        return deco

    def replace(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` in place of what is there (a component defined at
        run time whose definition changed, e.g. a new version of an imported signal)."""
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` if present (components registered at run time, and tests)."""
        self._items.pop(name, None)

    def get(self, name: str, default: object = ...) -> T:  # type: ignore[override]
        """The component named ``name``; an unknown name raises this registry's error
        listing the known names (or returns ``default`` when one is given)."""
        try:
            return self._items[name]
        except KeyError:
            if default is not ...:
                return default  # type: ignore[return-value]
            known = ", ".join(sorted(self._items)) or "(none)"
            raise self.error(f"unknown {self.kind} {name!r}; expected one of: {known}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._items)})"
