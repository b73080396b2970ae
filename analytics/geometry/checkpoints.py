"""Find checkpoints: run directories, single model directories, path lists, hub revisions.

Accepted specs (:func:`discover_checkpoints`):

* a run directory whose sub-directories are checkpoints named like
  ``checkpoint-{step}`` (HF Trainer), ``step{N}`` (Pythia revisions),
  ``stage1-step{N}-tokens{T}B`` (OLMo 2 revisions) or anything containing ``step{N}`` /
  ``step-{N}`` / ``step_{N}`` / ``iter_{N}``; the step (and tokens in billions, when
  present) is parsed from the name;
* a single model directory (holds ``config.json``); its step comes from
  ``trainer_state.json``'s ``global_step``, else from its name, else None;
* a list of any of the above;
* a hub id with revisions, ``org/name@rev1,rev2`` (or ``org/name`` for ``main``), loaded
  lazily by transformers when the hub is reachable.

A checkpoint directory must hold ``config.json``. Its tokenizer may live in the
directory itself or in the run directory above it (HF Trainer saves it in both only when
asked); :func:`require_tokenizer` raises :class:`TokenizerMissingError` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckpointError, TokenizerMissingError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
WEIGHT_PATTERNS = (
    "model.safetensors",
    "model-*.safetensors",
    "pytorch_model.bin",
    "pytorch_model-*.bin",
)

_STEP_PATTERNS = (
    re.compile(r"^checkpoint[-_](\d+)$"),
    re.compile(r"(?:^|[^a-z])step[-_]?(\d+)", re.IGNORECASE),
    re.compile(r"(?:^|[^a-z])iter(?:ation)?[-_]?(\d+)", re.IGNORECASE),
)
_TOKENS_PATTERN = re.compile(r"tokens[-_]?(\d+(?:\.\d+)?)\s*([BMKT])", re.IGNORECASE)
_TOKENS_SCALE = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?$")  # "gpt2" or "org/name", before "@"


@dataclass(frozen=True)
class Checkpoint:
    """One model to load.

    name: display label (directory name or ``hub_id@revision``); path: local directory or
    hub id; revision: hub revision (None for local); step: training step or None;
    tokens_b: tokens seen in billions when the name says so; tokenizer_path: where the
    tokenizer lives (None = not found; hub checkpoints use ``path``); source: "dir" or "hub".
    """

    name: str
    path: str
    revision: str | None = None
    step: int | None = None
    tokens_b: float | None = None
    tokenizer_path: str | None = None
    source: str = "dir"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_hub(self) -> bool:
        return self.source == "hub"

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained`` (revision for hub checkpoints)."""
        return {"revision": self.revision} if self.revision else {}


def parse_step(name: str) -> int | None:
    """Training step encoded in a checkpoint or revision name, or None.

    >>> parse_step("checkpoint-500"), parse_step("step1000")
    (500, 1000)
    >>> parse_step("stage1-step928646-tokens3896B")
    928646
    """
    for pat in _STEP_PATTERNS:
        m = pat.search(name)
        if m:
            return int(m.group(1))
    return None


def parse_tokens_b(name: str) -> float | None:
    """Tokens (in billions) encoded in a name like ``...-tokens3896B``, or None."""
    m = _TOKENS_PATTERN.search(name)
    if not m:
        return None
    return float(m.group(1)) * _TOKENS_SCALE[m.group(2).upper()]


def has_config(path: Path) -> bool:
    return (path / "config.json").is_file()


def has_tokenizer(path: Path) -> bool:
    return any((path / f).is_file() for f in TOKENIZER_FILES)


def _trainer_step(path: Path) -> int | None:
    f = path / "trainer_state.json"
    if not f.is_file():
        return None
    try:
        return int(json.loads(f.read_text())["global_step"])
    except (ValueError, KeyError, TypeError, OSError):
        return None


def _local_checkpoint(path: Path, *, run_dir: Path | None, tokenizer: str | None) -> Checkpoint:
    if not has_config(path):
        raise CheckpointError(
            f"{path}: holds no checkpoint (no config.json); expected a Hugging Face model "
            "directory or a run directory with checkpoint-{step}/ sub-directories"
        )
    step = parse_step(path.name)
    if step is None:
        step = _trainer_step(path)
    tok: str | None = tokenizer
    if tok is None:
        for cand in (path, run_dir):
            if cand is not None and has_tokenizer(cand):
                tok = str(cand)
                break
    return Checkpoint(
        name=path.name,
        path=str(path),
        step=step,
        tokens_b=parse_tokens_b(path.name),
        tokenizer_path=tok,
        source="dir",
    )


def _is_checkpoint_dirname(name: str) -> bool:
    return parse_step(name) is not None


def _from_run_dir(root: Path, tokenizer: str | None) -> list[Checkpoint]:
    subs = sorted(p for p in root.iterdir() if p.is_dir() and _is_checkpoint_dirname(p.name))
    out: list[Checkpoint] = []
    for sub in subs:
        if not has_config(sub):
            raise CheckpointError(
                f"{sub}: looks like a checkpoint directory (step {parse_step(sub.name)}) but holds "
                "no config.json; remove it or point at the complete checkpoints only"
            )
        out.append(_local_checkpoint(sub, run_dir=root, tokenizer=tokenizer))
    return out


