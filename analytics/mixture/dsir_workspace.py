"""DSIR over a workspace: select documents like a target file, as a mixture phase or group.

:func:`dsir_from_workspace` reads the filtered documents (``doc_id, n_tokens, text``, sorted
by ``doc_id`` so a seed always means the same draw) in batches, featurises them as the
``data-selection`` package does and runs :func:`~analytics.mixture.strategies.dsir.dsir_select`.
:func:`dsir_group` turns the selection into a manifest group whose
:class:`~analytics.mixture.manifest.Selection` lists the selected doc ids as one bound
parameter (``doc_id IN (SELECT unnest(?))``), so ``mix reproduce`` and ``mix materialize``
re-select exactly those documents from the workspace alone; :func:`create_dsir_manifest`
makes it a whole phase (optionally appended to another mixture's phases).

The method block records everything needed to draw the selection again: the target file's
path and SHA-256, the seed, buckets, n-gram order, length filter, sampling and the filter.
:func:`reproduce_dsir` re-runs DSIR from the target file on the manifest's snapshot and checks
that the very same documents come out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ReproductionError, StrategyInputError
from .manifest import Manifest, Phase, Selection, build_manifest, build_phase
from .plan import plan_table
from .selection import json_param, selection_stats, snapshot_hash
from .strategies.dsir import DEFAULT_MIN_WORDS, Sampling, dsir_select
from .strategies.target_matching import DEFAULT_BUCKETS, DEFAULT_NGRAMS, hashed_ngram_features
from .weights import MixtureWeights

Progress = Callable[[str, int, int], None]

DSIR_SQL = (
    'SELECT doc_id, n_tokens FROM "documents" WHERE doc_id IN (SELECT unnest(CAST(? AS VARCHAR[])))'
)
MAX_TARGET_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class TargetTexts:
    """Target texts read from a file, with the file's SHA-256 (recorded in the manifest)."""

    path: str
    sha256: str
    texts: list[str]

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts)


