"""Shared by the applied tests: a tiny encoder folder, labelled texts, one trained classifier.

The tiny encoder is a 2-layer, 32-wide BERT built from a config and saved with the shipped
MiniLM's tokenizer: it goes through exactly the `from_pretrained(folder)` path the real
encoder does, in about a second. The texts are generated: three topics, each with its own
words, so even this small model learns them in a few dozen steps.
"""

import csv
import random

import pytest

from {{ cookiecutter.package_name }}.config import from_dict
from {{ cookiecutter.package_name }}.train import run

TOPICS = {
    "setup": ["install", "python version", "cuda driver", "pip wheel", "virtual environment"],
    "training": ["loss curve", "learning rate", "overfitting", "nan loss", "batch size"],
    "retrieval": ["search index", "embeddings", "chunk size", "reranker", "citations"],
}
OPENINGS = ["how do I fix my", "why is my", "question about the", "help with", "what about the"]
ENDINGS = ["", "today", "on my laptop", "in colab", "after the update", "again"]


def write_labelled_csv(path, per_label: int = 30, seed: int = 0, split: bool = False):
    """A CSV of generated texts (text,label[,split]); every text different."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, topics in TOPICS.items():
        while sum(r["label"] == label for r in rows) < per_label:
            text = f"{rng.choice(OPENINGS)} {rng.choice(topics)} {rng.choice(ENDINGS)}".strip()
            text += f" #{len(rows)}"  # a unique tail: no duplicates across splits
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    columns = ["text", "label"]
    if split:
        columns.append("split")
        for i, row in enumerate(rows):
            row["split"] = ("train", "train", "train", "val", "test")[i % 5]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def labelled_csv(tmp_path_factory):
    return write_labelled_csv(tmp_path_factory.mktemp("texts") / "texts.csv")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A folder holding a 2-layer, 32-wide BERT (random weights) and the MiniLM tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from {{ cookiecutter.package_name }}.applied.encoder import encoder_path

    folder = tmp_path_factory.mktemp("tiny-encoder")
    tokenizer = AutoTokenizer.from_pretrained(encoder_path(""))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def classify_config(tiny_encoder, labelled_csv, **extra):
    """A classify config on the tiny encoder: trains in a couple of seconds on 2 cores."""
    train = {
        "device": "cpu",
        "max_steps": 30,
        "batch_size": 16,
        "lr": 1e-2,  # a random tiny encoder, not a pretrained one: it needs a large rate
        "warmup_steps": 3,
        "eval_interval": 15,
        "eval_iters": 2,
        "log_interval": 5,
        "checkpoint_interval": 15,
        "sample_tokens": 0,
    }
    data = {
        "model": {"name": str(tiny_encoder), "max_length": 32},
        "data": {"kind": "classify", "path": str(labelled_csv)},
        "train": train,
    }
    for key, value in extra.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    return from_dict(data)


@pytest.fixture(scope="session")
def classify_run(tiny_encoder, labelled_csv, tmp_path_factory):
    """One classifier trained for real (30 steps of the tiny encoder): a finished run folder."""
    config = classify_config(tiny_encoder, labelled_csv)
    return run(config=config, runs_dir=tmp_path_factory.mktemp("runs"))
