"""Lab 01 (labs/applied/01-classic-models.md): classic models first, and when to switch.

`python -m {{ cookiecutter.package_name }} labs check 01` runs this file.
"""

import json

import pytest

from {{ cookiecutter.package_name }}.applied.classic import (
    MODELS,
    ClassicSettings,
    Score,
    choose_model,
    evaluate,
)
from {{ cookiecutter.package_name }}.cli import main

SMALL = {"folds": 3, "trees": 20}  # a quick forest and fewer folds: seconds, same conclusions


def score(model: str, validation: float, spread: float = 0.01) -> Score:
    return Score(model, validation, spread, train=validation, test=validation, seconds=0.0)


def test_choose_model_keeps_the_simple_model_within_the_noise():
    scores = [
        score("majority", 0.60),
        score("logistic_regression", 0.95),
        score("decision_tree", 0.90),
        score("random_forest", 0.955, spread=0.02),
    ]
    chosen, reason = choose_model(scores, margin=0.01)
    assert chosen == "logistic_regression"
    assert "random_forest" in reason and "noise" in reason


def test_choose_model_switches_when_the_bigger_model_clearly_wins():
    scores = [
        score("majority", 0.50),
        score("logistic_regression", 0.50),
        score("decision_tree", 0.80),
        score("random_forest", 0.92),
    ]
    chosen, reason = choose_model(scores, margin=0.01)
    assert chosen == "random_forest"
    assert "switch" in reason


def test_choose_model_prefers_the_simplest_of_the_good_ones():
    scores = [
        score("majority", 0.50),
        score("logistic_regression", 0.50),
        score("decision_tree", 0.91),
        score("random_forest", 0.915, spread=0.02),
    ]
    assert choose_model(scores, margin=0.01)[0] == "decision_tree"


def test_choose_model_says_when_nothing_beats_the_majority_class():
    scores = [score(name, 0.7) for name in MODELS]
    chosen, reason = choose_model(scores, margin=0.01)
    assert chosen == "majority"
    assert "data" in reason


def test_evaluate_scores_every_model_on_a_fixed_split():
    settings = ClassicSettings(**SMALL)
    scores, split = evaluate(settings)
    assert [s.model for s in scores] == list(MODELS)
    assert split["train_rows"] + split["test_rows"] == 569
    by_name = {s.model: s for s in scores}
    assert by_name["logistic_regression"].validation > by_name["majority"].validation + 0.3
    assert by_name["decision_tree"].train == 1.0  # a full tree memorises its training rows
    again, _ = evaluate(settings)
    assert [s.validation for s in again] == [s.validation for s in scores]  # same split


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [("breast_cancer", {"logistic_regression"}), ("circles", {"decision_tree", "random_forest"})],
)
def test_command_applies_the_rule(dataset, expected, capsys):
    args = ["applied", "classic", "--json", "--set", f"dataset={dataset}"]
    for key, value in SMALL.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chosen"] in expected
    assert [row["model"] for row in result["models"]] == list(MODELS)


def test_unknown_dataset_is_a_one_line_error(capsys):
    assert main(["applied", "classic", "--set", "dataset=titanic"]) == 2
    assert "breast_cancer" in capsys.readouterr().err
