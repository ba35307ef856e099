"""Lab 01's rule on every dataset it knows: which model wins, which one the rule keeps.

For each dataset: every model's validation accuracy (cross-validation on the training rows),
its test accuracy, and the model `choose_model` picks. A table to see when a bigger model is
worth it, and when it is not.

    python benchmarks/applied/bench_classic.py [--folds 5] [--trees 100] [--json]
"""

from __future__ import annotations

import argparse
import json

from {{ cookiecutter.package_name }}.applied.classic import DATASETS, ClassicSettings, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [
        run(ClassicSettings(dataset=name, folds=args.folds, trees=args.trees)) for name in DATASETS
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    models = [row["model"] for row in results[0]["models"]]
    print(f"{'dataset':<14} " + " ".join(f"{m:>19}" for m in models) + "  rule keeps")
    for result in results:
        cells = [f"{r['validation']:.3f} / {r['test']:.3f}" for r in result["models"]]
        print(f"{result['dataset']:<14} " + " ".join(f"{c:>19}" for c in cells), end="")
        print(f"  {result['chosen']}")
    print("(each cell: validation / test accuracy)")


if __name__ == "__main__":
    main()
