"""The digits run's pictures: a confusion matrix and the images the CNN got wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import atomic_write_with


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # draw into files only: no window, works on a server
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    atomic_write_with(path, lambda f: fig.savefig(f, format="png"))
    _pyplot().close(fig)
    return path


def confusion_matrix(labels: Any, predicted: Any, n_classes: int) -> Any:
    """counts[true, guess]: how often each true class got each answer (numpy, int)."""
    import numpy as np

    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (np.asarray(labels), np.asarray(predicted)), 1)
    return counts


def plot_confusion(labels: Any, predicted: Any, n_classes: int, path: Path) -> Path:
    """Rows: the true digit; columns: the model's answer. Off the diagonal = mistakes."""
    import numpy as np

    counts = confusion_matrix(labels, predicted, n_classes)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    ax.imshow(counts, cmap="Blues")
    for true in range(n_classes):
        for guess in range(n_classes):
            if counts[true, guess]:
                dark = counts[true, guess] > counts.max() / 2
                color = "white" if dark else "black"
                text = str(counts[true, guess])
                ax.text(guess, true, text, ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    wrong = int(counts.sum() - np.trace(counts))
    ax.set_title(f"{wrong} of {int(counts.sum())} wrong")
    return _save(fig, path)


def plot_misclassified(
    images: Any, labels: Any, predicted: Any, path: Path, limit: int = 32
) -> Path:
    """A grid of the wrongly classified images, each titled 'true -> predicted'."""
    import numpy as np

    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predicted))[:limit]
    plt = _pyplot()
    cols = max(1, min(8, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 0.4, 1.4 * rows + 0.4), dpi=100)
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "none wrong", ha="center", va="center")
    for ax, i in zip(axes, wrong, strict=False):
        ax.imshow(np.asarray(images[i]).reshape(images.shape[-2:]), cmap="gray_r")
        ax.set_title(f"{int(labels[i])} -> {int(predicted[i])}", fontsize=9)
    return _save(fig, path)
