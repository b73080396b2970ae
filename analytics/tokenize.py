"""Token counts per named tokenizer, several side by side, computed shard by shard.

Tables (created by the first `tokenize`):

* `tokenizers(name, source, kind, sha256, cache, added_at)`: one row per named tokenizer:
  where it was loaded from (a directory, tokenizer.json, .gguf file, hub id), the sha256 of
  its tokenizer.json and whether the exact pre-token count cache counted it;
* `token_counts(tokenizer, doc_id, n_tokens)`: per-document counts keyed by tokenizer name.

* a view `documents_tok_<name>` per tokenizer: `documents` with `n_tokens` in that tokenizer
  (NULL for a document not counted yet). Overview, the Mixtures page and `mix create
  --tokenizer NAME` count budgets over it, so a manifest's selection SQL reads the same
  counts when it is reproduced or materialised.

The ingest tokenizer (the workspace's `meta.tokenizer`, counts in `documents.n_tokens`) is
listed beside them by `list_tokenizers` under the name "ingest".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import duckdb
import pyarrow as pa

from analytics.engine import DEFAULT_SHARD_SIZE, EngineReport, Progress, run_job
from analytics.errors import MixscopeError
from analytics.tokenizer import TokenCounter

TOKENIZERS_DDL = """CREATE TABLE IF NOT EXISTS tokenizers(
    name VARCHAR NOT NULL, source VARCHAR, kind VARCHAR, sha256 VARCHAR, cache VARCHAR,
    added_at TIMESTAMP)"""
COUNTS_DDL = """CREATE TABLE IF NOT EXISTS token_counts(
    tokenizer VARCHAR NOT NULL, doc_id VARCHAR NOT NULL, n_tokens BIGINT)"""
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: the name under which budgets use the ingest tokenizer's counts (documents.n_tokens)
INGEST = "ingest"


class TokenizeError(MixscopeError):
    """A tokenizer name that clashes or is malformed, or a tokenizer that is unknown."""


def default_name(source: str) -> str:
    """A tokenizer name from its source: a GGUF file's stem, a directory's name, a hub id's
    last part (characters outside [A-Za-z0-9_] become '_')."""
    p = Path(source.rstrip("/"))
    base = p.stem if p.suffix.lower() in (".gguf", ".json") else p.name
    if base == "tokenizer" and p.parent.name:
        base = p.parent.name
    name = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_") or "tokenizer"
    if not name[0].isalpha():
        name = "t_" + name
    return name[:64]


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or "") or name == INGEST:
        raise TokenizeError(
            f"--name {name!r}: expected 1-64 letters, digits or '_', starting with a letter "
            f"(and not {INGEST!r}, the ingest tokenizer)."
        )
    return name


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [table]
    ).fetchall()
    return bool(rows[0][0])


def registered(con: duckdb.DuckDBPyConnection, name: str) -> dict | None:
    if not _table_exists(con, "tokenizers"):
        return None
    row = con.execute(
        "SELECT name, source, kind, sha256, cache FROM tokenizers WHERE name = ?", [name]
    ).fetchone()
    return (
        dict(zip(("name", "source", "kind", "sha256", "cache"), row, strict=True)) if row else None
    )


@dataclasses.dataclass
class TokenizeTask:
    """The engine task: count tokens of each pending document with `counter`."""

    name: str
    counter: TokenCounter
    columns: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"tokenize:{self.name}"

    @property
    def label(self) -> str:
        return f"tokenize {self.name}"

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(TOKENIZERS_DDL)
        con.execute(COUNTS_DDL)
        lit = "'" + self.name.replace("'", "''") + "'"
        con.execute(
            f"CREATE OR REPLACE VIEW {view_name(self.name)} AS "
            "SELECT d.* REPLACE (c.n_tokens AS n_tokens) FROM documents d LEFT JOIN "
            f"(SELECT doc_id, n_tokens FROM token_counts WHERE tokenizer = {lit}) c "
            "ON c.doc_id = d.doc_id"
        )
        old = con.execute("SELECT sha256 FROM tokenizers WHERE name = ?", [self.name]).fetchone()
        if old is None:
            con.execute(
                "INSERT INTO tokenizers VALUES (?, ?, ?, ?, ?, ?)",
                [self.name, self.counter.source, self.counter.kind, self.counter.sha256,
                 self.counter.describe_cache(), dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )  # fmt: skip
        elif old[0] != self.counter.sha256:
            raise _clash(self.name, old[0], self.counter)

    def pending_sql(self) -> tuple[str, list]:
        return (
            "SELECT d.doc_id FROM documents d WHERE d.doc_id NOT IN "
            "(SELECT doc_id FROM token_counts WHERE tokenizer = ?)",
            [self.name],
        )

    def compute(self, batch: pa.Table) -> pa.Table:
        counts = self.counter.count(batch.column("text").to_pylist())
        return pa.table({"doc_id": batch.column("doc_id"), "n_tokens": counts})

    def commit(self, con: duckdb.DuckDBPyConnection, result: pa.Table) -> int:
        con.register("_mx_token_counts", result)
        try:
            con.execute(
                "INSERT INTO token_counts SELECT ?, doc_id, n_tokens FROM _mx_token_counts",
                [self.name],
            )
        finally:
            con.unregister("_mx_token_counts")
        return result.num_rows


def _clash(name: str, old_sha: str, counter: TokenCounter) -> TokenizeError:
    return TokenizeError(
        f"--name {name}: this workspace already counts tokens as {name!r} with another "
        f"tokenizer (sha256 {old_sha[:12]}, now {counter.source} sha256 "
        f"{counter.sha256[:12]}); expected a new --name for a different tokenizer."
    )


def load_counter(source: str) -> TokenCounter:
    """Load a tokenizer (raises TokenizerLoadError, one line, before anything is written)."""
    return TokenCounter(source)


def tokenize(
    ws,
    source: str,
    *,
    name: str | None = None,
    counter: TokenCounter | None = None,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: Progress | None = None,
    on_line=None,
    on_commit=None,
) -> EngineReport:
    """Count tokens of every document with the tokenizer at `source` under `name`.

    Re-running with the same name and tokenizer resumes (only documents without a count are
    done); the same name with a different tokenizer is refused before anything is written.
    """
    name = check_name(name or default_name(source))
    counter = counter or load_counter(source)
    old = registered(ws.cursor(), name)
    if old is not None and old["sha256"] != counter.sha256:
        raise _clash(name, old["sha256"], counter)
    return run_job(
        ws,
        TokenizeTask(name, counter),
        engine=engine,
        workers=workers,
        ray_address=ray_address,
        shard_size=shard_size,
        progress=progress,
        on_line=on_line,
        on_commit=on_commit,
    )


def list_tokenizers(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every tokenizer of the workspace: the ingest tokenizer first (`documents.n_tokens`),
    then each named one: name, source, kind, sha256, cache, documents counted, tokens."""
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    docs, toks = con.execute(
        "SELECT count(n_tokens), COALESCE(sum(n_tokens), 0)::BIGINT FROM documents"
    ).fetchone()
    out = [
        {
            "name": INGEST,
            "source": meta.get("tokenizer"),
            "kind": "ingest",
            "sha256": meta.get("tokenizer_sha256"),
            "cache": None,
            "documents": int(docs),
            "tokens": int(toks),
        }
    ]
    if not _table_exists(con, "tokenizers"):
        return out
    rows = con.execute(
        """SELECT t.name, t.source, t.kind, t.sha256, t.cache,
                  count(c.doc_id), COALESCE(sum(c.n_tokens), 0)::BIGINT
           FROM tokenizers t LEFT JOIN token_counts c ON c.tokenizer = t.name
           GROUP BY ALL ORDER BY min(t.added_at), t.name"""
    ).fetchall()
    keys = ("name", "source", "kind", "sha256", "cache", "documents", "tokens")
    out += [dict(zip(keys, r, strict=True)) for r in rows]
    return out


