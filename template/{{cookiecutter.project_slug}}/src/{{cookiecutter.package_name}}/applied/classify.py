"""Text classification with a pretrained encoder, trained by the project's own loop.

`data.kind: classify` selects it (configs/applied/classify.yaml): the core loop brings
checkpoints, exact resume, mixed precision, tracking and the run report. Three splits, never
mixed: the model learns from `train`; `eval/accuracy` and `eval/macro_f1` are measured on every
`val` text at each evaluation (choose settings with them); the `test` texts are scored once, at
the end, beside the TF-IDF baseline on the same split (`applied baseline`).

Fine-tuning a pretrained encoder gently (the fast.ai recipe), as config keys:
- freeze schedule: `finetune.head_steps` steps train only the new head, then
  `finetune.top_steps` steps the head and the top `finetune.top_layers` layers, then everything;
- discriminative learning rates: each layer further from the output learns at
  `finetune.layer_lr_decay` times the rate of the layer above it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from ..config import Config, require
from ..tasks import Task, register
from .data import DataError, LabelledTexts, augment, load_configured_texts
from .encoder import (
    EncoderConfig,
    build_classifier,
    class_probabilities,
    count_parameters,
    depth,
    encode,
    load_tokenizer,
)


@dataclass
class ClassifyData:
    kind: str = "classify"  # the task (applied track)
    path: str = ""  # CSV or JSONL with text and label columns; "" = the shipped learner questions
    text_column: str = "text"  # the column holding the texts
    label_column: str = "label"  # the column holding the labels
    split_column: str = "split"  # train/val/test per row, if the file has it
    val_fraction: float = 0.15  # without a split column: share of texts for validation
    test_fraction: float = 0.15  # without a split column: share of texts for the final test
    augment: float = 0.0  # probability of one random word edit per training text (0 = off)

    def check(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            require(0 < value < 0.5, f"data.{name} must be in (0, 0.5), got {value}")
        require(0 <= self.augment <= 1, f"data.augment must be in [0, 1], got {self.augment}")


@dataclass
class FinetuneConfig:
    head_steps: int = 0  # first steps: train only the new head (0 = skip)
    top_steps: int = 0  # then: the head and the top `top_layers` layers (0 = skip)
    top_layers: int = 2  # layers unfrozen in the second phase
    layer_lr_decay: float = 1.0  # each layer down learns at this times the rate above (1 = same)

    def check(self) -> None:
        for name in ("head_steps", "top_steps"):
            value = getattr(self, name)
            require(value >= 0, f"finetune.{name} must be >= 0, got {value}")
        require(self.top_layers >= 1, f"finetune.top_layers must be >= 1, got {self.top_layers}")
        require(
            0 < self.layer_lr_decay <= 1,
            f"finetune.layer_lr_decay must be in (0, 1], got {self.layer_lr_decay}",
        )


@dataclass
class ClassifyConfig(Config):
    model: EncoderConfig = field(default_factory=EncoderConfig)  # applied/encoder.py
    data: ClassifyData = field(default_factory=ClassifyData)  # labelled texts (applied/data.py)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # how gently to fine-tune

    def check_model(self) -> None:
        schedule = self.finetune.head_steps or self.finetune.top_steps
        require(
            not (self.model.lora_r and schedule),
            "LoRA already freezes the encoder: with model.lora_r set, leave finetune.head_steps "
            "and finetune.top_steps at 0",
        )


def macro_f1(true: list[int], predicted: list[int], classes: int) -> float:
    """The mean of the per-class F1 scores: every class counts the same, however rare."""
    from sklearn.metrics import f1_score

    return float(
        f1_score(true, predicted, labels=list(range(classes)), average="macro", zero_division=0)
    )


def scores(true: list[int], predicted: list[int], classes: int) -> dict[str, float]:
    right = sum(t == p for t, p in zip(true, predicted, strict=True))
    return {"accuracy": right / len(true), "macro_f1": macro_f1(true, predicted, classes)}


@register
class ClassifyTask(Task):
    name = "classify"
    config_class = ClassifyConfig
    unit = "texts"

    def __init__(self, cfg: Config, state: dict[str, Any] | None = None):
        super().__init__(cfg, state)
        self.data: LabelledTexts = load_configured_texts(cfg.data)
        if state and state.get("labels") and state["labels"] != self.data.labels:
            raise DataError(
                f"the labels changed since this run started ({', '.join(state['labels'])} -> "
                f"{', '.join(self.data.labels)}); start a new run instead of resuming"
            )
        self.labels = self.data.labels
        self.tokenizer = load_tokenizer(cfg.model.name)
        self._phase: int | None = None  # the freeze phase applied last (0, 1 or 2)
        self._test: tuple[list[int], list[int]] | None = None  # (true, predicted), once

    def state_dict(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def fingerprint(self) -> str:
        return self.data.digest

    def build_model(self) -> Any:
        model = build_classifier(self.cfg.model, self.labels)
        self.n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        if self.cfg.model.lora_r:
            n = count_parameters(model)
            print(
                f"LoRA r={self.cfg.model.lora_r}: training {n['trainable']:,} of "
                f"{n['total']:,} parameters ({n['share']:.2%})",
                file=sys.stderr,
            )
        return model

    # -- fine-tuning schedule ------------------------------------------------------------------

    def lr_scale(self, name: str) -> float:
        return self.cfg.finetune.layer_lr_decay ** depth(name, self.n_layers)

    def before_step(self, model: Any, step: int) -> None:
        f = self.cfg.finetune
        if self.cfg.model.lora_r or not (f.head_steps or f.top_steps):
            return
        phase = 0 if step < f.head_steps else 1 if step < f.head_steps + f.top_steps else 2
        if phase == self._phase:
            return
        deepest = (0, f.top_layers, self.n_layers + 1)[phase]
        for name, p in model.named_parameters():
            p.requires_grad_(depth(name, self.n_layers) <= deepest)
        self._phase = phase

    # -- batches and loss ----------------------------------------------------------------------

    def encode(self, texts: list[str], device: str) -> dict[str, Any]:
        return encode(self.tokenizer, texts, self.cfg.model.max_length, device)

    def get_batch(self, split: str, batch_size: int, generator: Any, device: str) -> tuple:
        import torch

        texts, ids = self.data.splits[split]
        pick = torch.randint(len(ids), (batch_size,), generator=generator).tolist()
        chosen = [texts[i] for i in pick]
        if split == "train" and self.cfg.data.augment > 0:
            chosen = [augment(t, self.cfg.data.augment, generator) for t in chosen]
        labels = torch.tensor([ids[i] for i in pick], device=device)
        return self.encode(chosen, device), labels

    def loss(self, model: Any, batch: tuple) -> Any:
        inputs, labels = batch
        return model(**inputs, labels=labels).loss

    def units(self, batch: tuple) -> int:
        return len(batch[1])

    # -- evaluation and report -----------------------------------------------------------------

    def predict(self, model: Any, texts: list[str], device: str) -> Any:
        """Class probabilities, (len(texts), classes), on the CPU."""
        return class_probabilities(model, self.tokenizer, texts, self.cfg.model.max_length, device)

    def eval_metrics(self, model: Any, device: str) -> dict[str, float]:
        """Accuracy and macro-F1 on every validation text."""
        texts, true = self.data.splits["val"]
        predicted = self.predict(model, texts, device).argmax(dim=1).tolist()
        return scores(true, predicted, len(self.labels))

    def test_predictions(self, model: Any, device: str) -> tuple[list[int], list[int]]:
        if self._test is None:
            texts, true = self.data.splits["test"]
            self._test = (true, self.predict(model, texts, device).argmax(dim=1).tolist())
        return self._test

    def report(self, model: Any, device: str) -> dict[str, Any]:
        """The test split, scored once: the model beside the baseline, and its mistakes."""
        from .baseline import run_baseline

        true, predicted = self.test_predictions(model, device)
        test = scores(true, predicted, len(self.labels))
        baseline = run_baseline(self.data)
        base = baseline["test"]
        texts = self.data.splits["test"][0]
        wrong = [i for i, (t, p) in enumerate(zip(true, predicted, strict=True)) if t != p]
        counts = self.data.counts()
        params = count_parameters(model)
        return {
            "test": test,
            "baseline": baseline,
            "labels": self.labels,
            "data": {"source": self.data.source, **counts},
            "parameters": params,
            "tables": [
                {
                    "title": f"Test split ({counts['test']} texts, scored once at the end)",
                    "columns": ["model", "accuracy", "macro-F1"],
                    "rows": [
                        ["this run", test["accuracy"], test["macro_f1"]],
                        [baseline["model"], base["accuracy"], base["macro_f1"]],
                    ],
                    "note": (
                        f"Trainable parameters: {params['trainable']:,} of {params['total']:,} "
                        f"({params['share']:.2%}). Data: {self.data.source} "
                        f"({counts['train']} train / {counts['val']} val / {counts['test']} "
                        "test texts)."
                    ),
                }
            ],
            "examples": [
                {"input": texts[i], "target": self.labels[true[i]], "output": self.labels[p]}
                for i, p in ((i, predicted[i]) for i in wrong[:10])
            ],
        }

    def figures(self, model: Any, device: str, run_dir: Any) -> list[dict[str, str]]:
        from ..plots import plot_confusion

        true, predicted = self.test_predictions(model, device)
        plot_confusion(true, predicted, self.labels, run_dir / "confusion.png")
        title = f"Confusion matrix (test split, {len(true)} texts)"
        return [{"title": title, "file": "confusion.png"}]
