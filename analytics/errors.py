"""Exceptions with messages meant for people: each names the file, line or field at fault."""


class MixscopeError(ValueError):
    """Base class for every error mixscope reports to a user."""


class WorkspaceError(MixscopeError):
    """The workspace is missing, locked, corrupted or of an unknown schema version."""


class IngestError(MixscopeError):
    """An input file cannot be ingested; nothing was written."""


class QueryRefused(MixscopeError):
    """A user query was refused by the guarded SQL path (it writes, reads files, ...)."""


class QueryTimeout(MixscopeError):
    """A user query ran past its time bound and was interrupted."""


class QueryError(MixscopeError):
    """A user query failed in DuckDB (a typo, an unknown column or table, a bad cast ...)."""


class QueryTooLarge(MixscopeError):
    """A user query needed more memory or temporary disk than it is allowed."""