def tokenizer_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t["name"] for t in list_tokenizers(con)]


def tokenizer_record(con: duckdb.DuckDBPyConnection, name: str | None) -> dict:
    """The record of tokenizer `name` (None or 'ingest': the ingest tokenizer); a name that
    is not in the workspace raises TokenizeError listing the names there are."""
    name = name or INGEST
    for t in list_tokenizers(con):
        if t["name"] == name:
            return t
    raise TokenizeError(
        f"--tokenizer {name!r}: no such tokenizer in this workspace; expected one of "
        f"{', '.join(tokenizer_names(con))} (add one with `mixscope tokenize`)."
    )


def view_name(name: str) -> str:
    """The view `documents_tok_<name>` (a plain identifier: names are [A-Za-z][A-Za-z0-9_]*)."""
    return "documents_tok_" + check_name(name)


def documents_table(con: duckdb.DuckDBPyConnection, name: str | None) -> str:
    """The relation whose `n_tokens` counts in tokenizer `name`: `documents` for the ingest
    tokenizer (None or "ingest"), else the view `documents_tok_<name>`. A name the workspace
    does not have raises TokenizeError; one whose counts are incomplete says how many are
    missing (budgets would silently miss them)."""
    rec = tokenizer_record(con, name)
    if rec["name"] == INGEST:
        return "documents"
    n_docs = int(con.execute("SELECT count(*) FROM documents").fetchone()[0])
    if rec["documents"] < n_docs:
        raise TokenizeError(
            f"--tokenizer {rec['name']}: {n_docs - rec['documents']:,} of {n_docs:,} documents "
            f"have no count in it yet; expected complete counts (run `mixscope tokenize "
            f"--tokenizer {rec['source']} --name {rec['name']}` to finish them)."
        )
    return view_name(rec["name"])


def manifest_tokenizer(con: duckdb.DuckDBPyConnection, name: str | None) -> dict:
    """`{name, sha256}` for a manifest: the ingest tokenizer's hub id, or `name (source)`."""
    rec = tokenizer_record(con, name)
    label = rec["source"] if rec["name"] == INGEST else f"{rec['name']} ({rec['source']})"
    out = {"name": (label or rec["name"])[:512]}
    if rec["sha256"]:
        out["sha256"] = rec["sha256"]
    return out