def _from_hub(spec: str, tokenizer: str | None) -> list[Checkpoint]:
    repo, _, revs = spec.partition("@")
    if not _HUB_REPO.match(repo):
        raise CheckpointError(
            f"{spec}: not an existing path and not a hub id like org/name@rev1,rev2"
        )
    revisions = [r.strip() for r in revs.split(",") if r.strip()] if revs else ["main"]
    return [
        Checkpoint(
            name=f"{repo}@{rev}",
            path=repo,
            revision=rev,
            step=parse_step(rev),
            tokens_b=parse_tokens_b(rev),
            tokenizer_path=tokenizer or repo,
            source="hub",
        )
        for rev in revisions
    ]


def discover_checkpoints(
    spec: str | Path | Sequence[str | Path],
    *,
    tokenizer: str | Path | None = None,
) -> list[Checkpoint]:
    """Resolve ``spec`` to checkpoints sorted by (step, name); steps None sort last.

    ``tokenizer`` overrides where the tokenizer is read from for every checkpoint.
    Raises :class:`CheckpointError` for a missing path, a directory that holds no
    checkpoint, or a malformed hub spec.
    """
    tok = str(tokenizer) if tokenizer is not None else None
    specs: Iterable[str | Path] = [spec] if isinstance(spec, (str, Path)) else list(spec)
    found: list[Checkpoint] = []
    for item in specs:
        s = str(item)
        p = Path(s).expanduser()
        if p.exists():
            if not p.is_dir():
                raise CheckpointError(f"{p}: expected a directory, got a file")
            if has_config(p):
                found.append(
                    _local_checkpoint(
                        p, run_dir=p.parent if not has_tokenizer(p) else None, tokenizer=tok
                    )
                )
                continue
            subs = _from_run_dir(p, tok)
            if not subs:
                raise CheckpointError(
                    f"{p}: holds no checkpoint (no config.json, and no sub-directory named like "
                    "checkpoint-{step}, step{N} or stage1-step{N}-tokens{T}B)"
                )
            found.extend(subs)
        elif "@" in s or (_HUB_ID.match(s) and not s.startswith((".", "/", "~"))):
            found.extend(_from_hub(s, tok))
        else:
            raise CheckpointError(
                f"{s}: no such file or directory (and not a hub id org/name@revision)"
            )
    if not found:
        raise CheckpointError(f"{spec!r}: no checkpoints found")
    return sorted(
        found, key=lambda c: (c.step is None, c.step if c.step is not None else 0, c.name)
    )


def require_tokenizer(ckpt: Checkpoint) -> str:
    """Path or hub id to load the tokenizer from, or a clear :class:`TokenizerMissingError`."""
    if ckpt.tokenizer_path:
        return ckpt.tokenizer_path
    raise TokenizerMissingError(
        f"{ckpt.path}: no tokenizer found (none of {', '.join(TOKENIZER_FILES)} in the checkpoint "
        "or its run directory); save the tokenizer with the checkpoint or pass tokenizer=PATH"
    )


def checkpoint_fingerprint(ckpt: Checkpoint) -> str:
    """Stable content fingerprint used in cache keys.

    Local: sha256 over config.json and, for each weight file, its name, size and the
    sha256 of its first and last MiB (cheap for multi-GB shards, changes when weights
    change). Hub: ``hub:{id}@{revision}`` (revisions are immutable names by convention).
    """
    if ckpt.is_hub:
        return f"hub:{ckpt.path}@{ckpt.revision}"
    root = Path(ckpt.path)
    h = hashlib.sha256()
    h.update((root / "config.json").read_bytes())
    files = sorted({f for pat in WEIGHT_PATTERNS for f in root.glob(pat)})
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            h.update(fh.read(1 << 20))
            if size > (2 << 20):
                fh.seek(-(1 << 20), 2)
                h.update(fh.read(1 << 20))
    return "sha256:" + h.hexdigest()


def load_state_dict(ckpt: Checkpoint) -> dict[str, Any]:
    """Weights of a checkpoint as name -> torch tensor (CPU), without building the model.

    Local: ``*.safetensors`` (single or sharded) or ``pytorch_model*.bin`` (loaded with
    ``weights_only=True``). Hub: the safetensors files are fetched with huggingface_hub
    (needs network). Raises :class:`CheckpointError` when no weight file exists.
    """
    if ckpt.is_hub:  # pragma: no cover - needs network
        from huggingface_hub import snapshot_download

        local = snapshot_download(
            ckpt.path, revision=ckpt.revision, allow_patterns=["*.safetensors", "*.json"]
        )
        root = Path(local)
    else:
        root = Path(ckpt.path)
    st_files = sorted(root.glob("*.safetensors"))
    if st_files:
        from safetensors.torch import load_file

        out: dict[str, Any] = {}
        for f in st_files:
            out.update(load_file(str(f), device="cpu"))
        return out
    bin_files = sorted(root.glob("pytorch_model*.bin"))
    if bin_files:
        import torch

        out = {}
        for f in bin_files:
            out.update(torch.load(str(f), map_location="cpu", weights_only=True))
        return out
    raise CheckpointError(f"{root}: no weight files (*.safetensors or pytorch_model*.bin)")
