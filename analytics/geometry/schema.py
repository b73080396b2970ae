"""Workspace tables for geometry results (DuckDB DDL, applied by the workspace migrations).

Each table mirrors one :class:`analytics.geometry.run.GeometryResult` frame plus ``run``
(the name given to ``mixscope checkpoints add``) and ``cache_key`` (the key of the
per-checkpoint or per-pair result the row came from), so results can be cached and
re-used by key. Insert a frame with
``INSERT INTO geometry_metrics BY NAME SELECT ? AS run, ? AS cache_key, * FROM frame``.

Bookkeeping tables (written by :mod:`analytics.geometry.store`): ``geometry_runs`` and
``geometry_run_checkpoints`` (the registry of ``mixscope checkpoints add``),
``geometry_train_log`` (the loss log of trainer_state.json), ``geometry_probes`` /
``geometry_probe_docs`` (each probe set: how it was drawn, and its documents in order),
``geometry_results`` (one row per stored result key: kind "checkpoint" or "pair", the
probe hash, the full parameter dict and ``config``, a short hash of both that names one
computation setting of a run).
"""

from __future__ import annotations

SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS geometry_checkpoints (
        run VARCHAR NOT NULL, cache_key VARCHAR, checkpoint VARCHAR NOT NULL, path VARCHAR,
        revision VARCHAR, step BIGINT, tokens_b DOUBLE, fingerprint VARCHAR, model_class VARCHAR,
        num_layers INTEGER, hidden_size INTEGER, is_causal BOOLEAN, dtype VARCHAR, device VARCHAR,
        forward_passes INTEGER, n_tokens BIGINT, seconds DOUBLE, from_cache BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS geometry_metrics (
        run VARCHAR NOT NULL, cache_key VARCHAR, checkpoint VARCHAR NOT NULL, step BIGINT,
        layer INTEGER NOT NULL, "group" VARCHAR NOT NULL, n INTEGER, d INTEGER,
        metric VARCHAR NOT NULL, variant VARCHAR, value DOUBLE, params JSON)""",
    """CREATE TABLE IF NOT EXISTS geometry_spectra (
        run VARCHAR NOT NULL, cache_key VARCHAR, checkpoint VARCHAR NOT NULL, step BIGINT,
        layer INTEGER NOT NULL, "group" VARCHAR NOT NULL, k INTEGER NOT NULL, eigenvalue DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS geometry_cka (
        run VARCHAR NOT NULL, cache_key VARCHAR, kind VARCHAR NOT NULL,
        checkpoint_a VARCHAR, step_a BIGINT, layer_a INTEGER,
        checkpoint_b VARCHAR, step_b BIGINT, layer_b INTEGER,
        "group" VARCHAR, linear DOUBLE, debiased DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS geometry_loss (
        run VARCHAR NOT NULL, cache_key VARCHAR, checkpoint VARCHAR NOT NULL, step BIGINT,
        "group" VARCHAR NOT NULL, bits_per_byte DOUBLE, mean_text_bits_per_byte DOUBLE,
        n_texts INTEGER, n_bytes BIGINT, n_tokens BIGINT)""",
    """CREATE TABLE IF NOT EXISTS geometry_weights (
        run VARCHAR NOT NULL, cache_key VARCHAR, checkpoint VARCHAR NOT NULL, step BIGINT,
        name VARCHAR NOT NULL, shape VARCHAR, "rows" INTEGER, cols INTEGER, stable_rank DOUBLE,
        spectral_norm DOUBLE, alpha DOUBLE, xmin DOUBLE, ks_distance DOUBLE, n_tail INTEGER,
        n_eigs INTEGER)""",
    """CREATE TABLE IF NOT EXISTS geometry_intruders (
        run VARCHAR NOT NULL, cache_key VARCHAR, checkpoint_a VARCHAR, step_a BIGINT,
        checkpoint_b VARCHAR, step_b BIGINT, name VARCHAR NOT NULL, shape VARCHAR, k INTEGER,
        eps DOUBLE, count INTEGER, max_abs_cos JSON)""",
    # --- registry and bookkeeping (analytics/geometry/store.py)
    """CREATE TABLE IF NOT EXISTS geometry_runs (
        run VARCHAR NOT NULL, specs JSON, tokenizer VARCHAR, added_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS geometry_run_checkpoints (
        run VARCHAR NOT NULL, ordinal INTEGER, checkpoint VARCHAR NOT NULL, path VARCHAR,
        revision VARCHAR, step BIGINT, tokens_b DOUBLE, fingerprint VARCHAR,
        tokenizer_path VARCHAR, source VARCHAR, model_type VARCHAR, hidden_size INTEGER,
        num_layers INTEGER)""",
    """CREATE TABLE IF NOT EXISTS geometry_train_log (
        run VARCHAR NOT NULL, step BIGINT NOT NULL, loss DOUBLE, learning_rate DOUBLE,
        grad_norm DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS geometry_probes (
        probe_hash VARCHAR NOT NULL, size INTEGER, stratify_by VARCHAR, seed INTEGER,
        n_corpus BIGINT, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS geometry_probe_docs (
        probe_hash VARCHAR NOT NULL, ordinal INTEGER NOT NULL, doc_id VARCHAR NOT NULL,
        "group" VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS geometry_results (
        run VARCHAR NOT NULL, cache_key VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        checkpoint VARCHAR, checkpoint_b VARCHAR, config VARCHAR, probe_hash VARCHAR,
        params JSON, computed_at TIMESTAMP)""",
]

#: frame name in GeometryResult -> table name
TABLES: dict[str, str] = {
    "checkpoints": "geometry_checkpoints",
    "metrics": "geometry_metrics",
    "spectra": "geometry_spectra",
    "cka": "geometry_cka",
    "loss": "geometry_loss",
    "weights": "geometry_weights",
    "intruders": "geometry_intruders",
}
