"""Model-based classifier signals: a Hugging Face sequence-classification model or a fastText
model scores every document (FineWeb-Edu-style educational score, topic, language...).

* Hugging Face (`AutoModelForSequenceClassification`: a local directory, or a hub id when the
  hub is reachable): texts are tokenized with the model's tokenizer (truncated to
  `max_length` tokens), batched, run on `device` (cpu, cuda, cuda:N, mps; `auto` = cuda when
  available) in `dtype` (float32; float16/bfloat16 on a GPU). A regression head
  (`problem_type == "regression"` or a single output, as FineWeb-Edu's classifier) gives the
  column `<name>_score` = the raw output; a classification head gives `<name>_label` (the
  `id2label` of the arg-max) and `<name>_prob` (its softmax probability).
* fastText (a `.bin`/`.ftz` file, package `fasttext-wheel`): `<name>_label` (without the
  `__label__` prefix) and `<name>_prob`, on the text with newlines replaced by spaces (as
  fastText's own `predict` requires).

The signal's version hashes the model (the files of a local model, the resolved commit of a
hub model), `max_length` and `dtype`, so another model or setting is a new version.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from analytics.signals.base import Column, SignalError, canonical_json, texts_of
from analytics.signals.external import ExternalSignal, check_columns, check_new_name, define

FASTTEXT_SUFFIXES = (".bin", ".ftz")
DTYPES = ("float32", "float16", "bfloat16")


class ClassifierError(SignalError):
    """A model that cannot be loaded as a classifier."""


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ClassifierError(f"--device {device}: no CUDA device is available here")
    return device


def _fingerprint(path: Path) -> str:
    """sha256 over the names and bytes of a model's files (a directory or one file)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f.name.startswith("."):
            continue
        h.update(str(f.relative_to(path.parent if path.is_file() else path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class HFClassifier:
    """A loaded sequence-classification model; `predict(texts)` -> {column suffix: values}."""

    kind = "hf"

    def __init__(self, model: str, *, device: str = "cpu", dtype: str = "float32",
                 max_length: int | None = None) -> None:  # fmt: skip
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        try:
            config = AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClassifierError(
                f"--model {model}: not a Hugging Face model (local directory with config.json "
                f"or hub id) nor a fastText .bin/.ftz file: {first}"
            ) from None
        archs = list(getattr(config, "architectures", None) or [])
        if not any(a.endswith("ForSequenceClassification") for a in archs):
            raise ClassifierError(
                f"--model {model}: not a sequence classifier (architectures: "
                f"{', '.join(archs) or 'none'}); expected a *ForSequenceClassification model, "
                "e.g. HuggingFaceFW/fineweb-edu-classifier"
            )
        if dtype not in DTYPES:
            raise ClassifierError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
        self.device = resolve_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                model, dtype=getattr(torch, dtype)
            )
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ClassifierError(f"--model {model}: cannot load it: {first}") from None
        self.model.eval().to(self.device)
        cfg = self.model.config
        self.regression = cfg.problem_type == "regression" or cfg.num_labels == 1
        self.id2label = {int(k): str(v) for k, v in (cfg.id2label or {}).items()}
        limit = min(getattr(self.tokenizer, "model_max_length", 512) or 512, 512)
        positions = getattr(cfg, "max_position_embeddings", None)
        if positions:
            limit = min(limit, int(positions))
        self.max_length = int(max_length or limit)
        commit = getattr(cfg, "_commit_hash", None)
        local = Path(model)
        self.fingerprint = _fingerprint(local) if local.exists() else (commit or model)

    def columns(self, name: str) -> list[Column]:
        if self.regression:
            return [Column(f"{name}_score", "DOUBLE", "the model's regression output")]
        return [
            Column(f"{name}_label", "VARCHAR", "the predicted label (arg-max)"),
            Column(f"{name}_prob", "DOUBLE", "softmax probability of the predicted label"),
        ]

    def logits(self, texts: list[str]):
        import torch

        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            return self.model(**enc).logits.float().cpu()

    def predict(self, texts: list[str], batch_size: int = 32) -> dict[str, list]:
        import torch

        out: dict[str, list] = {"score": []} if self.regression else {"label": [], "prob": []}
        # sort by length so a batch pads little; results go back in input order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        res: list[Any] = [None] * len(texts)
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            logits = self.logits([texts[i] for i in idx])
            if self.regression:
                vals = logits[:, 0].tolist()
                for i, v in zip(idx, vals, strict=True):
                    res[i] = (v,)
            else:
                probs = torch.softmax(logits, dim=-1)
                p, k = probs.max(dim=-1)
                for i, pi, ki in zip(idx, p.tolist(), k.tolist(), strict=True):
                    res[i] = (self.id2label.get(ki, str(ki)), pi)
        for row in res:
            for key, v in zip(out, row, strict=True):
                out[key].append(v)
        return out


class FastTextClassifier:
    kind = "fasttext"

    def __init__(self, model: str) -> None:
        from analytics.signals.base import lazy_import

        ft = lazy_import("fasttext", "fasttext-wheel", "fastText classifier signals")
        try:
            self.model = ft.load_model(model)
        except (ValueError, OSError) as exc:
            raise ClassifierError(f"--model {model}: not a fastText model: {exc}") from None
        if not self.model.get_labels() or not str(self.model.get_labels()[0]).startswith(
            "__label__"
        ):
            raise ClassifierError(
                f"--model {model}: a fastText model without labels (word vectors), not a "
                "supervised classifier"
            )
        self.device = "cpu"
        self.max_length = None
        self.fingerprint = _fingerprint(Path(model))

    def columns(self, name: str) -> list[Column]:
        return [
            Column(f"{name}_label", "VARCHAR", "the predicted fastText label"),
            Column(f"{name}_prob", "DOUBLE", "its probability"),
        ]

    def predict(self, texts: list[str], batch_size: int = 0) -> dict[str, list]:
        # one line each, ending in a newline, as fastText's own predict() passes them
        lines = [t.replace("\n", " ").replace("\r", " ") + "\n" for t in texts]
        # the low-level call: fasttext-wheel's `predict` breaks on NumPy 2 (np.array copy=False)
        labels, probs = self.model.f.multilinePredict(lines, 1, 0.0, "strict")
        return {
            "label": [lab[0].removeprefix("__label__") if lab else None for lab in labels],
            "prob": [float(p[0]) if len(p) else None for p in probs],
        }


def load_classifier(model: str, *, device: str = "cpu", dtype: str = "float32",
                    max_length: int | None = None):  # fmt: skip
    """A fastText model for a .bin/.ftz file, else a Hugging Face classifier."""
    path = Path(model)
    if path.suffix in FASTTEXT_SUFFIXES:
        if not path.is_file():
            raise ClassifierError(f"--model {model}: no such file")
        return FastTextClassifier(model)
    if path.is_file():
        raise ClassifierError(
            f"--model {model}: a file that is neither a fastText model (.bin/.ftz) nor a "
            "Hugging Face model directory"
        )
    if not path.exists() and (model.startswith(("/", ".", "~")) or model.count("/") > 1):
        raise ClassifierError(f"--model {model}: no such directory (nor a hub id owner/name)")
    return HFClassifier(model, device=device, dtype=dtype, max_length=max_length)


_cache: dict[tuple, Any] = {}
_lock = threading.Lock()


def cached_classifier(model: str, device: str, dtype: str, max_length: int | None):
    key = (model, device, dtype, max_length)
    with _lock:
        if key not in _cache:
            _cache.clear()  # one model in memory at a time
            _cache[key] = load_classifier(model, device=device, dtype=dtype, max_length=max_length)
        return _cache[key]


class ClassifierSignal(ExternalSignal):
    """A classifier's outputs as a row signal (the class is made per workspace signal)."""

    #: the device and batch size of this process (not part of the version)
    run_device: ClassVar[str] = "cpu"
    run_batch_size: ClassVar[int] = 32

    def compute(self, batch: pa.Table) -> pa.Table:
        texts = texts_of(batch)
        p = self.params
        clf = cached_classifier(p["model"], self.run_device, p["dtype"], p.get("max_length"))
        pred = clf.predict(texts, batch_size=self.run_batch_size)
        values = {f"{self.name}_{k}": v for k, v in pred.items()}
        return self._result(batch, values)


def define_classifier(con, *, name: str, model: str, device: str = "cpu",
                      dtype: str = "float32", max_length: int | None = None,
                      batch_size: int = 32, replace: bool = False) -> ClassifierSignal:  # fmt: skip
    """Load `model` (checking it is a classifier), record signal `name` (in `con`'s
    transaction; commit it before running) and return the signal, ready for
    `run_signals(con, [signal])`. The same name with the same model and settings is the same
    signal (a rerun continues where the last run stopped); another model under an existing
    name needs `replace`."""
    from analytics.signals.external import definitions, sync_external
    from analytics.signals.registry import SIGNALS

    if batch_size < 1:
        raise ClassifierError("--batch-size must be at least 1")
    check_new_name(con, name, "classify", replace=True)  # name syntax and built-in clash
    run_device = resolve_device(device)
    clf = cached_classifier(model, run_device, dtype, max_length)
    cols = clf.columns(name)
    params = {
        "model": str(Path(model).resolve()) if Path(model).exists() else model,
        "kind": clf.kind,
        "fingerprint": clf.fingerprint,
        "dtype": dtype if clf.kind == "hf" else "float32",
        "max_length": clf.max_length,
    }
    version = "classify." + hashlib.sha1(canonical_json(params).encode()).hexdigest()[:10]
    old = definitions(con).get(name)
    if old is not None and old["version"] == version and old["origin"] == "classify":
        sync_external(con)
        sig = SIGNALS[name]()
    else:
        check_new_name(con, name, "classify", replace=replace)
        check_columns(name, cols)
        sig = define(con, name=name, origin="classify", version=version, columns=cols,
                     params=params, provenance={"model": model, "kind": clf.kind})  # fmt: skip
    # the classifier just loaded stays in the cache under the params' model path
    _cache[(params["model"], run_device, params["dtype"], params["max_length"])] = clf
    type(sig).run_device = run_device
    type(sig).run_batch_size = batch_size
    return sig


def describe_model(model: str) -> dict[str, Any]:
    """What `model` is (kind, head, labels) without recording anything."""
    clf = load_classifier(model)
    info = {"kind": clf.kind, "columns": [c.name for c in clf.columns("NAME")]}
    if clf.kind == "hf":
        info["head"] = "regression" if clf.regression else "classification"
        info["labels"] = json.loads(json.dumps(clf.id2label))
    return info
