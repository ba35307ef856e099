"""Pictures that several tasks draw: a confusion matrix. Files only (no window), atomic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .files import atomic_write_with


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # draw into files only: no window, works on a server
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    atomic_write_with(path, lambda f: fig.savefig(f, format="png"))
    pyplot().close(fig)
    return path


def confusion_matrix(true: Any, predicted: Any, n_classes: int) -> Any:
    """counts[true, guess]: how often each true class got each answer (numpy, int)."""
    import numpy as np

    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (np.asarray(true), np.asarray(predicted)), 1)
    return counts


def plot_confusion(true: Any, predicted: Any, names: list[str], path: Path) -> Path:
    """Rows: the true class; columns: the model's answer. Off the diagonal = mistakes."""
    import numpy as np

    n = len(names)
    counts = confusion_matrix(true, predicted, n)
    plt = pyplot()
    size = 4 + 0.35 * max(0, n - 10)
    fig, ax = plt.subplots(figsize=(size + 1, size + 0.5), dpi=100)
    ax.imshow(counts, cmap="Blues")
    for row in range(n):
        for col in range(n):
            if counts[row, col]:
                color = "white" if counts[row, col] > counts.max() / 2 else "black"
                text = str(counts[row, col])
                ax.text(col, row, text, ha="center", va="center", color=color, fontsize=8)
    slanted = max(len(name) for name in names) > 2  # words, not digits: slant them to fit
    ax.set_xticks(
        range(n), names, rotation=45 if slanted else 0, ha="right" if slanted else "center"
    )
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    wrong = int(counts.sum() - np.trace(counts))
    ax.set_title(f"{wrong} of {int(counts.sum())} wrong")
    return save_figure(fig, path)
