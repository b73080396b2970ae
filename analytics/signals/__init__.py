"""Per-document signals (quality, language, toxicity, density, duplicates, URL domain),
their storage in the workspace, filter impact per source, concept counts and contamination.

UI-free: the CLI and the dashboard call these functions. Heavy dependencies (datatrove,
spaCy, py3langid, alt-profanity-check, tldextract) are imported only when a signal computes.

Typical use::

    from analytics.signals import run_signals, list_signals, filter_impact

    with ws.write(job="signals") as con:
        run_signals(con, ["gopher_quality", "near_dup"], progress=cb)   # resumable
    cur = ws.cursor()
    list_signals(cur)                                    # name, version, params, coverage
    filter_impact(cur, [{"signal": "gopher_quality", "keep": "pass"},
                        {"column": "compression_ratio", "min": 0.3}])
    cur.execute(signals_view_sql(cur) + " WHERE detected_lang = ?", ["de"])
"""

from analytics.signals.base import Column, Signal, SignalError
from analytics.signals.concepts import (
    ConceptError,
    concept_counts,
    fit_concept_accuracy,
    parse_concepts,
    rank_frequency,
    rare_concepts,
    read_accuracy_csv,
    read_concepts,
)
from analytics.signals.contamination import (
    EvalFileError,
    find_contamination,
    read_eval_texts,
)
from analytics.signals.impact import FilterSpecError, duplicate_rates, filter_impact
from analytics.signals.registry import (
    SIGNALS,
    all_columns,
    get_signal,
    register,
    resolve_signals,
    signal_info,
    signal_names,
)
from analytics.signals.runner import count_pending, list_signals, run_signals
from analytics.signals.store import current_versions, signals_view, signals_view_sql

__all__ = [
    "SIGNALS",
    "Column",
    "ConceptError",
    "EvalFileError",
    "FilterSpecError",
    "Signal",
    "SignalError",
    "all_columns",
    "concept_counts",
    "count_pending",
    "current_versions",
    "duplicate_rates",
    "filter_impact",
    "find_contamination",
    "fit_concept_accuracy",
    "get_signal",
    "list_signals",
    "parse_concepts",
    "rank_frequency",
    "rare_concepts",
    "read_accuracy_csv",
    "read_concepts",
    "read_eval_texts",
    "register",
    "resolve_signals",
    "run_signals",
    "signal_info",
    "signal_names",
    "signals_view",
    "signals_view_sql",
]