def target_from_bytes(data: bytes, *, name: str, path: str | None = None) -> TargetTexts:
    """Target texts from a file's bytes: JSONL (one object with ``text`` per line) or plain
    text (paragraphs separated by blank lines). Empty or wordless targets are errors."""
    from .builder import split_target_texts

    if not data.strip():
        raise StrategyInputError(f"{name}: the target file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrategyInputError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    texts = [t for t in split_target_texts(text, name=name) if t.strip()]
    if not texts:
        raise StrategyInputError(f"{name}: no target text found")
    if hashed_ngram_features(texts).sum() == 0:
        raise StrategyInputError(f"{name}: the target texts hold no words")
    return TargetTexts(path=path or name, sha256=hashlib.sha256(data).hexdigest(), texts=texts)


def read_target(path: str | Path) -> TargetTexts:
    """:func:`target_from_bytes` of the file at ``path`` (recorded by its absolute path)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise StrategyInputError(f"{path}: no such target file")
    if p.stat().st_size > MAX_TARGET_BYTES:
        raise StrategyInputError(f"{path}: the target file is larger than 200 MiB")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise StrategyInputError(f"{path}: cannot read the target file ({exc})") from None
    return target_from_bytes(data, name=str(path), path=str(p.resolve()))


def _where(flt: Any) -> tuple[str, list[Any]]:
    from .builder import as_where

    w = as_where(flt)
    return ("TRUE", []) if w is None or not w[0].strip() else (w[0], list(w[1]))


def candidate_features(
    con: Any,
    flt: Any = None,
    *,
    buckets: int = DEFAULT_BUCKETS,
    ngrams: int = DEFAULT_NGRAMS,
    batch: int = 2000,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, Any]:
    """``(docs, features)``: the filtered documents (``doc_id, n_tokens, source``, ordered by
    ``doc_id``) and their hashed n-gram counts (sparse, one row per document), read in
    batches of ``batch`` texts."""
    import scipy.sparse as sp

    sql, params = _where(flt)
    params = [json_param(p) for p in params]
    (total,) = con.execute(f'SELECT count(*) FROM "documents" WHERE ({sql})', params).fetchone()
    if not total:
        raise StrategyInputError("the filter selects no documents; nothing to select from")
    cur = con.execute(
        f"""SELECT doc_id, n_tokens, source, text FROM "documents"
            JOIN document_text USING (doc_id) WHERE ({sql}) ORDER BY doc_id""",
        params,
    )
    frames, mats, done = [], [], 0
    if progress:
        progress("featurise documents", 0, int(total))
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            break
        df = pd.DataFrame(rows, columns=["doc_id", "n_tokens", "source", "text"])
        mats.append(
            hashed_ngram_features(
                df["text"].fillna("").tolist(), buckets=buckets, ngrams=ngrams, per_document=True
            )
        )
        frames.append(df.drop(columns=["text"]))
        done += len(df)
        if progress:
            progress("featurise documents", done, int(total))
    docs = pd.concat(frames, ignore_index=True)
    if docs["n_tokens"].isna().any():
        raise StrategyInputError("documents.n_tokens: some selected documents have no token count")
    if len(docs) < int(total):
        raise StrategyInputError(
            f"document_text: {int(total) - len(docs)} selected document(s) have no readable text"
        )
    return docs, sp.vstack(mats).tocsr()


def dsir_from_workspace(
    con: Any,
    flt: Any = None,
    *,
    target: TargetTexts,
    budget: int,
    seed: int = 0,
    buckets: int = DEFAULT_BUCKETS,
    ngrams: int = DEFAULT_NGRAMS,
    min_words: int = DEFAULT_MIN_WORDS,
    sampling: Sampling = "gumbel",
    group: str = "dsir",
    progress: Progress | None = None,
) -> MixtureWeights:
    """DSIR selection of the filtered workspace documents like ``target`` (see the module
    docstring). The result's params also record the target file and the filter."""
    sql, params = _where(flt)
    (pool,) = con.execute(
        f'SELECT coalesce(sum(n_tokens), 0) FROM "documents" WHERE ({sql})',
        [json_param(p) for p in params],
    ).fetchone()
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise StrategyInputError(f"budget: expected a positive number of tokens, got {budget!r}")
    for field, value, low in (
        ("min_words", min_words, 0),
        ("buckets", buckets, 2),
        ("ngrams", ngrams, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise StrategyInputError(f"{field}: expected an integer >= {low}, got {value!r}")
    if sampling not in ("gumbel", "top_k"):
        raise StrategyInputError(f"sampling: expected 'gumbel' or 'top_k', got {sampling!r}")
    if budget > int(pool):
        raise StrategyInputError(
            f"budget: {budget:,} tokens is more than the {int(pool):,} tokens of the candidate "
            "documents; lower --budget or widen the filter"
        )
    docs, feats = candidate_features(con, flt, buckets=buckets, ngrams=ngrams, progress=progress)
    res = dsir_select(
        docs,
        target.texts,
        budget=budget,
        buckets=buckets,
        ngrams=ngrams,
        seed=seed,
        sampling=sampling,
        min_words=min_words,
        group=group,
        doc_features=feats,
    )
    sel = res.extras["selection"]
    by_source = sel.groupby("source")["n_tokens"].sum().sort_values(ascending=False)
    pool = docs.groupby("source")["n_tokens"].sum()
    res.params["target"] = {
        "path": target.path,
        "sha256": target.sha256,
        "texts": len(target.texts),
        "chars": target.chars,
    }
    if hasattr(flt, "to_params"):
        res.params["filter"] = {str(k): str(v) for k, v in flt.to_params().items()}
    res.diagnostics["selected_tokens_by_source"] = {str(k): int(v) for k, v in by_source.items()}
    res.diagnostics["selected_share_of_source"] = {
        str(k): float(v / pool[k]) for k, v in by_source.items() if pool.get(k)
    }
    if progress:
        progress("select documents", 1, 1)
    return res


def dsir_selection(con: Any, doc_ids: list[str], *, flt: Any = None) -> tuple[Selection, dict]:
    """The manifest :class:`Selection` of exactly ``doc_ids`` and its stats."""
    ids = sorted(str(d) for d in doc_ids)
    sel = Selection(
        sql=DSIR_SQL,
        params=[ids],
        snapshot_hash=snapshot_hash(con),
        doc_ids_hash="pending",
        group_by=None,
        group_value=None,
        filter={str(k): str(v) for k, v in flt.to_params().items()}
        if hasattr(flt, "to_params")
        else None,
    )
    stats = selection_stats(con, sel)
    if stats["documents"] != len(set(ids)):
        raise StrategyInputError(
            f"selection: {len(set(ids)) - stats['documents']} selected doc id(s) are not in "
            "the workspace"
        )
    return sel.model_copy(update={"doc_ids_hash": stats["doc_ids_hash"]}), stats


def dsir_phase(
    con: Any,
    res: MixtureWeights,
    *,
    flt: Any = None,
    name: str = "dsir",
    locator_template: str | None = "{group}",
) -> Phase:
    """A whole phase made of the DSIR selection ``res`` (one group, weight 1, one epoch):
    its budget is the selected documents' tokens (the requested budget rounded up to whole
    documents), so materialising it writes each selected document exactly once."""
    from .builder import locators_for

    (gid,) = list(res)
    sel, stats = dsir_selection(con, list(res.extras["selection"]["doc_id"]), flt=flt)
    plan = plan_table(
        {gid: stats["tokens"]}, {gid: stats["documents"]}, {gid: 1.0}, int(stats["tokens"])
    )
    return build_phase(
        plan,
        name=name,
        budget_tokens=int(stats["tokens"]),
        method=res,
        selections={gid: sel},
        locators=locators_for([gid], locator_template),
    )


def create_dsir_manifest(
    con: Any,
    res: MixtureWeights,
    *,
    flt: Any = None,
    seed: int = 0,
    phase_name: str = "dsir",
    locator_template: str | None = "{group}",
    base: Manifest | None = None,
    tokenizer: Mapping[str, Any] | None = None,
) -> Manifest:
    """A manifest whose phase ``phase_name`` is the DSIR selection; with ``base``, that
    phase is appended after ``base``'s phases (same corpus snapshot required)."""
    from .builder import lake_snapshot_id, workspace_tokenizer

    phase = dsir_phase(con, res, flt=flt, name=phase_name, locator_template=locator_template)
    snap = snapshot_hash(con)
    phases: list[Phase] = []
    if base is not None:
        if base.corpus_snapshot_hash != snap:
            raise StrategyInputError(
                "append: the base mixture was made on another corpus snapshot; re-create it "
                "on the current corpus first"
            )
        if any(p.name == phase_name for p in base.phases):
            raise StrategyInputError(
                f"phase name: the base mixture already has a phase {phase_name!r}; pass "
                "another --phase-name"
            )
        phases = list(base.phases)
        seed = base.seed
    return build_manifest(
        phases=[*phases, phase],
        tokenizer=dict(tokenizer or workspace_tokenizer(con)),
        seed=int(seed),
        corpus_snapshot_hash=snap,
        corpus_snapshot_id=lake_snapshot_id(con),
    )


def add_dsir_group(
    con: Any,
    base: Manifest,
    res: MixtureWeights,
    *,
    phase: str,
    weight: float,
    flt: Any = None,
    locator_template: str | None = "{group}",
) -> Manifest:
    """``base`` with the DSIR selection ``res`` added as one more group of its phase
    ``phase``, taking ``weight`` of that phase's budget; the other groups keep their relative
    weights (scaled by 1 - ``weight``), and every target-token and epoch figure is re-planned
    (:func:`plan_table`). A selected document may also belong to another group of the phase:
    it is then drawn by both (DSIR upsamples on-target documents)."""
    from .builder import lake_snapshot_id, locators_for

    if not isinstance(weight, (int, float)) or not 0 < float(weight) < 1:
        raise StrategyInputError(f"dsir weight: expected a number in (0, 1), got {weight!r}")
    names = [p.name for p in base.phases]
    if phase not in names:
        raise StrategyInputError(f"phase: {phase!r} is not a phase of the base; it has {names}")
    snap = snapshot_hash(con)
    if base.corpus_snapshot_hash != snap:
        raise StrategyInputError(
            "append: the base mixture was made on another corpus snapshot; re-create it "
            "on the current corpus first"
        )
    (gid,) = list(res)
    ph = base.phases[names.index(phase)]
    if any(g.id == gid for g in ph.groups):
        raise StrategyInputError(f"phase {phase!r} already has a group {gid!r}")
    sel, stats = dsir_selection(con, list(res.extras["selection"]["doc_id"]), flt=flt)
    w = float(weight)
    tokens = {g.id: g.tokens for g in ph.groups} | {gid: stats["tokens"]}
    docs = {g.id: g.documents for g in ph.groups} | {gid: stats["documents"]}
    weights = {g.id: g.weight * (1 - w) for g in ph.groups} | {gid: w}
    caps_e = {g.id: g.caps.max_epochs for g in ph.groups} | {gid: None}
    caps_f = {g.id: g.caps.max_fraction for g in ph.groups} | {gid: None}
    plan = plan_table(
        tokens, docs, weights, ph.budget_tokens, max_epochs=caps_e, max_fraction=caps_f
    ).set_index("group")
    groups = []
    for g in ph.groups:
        row = plan.loc[g.id]
        groups.append(
            g.model_dump(mode="json")
            | {
                "weight": float(row["weight"]),
                "target_tokens": int(row["target_tokens"]),
                "epochs": float(row["epochs"]),
            }
        )
    row = plan.loc[gid]
    groups.append(
        {
            "id": gid,
            "locators": locators_for([gid], locator_template).get(gid, []),
            "documents": int(stats["documents"]),
            "tokens": int(stats["tokens"]),
            "selection": sel.model_dump(mode="json"),
            "weight": float(row["weight"]),
            "target_tokens": int(row["target_tokens"]),
            "epochs": float(row["epochs"]),
            "caps": {},
            "method": res.method_block(),
        }
    )
    new = ph.model_dump(mode="json") | {"groups": groups}
    phases = [new if p.name == phase else p.model_dump(mode="json") for p in base.phases]
    return build_manifest(
        phases=phases,
        tokenizer=base.tokenizer,
        seed=base.seed,
        corpus_snapshot_hash=snap,
        corpus_snapshot_id=lake_snapshot_id(con),
    )


def dsir_groups(manifest: Manifest) -> list[tuple[str, Any]]:
    """``(phase name, group)`` of every DSIR group of ``manifest``."""
    return [(p.name, g) for p in manifest.phases for g in p.groups if g.method.name == "dsir"]


def reproduce_dsir(
    con: Any,
    manifest: Manifest,
    *,
    targets: Mapping[str, str | Path] | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Re-run every DSIR group's selection from its target file on ``con`` (a trusted
    cursor on the manifest's snapshot) and compare with the recorded documents.

    ``targets``: phase name -> target path overriding the recorded one. Returns one row per
    DSIR group (``phase, group, target, documents, status``); raises
    :class:`ReproductionError` when a target file changed or the documents differ, and
    :class:`StrategyInputError` when a target file is missing.
    """
    from analytics.filters import DocFilter

    rows, diffs = [], []
    for phase, g in dsir_groups(manifest):
        p = g.method.params
        tgt = p.get("target") or {}
        path = (targets or {}).get(phase) or tgt.get("path")
        label = f"phase {phase!r} group {g.id!r}"
        if not path:
            raise StrategyInputError(f"{label}: the manifest records no target file")
        target = read_target(path)
        if target.sha256 != tgt.get("sha256"):
            diffs.append(
                f"{label}: target file {path} changed (sha256 {str(tgt.get('sha256'))[:12]}... "
                f"-> {target.sha256[:12]}...)"
            )
            continue
        flt = DocFilter.from_params(dict(p["filter"])) if p.get("filter") else None
        res = dsir_from_workspace(
            con,
            flt,
            target=target,
            budget=int(p["requested_budget"]),
            seed=int(p["seed"]),
            buckets=int(p["buckets"]),
            ngrams=int(p["ngrams"]),
            min_words=int(p["min_words"]),
            sampling=p.get("sampling", "gumbel"),
            group=g.id,
            progress=progress,
        )
        got = sorted(map(str, res.extras["selection"]["doc_id"]))
        want = list(g.selection.params[0]) if g.selection is not None else []
        same = got == want
        if not same:
            diffs.append(
                f"{label}: DSIR now selects {len(got)} documents, the manifest {len(want)} "
                f"({len(set(got) ^ set(want))} differ)"
            )
        rows.append(
            {
                "phase": phase,
                "group": g.id,
                "target": str(path),
                "documents": len(got),
                "status": "ok" if same else "differs",
            }
        )
    if diffs:
        raise ReproductionError(
            f"DSIR does not re-create the recorded selection: {len(diffs)} group(s) differ:\n  "
            + "\n  ".join(diffs),
            diffs,
        )
    return pd.DataFrame(rows, columns=["phase", "group", "target", "documents", "status"])


def selection_log_weights(res: MixtureWeights) -> pd.DataFrame:
    """The selected documents with their log importance weights, best first (for display)."""
    sel = res.extras.get("selection")
    if sel is None:
        return pd.DataFrame(columns=["doc_id", "source", "n_tokens", "log_weight"])
    cols = [c for c in ("doc_id", "source", "n_tokens", "log_weight") if c in sel.columns]
    return (
        sel[cols].sort_values("log_weight", ascending=False, kind="stable").reset_index(drop=True)
    )


__all__ = [
    "DSIR_SQL",
    "TargetTexts",
    "add_dsir_group",
    "candidate_features",
    "create_dsir_manifest",
    "dsir_from_workspace",
    "dsir_groups",
    "dsir_phase",
    "dsir_selection",
    "read_target",
    "reproduce_dsir",
    "selection_log_weights",
    "target_from_bytes",
]
