"""Lab 01's solvers against scikit-learn: how long each takes, and how close it gets.

Linear regression on diabetes (closed form, gradient descent, scikit-learn) and logistic
regression on breast_cancer (gradient descent, scikit-learn), on the lab's split and settings.
Each fit is repeated and the best time kept: other programs on the machine slow some runs down.

    python benchmarks/theory/bench_regression.py [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression

from {{ cookiecutter.package_name }}.theory.regression import (
    RegressionSettings,
    fit_linear_closed_form,
    fit_linear_gd,
    fit_logistic_gd,
    largest_difference,
    split_and_standardise,
)


def best_time(fit, repeats: int):
    """(the fit's result, its best wall time in milliseconds over `repeats` runs)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - t0)
    return result, 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    s = RegressionSettings()
    rows = []

    X, y = load_diabetes(return_X_y=True)
    X_train, _, y_train, _ = split_and_standardise(X, y, s, stratify=False)
    reference, ms = best_time(lambda: LinearRegression().fit(X_train, y_train), args.repeats)
    rows.append({"model": "linear", "method": "scikit-learn", "ms": ms, "difference": 0.0})
    for method, fit in {
        "closed form": lambda: fit_linear_closed_form(X_train, y_train),
        "gradient descent": lambda: fit_linear_gd(X_train, y_train, s.linear_lr, s.linear_steps),
    }.items():
        (w, _), ms = best_time(fit, args.repeats)
        diff = largest_difference(w, reference.coef_)
        rows.append({"model": "linear", "method": method, "ms": ms, "difference": diff})

    X, y = load_breast_cancer(return_X_y=True)
    X_train, _, y_train, _ = split_and_standardise(X, y, s, stratify=True)
    l2 = 1.0 / (s.c * len(y_train))
    reference, ms = best_time(
        lambda: LogisticRegression(C=s.c, tol=1e-8, max_iter=10_000).fit(X_train, y_train),
        args.repeats,
    )
    rows.append({"model": "logistic", "method": "scikit-learn", "ms": ms, "difference": 0.0})
    (w, _), ms = best_time(
        lambda: fit_logistic_gd(X_train, y_train, s.logistic_lr, s.logistic_steps, l2),
        args.repeats,
    )
    diff = largest_difference(w, reference.coef_[0])
    rows.append({"model": "logistic", "method": "gradient descent", "ms": ms, "difference": diff})

    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'model':<9} {'method':<17} {'best ms':>9}  weights vs scikit-learn")
    for row in rows:
        print(f"{row['model']:<9} {row['method']:<17} {row['ms']:>9.2f}  {row['difference']:.1e}")


if __name__ == "__main__":
    main()
