"""Exceptions raised by :mod:`analytics.geometry`.

Every error about bad input subclasses :class:`analytics.errors.MixscopeError` (a
:class:`ValueError`) and names the offending field, file or checkpoint together with what
was expected.
"""

from __future__ import annotations

from analytics.errors import MixscopeError


class GeometryError(MixscopeError):
    """Base class for bad input to the geometry library."""


class GeometryInputError(GeometryError):
    """An array argument has the wrong shape, dtype or content."""


class CheckpointError(GeometryError):
    """A path or hub id does not resolve to a loadable checkpoint."""


class TokenizerMissingError(CheckpointError):
    """A checkpoint has no tokenizer files and none was supplied."""


class ArchitectureError(GeometryError):
    """The model architecture cannot produce what was asked (e.g. no hidden states)."""


class ProbeError(GeometryError):
    """A probe-set request cannot be satisfied (e.g. larger than the corpus)."""
