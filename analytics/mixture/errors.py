"""Exceptions raised by :mod:`analytics.mixture`.

Every error a caller can provoke with bad input is a subclass of :class:`ValueError` whose
message names the offending field (``tokens['web']``, ``phases[0].groups[2].weight`` ...)
and says what was expected.
"""

from __future__ import annotations


class MixtureError(ValueError):
    """Base class for every input error raised by the mixture library."""


class StrategyInputError(MixtureError):
    """A weighting strategy received unusable input (empty, negative, NaN, unknown group)."""


class InfeasibleMixtureError(MixtureError):
    """The requested weights/budget cannot be met under the given caps."""


class ManifestError(MixtureError):
    """A manifest failed its schema or one of the cross-field checks."""


class SelectionError(MixtureError):
    """A selection specification (group expression, filter, table) is not acceptable."""


class ReproductionError(MixtureError):
    """The workspace no longer reproduces the selection recorded in a manifest.

    ``differences`` lists one human-readable line per differing group (or the snapshot).
    """

    def __init__(self, message: str, differences: list[str] | None = None) -> None:
        super().__init__(message)
        self.differences = list(differences or [])


class ExportError(MixtureError):
    """A manifest cannot be expressed in the requested export format."""
