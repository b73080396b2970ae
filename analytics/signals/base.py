"""Base classes shared by every document signal.

A signal is a small class with a `name`, documented parameters (`params_doc`), typed output
columns (`columns`) and a `compute(batch)` method that maps an Arrow table with columns
`doc_id, text, url` to an Arrow table with `doc_id` plus the output columns, one row per input
row, in the same order. Computation is batched over Arrow data; no per-row DuckDB UDFs.

Versions: `version = f"{code_version}.{sha1(canonical JSON of params)[:10]}"`, so changing a
parameter (or bumping `code_version` when the code changes what it outputs) gives a new
version, stored beside the old one rather than overwriting it.

Two kinds of signal:

* row signals (`kind = "row"`): each document's values depend on that document only; they are
  stored in `signal_<name>` as soon as a batch is computed.
* global signals (`kind = "global"`, e.g. duplicate clusters): `compute` returns a per-document
  sketch (a hash, MinHash band keys) stored in `signal_<name>_sketch`; `finalize(con, version)`
  then rebuilds `signal_<name>` for that version from all sketches (a global pass).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from analytics.errors import MixscopeError


class SignalError(MixscopeError):
    """Bad signal name, parameter or input batch."""


#: DuckDB column type -> Arrow type used by `compute` outputs.
ARROW_TYPES: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "UBIGINT": pa.uint64(),
    "BLOB": pa.binary(),
    "UBIGINT[]": pa.list_(pa.uint64()),
}


@dataclass(frozen=True)
class Column:
    """One typed output column of a signal (names are unique across all signals)."""

    name: str
    type: str
    description: str

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, tuples as lists, no spaces) used for hashing params."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=list)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Signal:
    """Base class: subclasses set the class attributes and implement `compute`."""

    name: ClassVar[str] = ""
    code_version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "row"
    #: parameter name -> (default, description)
    params_doc: ClassVar[dict[str, tuple[Any, str]]] = {}
    #: final output columns (stored in `signal_<name>`)
    columns: ClassVar[tuple[Column, ...]] = ()
    #: global signals only: per-document sketch columns (stored in `signal_<name>_sketch`)
    sketch_columns: ClassVar[tuple[Column, ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.params_doc))
        if unknown:
            valid = ", ".join(sorted(self.params_doc)) or "(none)"
            raise SignalError(
                f"signal {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"valid parameters: {valid}"
            )
        merged = {k: params.get(k, default) for k, (default, _doc) in self.params_doc.items()}
        self.params: dict[str, Any] = _jsonable(merged)
        self.validate()

    # ------------------------------------------------------------------ identity
    def validate(self) -> None:
        """Check parameter values; raise SignalError naming the parameter. Override."""

    @property
    def version(self) -> str:
        digest = hashlib.sha1(canonical_json(self.params).encode()).hexdigest()[:10]
        return f"{self.code_version}.{digest}"

    @property
    def table(self) -> str:
        return f"signal_{self.name}"

    @property
    def sketch_table(self) -> str:
        return f"signal_{self.name}_sketch"

    def computed_columns(self) -> tuple[Column, ...]:
        """Columns that `compute` returns (besides doc_id)."""
        return self.sketch_columns if self.kind == "global" else self.columns

    def output_schema(self) -> pa.Schema:
        fields = [pa.field("doc_id", pa.string())]
        fields += [pa.field(c.name, c.arrow_type) for c in self.computed_columns()]
        return pa.schema(fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r}, params={self.params!r})"

    # ------------------------------------------------------------------ work
    def compute(self, batch: pa.Table) -> pa.Table:
        """Return `doc_id` + `computed_columns()` for every row of `batch`."""
        raise NotImplementedError

    def finalize(self, con: Any, version: str) -> int:
        """Global signals: rebuild `signal_<name>` rows of `version`; return rows written."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _result(self, batch: pa.Table, values: dict[str, Any]) -> pa.Table:
        """Assemble the output table from per-column Python lists / numpy arrays."""
        arrays = [batch.column("doc_id").cast(pa.string())]
        for col in self.computed_columns():
            data = values[col.name]
            if isinstance(data, pa.Array | pa.ChunkedArray):
                arrays.append(data.cast(col.arrow_type))
            else:
                arrays.append(pa.array(data, type=col.arrow_type))
        return pa.Table.from_arrays(arrays, schema=self.output_schema())


def require_columns(batch: pa.Table, names: tuple[str, ...] = ("doc_id", "text")) -> None:
    """Raise SignalError if the batch lacks a required column."""
    missing = [n for n in names if n not in batch.column_names]
    if missing:
        raise SignalError(
            f"signal batch is missing column(s) {', '.join(missing)}; expected doc_id, text, url"
        )


def texts_of(batch: pa.Table) -> list[str]:
    """The batch's texts as Python strings (null -> "")."""
    require_columns(batch)
    return ["" if t is None else t for t in batch.column("text").to_pylist()]


def lazy_import(module: str, pip_name: str, what: str) -> Any:
    """Import `module` or raise ImportError saying what to pip install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs the package {pip_name!r}: pip install {pip_name}") from exc
