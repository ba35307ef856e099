"""Lab 01: linear and logistic regression from scratch, checked against scikit-learn.

Both models are a weight vector `w` and a bias `b`:

- linear regression predicts `X @ w + b` and minimises the mean squared error;
- logistic regression predicts `sigmoid(X @ w + b)`, the probability of class 1, and minimises
  the cross-entropy plus an L2 penalty on `w` (scikit-learn does the same by default).

Linear regression is fitted two ways: in closed form (least squares, the normal equations) and
by gradient descent; logistic regression has no closed form, only gradient descent. Then
scikit-learn fits the same models on the same split. If our code is right, the weights agree
to a few decimals and so do the test scores.

The data ship inside scikit-learn, so nothing is downloaded: `diabetes` (442 patients, 10
features, a disease-progression score) and `breast_cancer` (569 tumours, 30 features, benign
or malignant). Shapes: n = rows, d = features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import require
from ..errors import UserError
from ..files import atomic_write_with

TOLERANCE = 1e-2  # "agrees with scikit-learn": weights within 1 % of the largest weight


@dataclass
class RegressionSettings:
    seed: int = 0  # the train/test split
    test_fraction: float = 0.2  # share of each dataset held out for the test scores
    linear_lr: float = 0.2  # gradient-descent step size, linear regression
    linear_steps: int = 3000  # gradient-descent steps, linear regression
    logistic_lr: float = 1.0  # gradient-descent step size, logistic regression
    logistic_steps: int = 3000  # gradient-descent steps, logistic regression
    c: float = 1.0  # scikit-learn's C: the inverse strength of the L2 penalty
    loss_plot: str = "runs/theory/regression-loss.png"  # PNG of the gradient-descent losses

    def check(self) -> None:
        require(
            0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}"
        )
        require(self.linear_lr > 0 and self.logistic_lr > 0, "the learning rates must be > 0")
        require(self.linear_steps >= 1 and self.logistic_steps >= 1, "steps must be >= 1")
        require(self.c > 0, f"c must be > 0, got {self.c}")
        require(
            self.loss_plot.lower().endswith(".png"),
            f"loss_plot must be a .png path, got {self.loss_plot!r}",
        )


# ----------------------------------------------------------------------------- linear regression


def fit_linear_closed_form(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares in one step: the (w, b) that minimise the mean squared error."""
    A = np.hstack([np.ones((len(X), 1)), X])  # (n, 1 + d): a column of ones carries the bias
    # Solves the normal equations A.T @ A @ theta = A.T @ y, stably (no explicit inverse).
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)  # (1 + d,)
    return theta[1:], float(theta[0])


