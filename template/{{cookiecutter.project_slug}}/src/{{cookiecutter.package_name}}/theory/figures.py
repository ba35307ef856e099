"""The digits run's pictures: a confusion matrix (plots.py) and the images the CNN got wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plots import pyplot, save_figure


def plot_misclassified(
    images: Any, labels: Any, predicted: Any, path: Path, limit: int = 32
) -> Path:
    """A grid of the wrongly classified images, each titled 'true -> predicted'."""
    import numpy as np

    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predicted))[:limit]
    plt = pyplot()
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
    return save_figure(fig, path)
