"""A small signals workspace (a few hundred demo documents + three synthetic duplicates),
shared by the signals CLI, page and browser tests, and checks of the signal conditions on it.

`small_unscored_ws()` is the ingested workspace with no signal computed; `signals_ws()` is a
copy with every signal computed once. Both are built once per test session (memoised here,
since several test modules import the fixtures).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from analytics.workspace import Workspace
from tests.conftest import ROOT
from tests.workspaces import copy_of  # noqa: F401 (re-exported)

DEMO = ROOT / "data" / "demo_corpus.parquet"
PER_SOURCE = 14
BASE = (
    "The committee met on Tuesday to review the budget for the coming year and agreed that "
    "the library would stay open late on weekdays while the museum would reduce its hours "
    "during the winter months because fewer visitors come when the weather is cold and dark "
    "and the roads near the old bridge are often closed for repairs"
)
SYNTHETIC = {
    "syn/a": BASE,
    "syn/b": BASE.replace("repairs", "maintenance"),  # near duplicate of a: last word changed
    "syn/c": BASE.upper().replace(" AND ", " AND, "),  # exact duplicate of a once normalised
}
_CACHE: dict[str, Path] = {}


def _build_unscored(root: Path) -> Path:
    from analytics.ingest import ingest

    src = root / "small.parquet"
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT id, text, source, domain, lang, date, url, title FROM (
                SELECT *, row_number() OVER (PARTITION BY source ORDER BY id) AS k
                FROM read_parquet('{DEMO}') WHERE length(text) BETWEEN 80 AND 5000)
            WHERE k <= {PER_SOURCE}
            UNION ALL
            SELECT doc_id, text, 'synthetic', 'news', 'en', DATE '2024-06-01',
                   'https://news.example.com/' || doc_id, NULL
            FROM (SELECT unnest(?::VARCHAR[]) AS doc_id, unnest(?::VARCHAR[]) AS text)
        ) TO '{src}' (FORMAT parquet)""",
        [list(SYNTHETIC), list(SYNTHETIC.values())],
    )
    con.close()
    ws_path = root / "unscored"
    ingest(Workspace(ws_path), [str(src)], id_field="id")
    return ws_path


def small_unscored_path(tmp_path_factory) -> Path:
    if "unscored" not in _CACHE:
        _CACHE["unscored"] = _build_unscored(tmp_path_factory.mktemp("signals_small"))
    return _CACHE["unscored"]


def signals_path(tmp_path_factory) -> Path:
    if "scored" not in _CACHE:
        from analytics.signals import run_signals

        dst = small_unscored_path(tmp_path_factory).parent / "scored"
        shutil.copytree(small_unscored_path(tmp_path_factory), dst)
        ws = Workspace(dst)
        with ws.write(job="signals (test fixture)") as con:
            run_signals(con, batch_size=128)
        _CACHE["scored"] = dst
    return _CACHE["scored"]