def mse_loss(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    """Mean squared error of the predictions X @ w + b."""
    return float(np.mean((X @ w + b - y) ** 2))


def mse_gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
    """Gradient of mean((X @ w + b - y) ** 2) with respect to w and b."""
    error = X @ w + b - y  # (n,)
    return 2 * X.T @ error / len(y), 2 * float(error.mean())


def fit_linear_gd(
    X: np.ndarray, y: np.ndarray, lr: float, steps: int, history: list[float] | None = None
) -> tuple[np.ndarray, float]:
    """Gradient descent on the mean squared error, from w = 0, b = 0.

    Pass a list as `history` to record the loss: at the start and after every step.
    """
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(steps):
        if history is not None:
            history.append(mse_loss(X, y, w, b))
        grad_w, grad_b = mse_gradient(X, y, w, b)
        w, b = w - lr * grad_w, b - lr * grad_b
    if history is not None:
        history.append(mse_loss(X, y, w, b))
    return w, b


# ----------------------------------------------------------------------------- logistic regression


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), written so that a large |z| never overflows."""
    return np.exp(-np.logaddexp(0.0, -z))


def logistic_loss(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, l2: float) -> float:
    """Mean cross-entropy of labels y (0 or 1) plus (l2 / 2) * ||w||^2 (the bias is free)."""
    z = X @ w + b
    # -[y log p + (1 - y) log(1 - p)] with p = sigmoid(z) is log(1 + e^z) - y z, stably:
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w)


def logistic_gradient(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, l2: float
) -> tuple[np.ndarray, float]:
    """Gradient of `logistic_loss` with respect to w and b."""
    error = sigmoid(X @ w + b) - y  # (n,): predicted probability minus label
    return X.T @ error / len(y) + l2 * w, float(error.mean())


def fit_logistic_gd(
    X: np.ndarray,
    y: np.ndarray,
    lr: float,
    steps: int,
    l2: float,
    history: list[float] | None = None,
) -> tuple[np.ndarray, float]:
    """Gradient descent on `logistic_loss`, from w = 0, b = 0 (`history`: as fit_linear_gd)."""
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(steps):
        if history is not None:
            history.append(logistic_loss(X, y, w, b, l2))
        grad_w, grad_b = logistic_gradient(X, y, w, b, l2)
        w, b = w - lr * grad_w, b - lr * grad_b
    if history is not None:
        history.append(logistic_loss(X, y, w, b, l2))
    return w, b


# ----------------------------------------------------------------------------- the comparison


def r2_score(y: np.ndarray, prediction: np.ndarray) -> float:
    """1 - (squared error of the model) / (squared error of always predicting the mean)."""
    return float(1 - np.sum((y - prediction) ** 2) / np.sum((y - y.mean()) ** 2))


def split_and_standardise(
    X: np.ndarray, y: np.ndarray, settings: RegressionSettings, stratify: bool
):
    """Train/test split, then scale each feature to mean 0 and std 1 using the train rows only.

    Gradient descent needs features on similar scales; the test rows must not leak into the
    scaling, or the test score would flatter the model.
    """
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=settings.test_fraction,
        random_state=settings.seed,
        stratify=y if stratify else None,
    )
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


def largest_difference(w: np.ndarray, reference: np.ndarray) -> float:
    """Largest |w - reference|, relative to the size of the reference weights."""
    return float(np.abs(w - reference).max() / max(1.0, np.abs(reference).max()))


def compare_linear(settings: RegressionSettings) -> dict[str, Any]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = split_and_standardise(X, y, settings, stratify=False)
    reference = LinearRegression().fit(X_train, y_train)
    fits = {"closed form": fit_linear_closed_form(X_train, y_train)}
    history: list[float] = []  # the training loss at the start and after every step
    fits["gradient descent"] = fit_linear_gd(
        X_train, y_train, settings.linear_lr, settings.linear_steps, history
    )
    rows = {}
    for name, (w, b) in fits.items():
        rows[name] = {
            "test_r2": r2_score(y_test, X_test @ w + b),
            "weight_difference": largest_difference(w, reference.coef_),
        }
    # Diverged: gradient descent ended with a higher loss than where it started (w = 0, b = 0).
    rows["gradient descent"]["diverged"] = not history[-1] <= history[0]
    rows["scikit-learn"] = {"test_r2": r2_score(y_test, reference.predict(X_test))}
    return {
        "dataset": "diabetes",
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "features": X.shape[1],
        "methods": rows,
        "curve": {  # for the plot, not the report
            "loss": history,
            "minimum": mse_loss(X_train, y_train, *fits["closed form"]),
            "minimum_label": "closed form (the minimum)",
            "ylabel": "mean squared error (train)",
        },
    }


def compare_logistic(settings: RegressionSettings) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = split_and_standardise(X, y, settings, stratify=True)
    # scikit-learn minimises ||w||^2 / 2 + C * sum(cross-entropy); divided by C * n, that is
    # our mean cross-entropy + (l2 / 2) ||w||^2 with l2 = 1 / (C * n): the same minimum.
    l2 = 1.0 / (settings.c * len(y_train))
    reference = LogisticRegression(C=settings.c, tol=1e-8, max_iter=10_000).fit(X_train, y_train)
    history: list[float] = []
    w, b = fit_logistic_gd(
        X_train, y_train, settings.logistic_lr, settings.logistic_steps, l2, history
    )
    train_loss = history[-1]
    ours = {
        "test_accuracy": float(np.mean((X_test @ w + b > 0) == y_test)),
        "weight_difference": largest_difference(w, reference.coef_[0]),
        "train_loss": train_loss,
        "diverged": not train_loss <= np.log(2),  # the loss at w = 0, b = 0
    }
    theirs = {
        "test_accuracy": float(reference.score(X_test, y_test)),
        "train_loss": logistic_loss(
            X_train, y_train, reference.coef_[0], reference.intercept_[0], l2
        ),
    }
    return {
        "dataset": "breast_cancer",
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "features": X.shape[1],
        "methods": {"gradient descent": ours, "scikit-learn": theirs},
        "curve": {
            "loss": history,
            "minimum": theirs["train_loss"],
            "minimum_label": "scikit-learn's fit",
            "ylabel": "cross-entropy + L2 (train)",
        },
    }


def plot_loss_curves(curves: dict[str, dict[str, Any]], path: Path) -> Path:
    """One panel per model: the training loss at every gradient-descent step, with the minimum
    it should reach as a dashed line. Both axes are logarithmic, so the first steps (big
    drops) and the last ones (tiny gains) both show. Written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # draws to files only: no window, works without a display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), dpi=100, squeeze=False)
    for ax, (title, curve) in zip(axes[0], curves.items(), strict=True):
        loss = np.asarray(curve["loss"])
        shown = np.isfinite(loss) & (loss > 0)  # a diverged run ends in inf and nan
        ax.plot(np.flatnonzero(shown), loss[shown], label="gradient descent")
        ax.axhline(curve["minimum"], color="gray", linestyle="--", label=curve["minimum_label"])
        ax.set_xscale("symlog", linthresh=1)  # linear from 0 to 1, then logarithmic
        ax.set_xlim(0, len(loss) - 1)
        ax.set_yscale("log")
        ax.set(title=title, xlabel="step (log scale)", ylabel=curve["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        atomic_write_with(path, lambda f: fig.savefig(f, format="png"))
    except OSError as exc:
        raise UserError(
            f"cannot write the loss plot to {path} ({exc.strerror or exc}); "
            "choose another path with --set loss_plot=FILE.png"
        ) from None
    finally:
        plt.close(fig)
    return path


def run(settings: RegressionSettings) -> dict[str, Any]:
    """Fit everything, compare, and plot the loss curves to `settings.loss_plot`.

    `matches` says whether ours agrees with scikit-learn; `loss_plot` is where the PNG went.
    """
    plot = Path(settings.loss_plot)
    if plot.is_dir():  # say so now, not after the fits
        raise UserError(f"loss_plot {plot} is a folder; give a file name ending in .png")
    # Too large a learning rate makes gradient descent blow up to inf and nan; numpy would warn
    # on every step. The report says so instead ("diverged").
    with np.errstate(all="ignore"):
        linear, logistic = compare_linear(settings), compare_logistic(settings)
    curves = {
        f"Linear regression ({linear['dataset']})": linear.pop("curve"),
        f"Logistic regression ({logistic['dataset']})": logistic.pop("curve"),
    }
    plot_loss_curves(curves, plot)
    differences = [
        row["weight_difference"]
        for part in (linear, logistic)
        for row in part["methods"].values()
        if "weight_difference" in row
    ]
    matches = all(d < TOLERANCE for d in differences)  # False for nan: a run that diverged
    return {"linear": linear, "logistic": logistic, "matches": matches, "loss_plot": str(plot)}


def table(title: str, part: dict[str, Any], score: str, label: str, note: str) -> list[str]:
    """A few lines: what was fitted on what, then one row per method."""
    lines = [
        f"{title} on {part['dataset']}: {part['train_rows']} train / {part['test_rows']} test "
        f"rows, {part['features']} features",
        f"  {'method':<18} {label:>8}  weights vs scikit-learn",
    ]
    for name, row in part["methods"].items():
        diff = f"{row['weight_difference']:.1e}" if "weight_difference" in row else "-"
        extra = f"  ({note})" if name == "gradient descent" else ""
        lines.append(f"  {name:<18} {row[score]:>8.4f}  {diff:>10}{extra}")
    return lines


def format_report(result: dict[str, Any], settings: RegressionSettings) -> str:
    s = settings
    lines = [
        *table(
            "Linear regression",
            result["linear"],
            "test_r2",
            "test R2",
            f"{s.linear_steps} steps, lr {s.linear_lr}",
        ),
        *table(
            "Logistic regression",
            result["logistic"],
            "test_accuracy",
            "test acc",
            f"{s.logistic_steps} steps, lr {s.logistic_lr}, C {s.c}",
        ),
    ]
    diverged = [
        title
        for title in ("linear", "logistic")
        if result[title]["methods"]["gradient descent"]["diverged"]
    ]
    if diverged:
        lines.append(
            f"Verdict: gradient descent diverged ({' and '.join(diverged)}: the loss grew "
            "instead of shrinking). Lower its learning rate."
        )
    elif result["matches"]:
        lines.append(f"Verdict: ours matches scikit-learn (weights within {TOLERANCE:.0%}).")
    else:
        lines.append(
            f"Verdict: ours does NOT match scikit-learn yet (weights differ by more than "
            f"{TOLERANCE:.0%}): more steps, or a bug in a gradient?"
        )
    lines.append(f"Loss curves (gradient descent, step by step): {result['loss_plot']}")
    return "\n".join(lines)
