"""Lab 01: classic models first, and a rule for when to switch to a bigger one.

Four models, simplest first, on one fixed train/test split:

- majority: always predicts the most frequent class, the floor every model must clear;
- logistic regression: a linear model, fast and easy to explain;
- decision tree: any shape of boundary, but it memorises noise;
- random forest: many trees voting, usually the strongest classic model on tables.

Each is scored by k-fold cross-validation on the training rows (the validation score), then
fitted on all of them. The rule picks a model from the validation scores only; the test rows
are scored once, at the end, to report. `choose_model` holds the rule.

The datasets ship inside scikit-learn: breast_cancer (569 tumours, 30 features), wine (178
wines, 13 features, 3 cultivars), digits (1,797 8x8 images of digits) and circles (600 points
in two rings, generated: no straight line separates them).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from ..config import require

DATASETS = ("breast_cancer", "wine", "digits", "circles")
MODELS = ("majority", "logistic_regression", "decision_tree", "random_forest")  # simplest first


@dataclass
class ClassicSettings:
    dataset: str = "breast_cancer"  # breast_cancer, wine, digits or circles
    seed: int = 0  # the split, the folds and the random forest
    test_fraction: float = 0.25  # share of the rows held out for the final test score
    folds: int = 5  # cross-validation folds on the training rows
    trees: int = 100  # trees in the random forest
    margin: float = 0.01  # a bigger model must win by more than this (and the fold spread)

    CHOICES: ClassVar = {"dataset": DATASETS}

    def check(self) -> None:
        require(
            0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}"
        )
        require(self.folds >= 2, f"folds must be >= 2, got {self.folds}")
        require(self.trees >= 1, f"trees must be >= 1, got {self.trees}")
        require(0 <= self.margin < 1, f"margin must be in [0, 1), got {self.margin}")


@dataclass
class Score:
    model: str
    validation: float  # mean accuracy over the cross-validation folds
    spread: float  # standard deviation of that accuracy across the folds
    train: float  # accuracy on the rows it was fitted on
    test: float  # accuracy on the held-out test rows
    seconds: float  # the final fit on every training row


def load_dataset(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    if name == "circles":
        return datasets.make_circles(n_samples=600, noise=0.15, factor=0.5, random_state=seed)
    return getattr(datasets, f"load_{name}")(return_X_y=True)


def make_model(name: str, settings: ClassicSettings):
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return {
        "majority": lambda: DummyClassifier(strategy="most_frequent"),
        # Scaling first: the solver converges quickly when features have similar ranges.
        "logistic_regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000)
        ),
        "decision_tree": lambda: DecisionTreeClassifier(random_state=settings.seed),
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=settings.trees, random_state=settings.seed
        ),
    }[name]()


def evaluate(settings: ClassicSettings) -> tuple[list[Score], dict[str, Any]]:
    """Every model's scores, simplest first, and a description of the split."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

    X, y = load_dataset(settings.dataset, settings.seed)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=settings.test_fraction, random_state=settings.seed, stratify=y
    )
    folds = StratifiedKFold(settings.folds, shuffle=True, random_state=settings.seed)
    scores = []
    for name in MODELS:
        model = make_model(name, settings)
        validation = cross_val_score(model, X_train, y_train, cv=folds)
        t0 = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        scores.append(
            Score(
                model=name,
                validation=float(validation.mean()),
                spread=float(validation.std()),
                train=float(model.score(X_train, y_train)),
                test=float(model.score(X_test, y_test)),
                seconds=seconds,
            )
        )
    split = {
        "dataset": settings.dataset,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "features": X.shape[1],
        "classes": len(set(y.tolist())),
    }
    return scores, split


def choose_model(scores: list[Score], margin: float) -> tuple[str, str]:
    """The rule: (the model to use, why), from validation scores alone; scores simplest first.

    Keep the simplest model whose validation accuracy is as good as the best one's, give or
    take the noise: `margin`, or how much the best one's accuracy moves from fold to fold if
    that is larger. A bigger model must win by more than the noise to be worth it.
    """
    floor, candidates = scores[0], scores[1:]
    simple, best = candidates[0], max(candidates, key=lambda s: s.validation)
    noise = max(margin, best.spread)
    if best.validation <= floor.validation + margin:
        return floor.model, (
            f"no model beats always answering the most frequent class ({floor.validation:.3f}): "
            "look at the data and its features before trying bigger models"
        )
    chosen = next(s for s in candidates if s.validation >= best.validation - noise)
    if chosen is simple and chosen is best:
        return chosen.model, f"{chosen.model}, the simplest model, is also the best: keep it"
    if chosen is simple:
        return chosen.model, (
            f"{best.model} is only {best.validation - chosen.validation:.3f} better, within the "
            f"noise ({noise:.3f}): keep {chosen.model}, simpler, faster and easier to explain"
        )
    reason = (
        f"{chosen.model} beats {simple.model} by {chosen.validation - simple.validation:.3f}, "
        f"more than the noise ({noise:.3f}): switch to it"
    )
    if chosen is not best:
        reason += (
            f"; {best.model} is only {best.validation - chosen.validation:.3f} better still, "
            f"within the noise: {chosen.model} is enough"
        )
    return chosen.model, reason


def diagnose(score: Score, best: Score, noise: float) -> str:
    """Under- or overfitting, from the training and validation accuracy."""
    if score.train < best.validation - noise:
        return "underfits: even its training accuracy is low (needs a more flexible model)"
    if score.train - score.validation > 0.05:
        return "overfits: train >> validation (regularise it, or get more data)"
    return "fits"


def run(settings: ClassicSettings) -> dict[str, Any]:
    scores, split = evaluate(settings)
    chosen, reason = choose_model(scores, settings.margin)
    best = max(scores, key=lambda s: s.validation)
    noise = max(settings.margin, best.spread)
    rows = [asdict(s) | {"diagnosis": diagnose(s, best, noise)} for s in scores]
    rows[0]["diagnosis"] = "the floor: any real model must beat it"
    return {**split, "models": rows, "chosen": chosen, "reason": reason}


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['dataset']}: {result['train_rows']} train / {result['test_rows']} test rows, "
        f"{result['features']} features, {result['classes']} classes",
        f"  {'model':<20} {'validation':>14} {'train':>6} {'test':>6} {'fit':>6}  diagnosis",
    ]
    for row in result["models"]:
        validation = f"{row['validation']:.3f} ± {row['spread']:.3f}"
        lines.append(
            f"  {row['model']:<20} {validation:>14} {row['train']:>6.3f} {row['test']:>6.3f} "
            f"{row['seconds']:>5.2f}s  {row['diagnosis']}"
        )
    lines.append(f"Choice: {result['chosen']}. Why: {result['reason']}.")
    return "\n".join(lines)
