"""The theory track's task: the from-scratch CNN learns scikit-learn's 8x8 digits.

`data.kind: digits` in a config selects it (configs/theory/digits.yaml); the core's training
loop does the rest (checkpoints, resume, metrics, report). The core finds this module at run
time and never imports it by name.

Three sets, never mixed: 20 % of the 1797 images is the test set, fixed once (seed 0, every
digit in proportion) and reported as `eval/accuracy`. Choose settings with
`data.holdout: tune` instead: then a tuning set is cut from the training images and the test
set is not touched at all, so the test figure stays a fair estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import Config, require
from ..tasks import Task, register
from .cnn import CNN, CNNConfig
from .layers import pad2d


@dataclass
class DigitsData:
    kind: str = "digits"  # the task (theory track)
    val_fraction: float = 0.2  # share of the images held out (the test set)
    holdout: str = "test"  # test: evaluate on the test set | tune: on a tuning set instead
    shift: int = 1  # augmentation: move each training image by up to this many pixels

    CHOICES: ClassVar = {"holdout": ("test", "tune")}

    def check(self) -> None:
        require(
            0 < self.val_fraction < 1,
            f"data.val_fraction must be in (0, 1), got {self.val_fraction}",
        )
        require(0 <= self.shift <= 2, f"data.shift must be 0, 1 or 2, got {self.shift}")


@dataclass
class DigitsConfig(Config):
    model: CNNConfig = field(default_factory=CNNConfig)  # theory/cnn.py
    data: DigitsData = field(default_factory=DigitsData)  # scikit-learn's 8x8 digits

    def check_model(self) -> None:
        """CNNConfig.check() holds the model's rules (run by check_all)."""


def split_indices(labels: Any, holdout: str, fraction: float) -> tuple[Any, Any]:
    """(train, held-out) indices; stratified, so each digit keeps its share in both."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    everything = np.arange(len(labels))
    train, test = train_test_split(everything, test_size=fraction, stratify=labels, random_state=0)
    if holdout == "test":
        return train, test
    # Tuning: split the training images again; the test images stay unseen.
    return train_test_split(train, test_size=fraction, stratify=labels[train], random_state=0)


def shift_images(images: Any, max_shift: int, generator: Any) -> Any:
    """Move each image by a random (dy, dx) in [-max_shift, max_shift], filling with zeros.

    A digit moved by one pixel is still the same digit: the network learns that, instead of
    learning where on the 8x8 grid the training digits happened to sit.
    """
    import torch

    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    size = 2 * max_shift + 1
    # Every shifted copy at once: (N, 1, size, size, h, w), a view of the padded images.
    shifted = pad2d(images, max_shift).unfold(2, h, 1).unfold(3, w, 1)
    dy = torch.randint(size, (n,), generator=generator)
    dx = torch.randint(size, (n,), generator=generator)
    return shifted[torch.arange(n), :, dy, dx]  # (N, 1, h, w)


@register
class DigitsTask(Task):
    name = "digits"
    config_class = DigitsConfig
    unit = "images"
    CLASSES = 10

    def __init__(self, cfg: Config, state: dict[str, Any] | None = None):
        import torch
        from sklearn.datasets import load_digits

        super().__init__(cfg, state)
        digits = load_digits()  # 1797 images, 8x8, grey levels 0..16; ships with scikit-learn
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.tensor(digits.target, dtype=torch.long)
        train, held_out = split_indices(digits.target, cfg.data.holdout, cfg.data.val_fraction)
        self.splits = {
            "train": (images[train], labels[train]),
            "val": (images[held_out], labels[held_out]),
        }

    def fingerprint(self) -> str:
        d = self.cfg.data
        return f"digits-{d.holdout}-{d.val_fraction}"

    def build_model(self) -> CNN:
        return CNN(self.cfg.model)

    def get_batch(self, split: str, batch_size: int, generator: Any, device: str) -> tuple:
        import torch

        images, labels = self.splits[split]
        pick = torch.randint(len(labels), (batch_size,), generator=generator)
        x, y = images[pick], labels[pick]
        if split == "train":
            x = shift_images(x, self.cfg.data.shift, generator)
        return x.to(device), y.to(device)

    def units(self, batch: tuple) -> int:
        return len(batch[1])

    def predict(self, model: Any, device: str) -> tuple[Any, Any, Any]:
        """(images, predicted labels, true labels) for every held-out image."""
        import torch

        images, labels = self.splits["val"]
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits, _ = model(images.to(device))
        model.train(was_training)
        return images, logits.argmax(dim=1).cpu(), labels

    def eval_metrics(self, model: Any, device: str) -> dict[str, float]:
        """Accuracy on every held-out image (not a sample of batches)."""
        _, predicted, labels = self.predict(model, device)
        return {"accuracy": float((predicted == labels).float().mean())}

    def report(self, model: Any, device: str) -> dict[str, Any]:
        from ..plots import confusion_matrix

        _, predicted, labels = self.predict(model, device)
        confusion = confusion_matrix(labels, predicted, self.CLASSES)
        wrong = int((predicted != labels).sum())
        return {
            "held_out": {"images": len(labels), "misclassified": wrong, "set": self.held_out},
            "confusion": confusion.tolist(),  # rows: true digit, columns: predicted digit
        }

    @property
    def held_out(self) -> str:
        return "test" if self.cfg.data.holdout == "test" else "tuning"

    def figures(self, model: Any, device: str, run_dir: Any) -> list[dict[str, str]]:
        from ..plots import plot_confusion
        from .figures import plot_misclassified

        images, predicted, labels = self.predict(model, device)
        digits = [str(d) for d in range(self.CLASSES)]
        plot_confusion(labels, predicted, digits, run_dir / "confusion.png")
        plot_misclassified(images, labels, predicted, run_dir / "misclassified.png")
        where = f"{self.held_out} set, {len(labels)} images"
        return [
            {"title": f"Confusion matrix ({where})", "file": "confusion.png"},
            {"title": f"Misclassified digits ({where})", "file": "misclassified.png"},
        ]
