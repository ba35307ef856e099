"""The variant matrices of tests/variants.py cover what they promise."""

from __future__ import annotations

import itertools
import json

import yaml

from .conftest import ROOT
from .variants import (
    COMBINATIONS,
    FACTORS,
    FULL_MATRIX,
    FULL_SUITE,
    LONG_PACKAGE,
    VARIANTS,
    all_value_pairs,
    is_full_suite,
    pairwise,
    value_pairs,
    variant_id,
)

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
COOKIECUTTER = json.loads((ROOT / "template/cookiecutter.json").read_text(encoding="utf-8"))


def test_factors_are_every_choice_of_every_question():
    for name, values in FACTORS.items():
        question = COPIER[name]
        if question["type"] == "bool":
            assert set(values) == {True, False}
        else:
            assert list(values) == COOKIECUTTER[name], "all choices, the default first"
        assert values[0] == question["default"]


def test_pairwise_set_covers_every_pair_of_answer_values():
    covered = set().union(*(value_pairs(v) for v in VARIANTS))
    assert covered == all_value_pairs()
    # Sanity check of the check: 7 questions give 21 question pairs, 137 value pairs in all.
    assert len(all_value_pairs()) == sum(
        len(FACTORS[a]) * len(FACTORS[b]) for a, b in itertools.combinations(FACTORS, 2)
    )


def test_pairwise_set_is_small_deterministic_and_starts_with_the_defaults():
    assert len(VARIANTS) == 12  # the lower bound: 4 licences x 3 tracks
    assert pairwise(FULL_SUITE) == [{k: v[k] for k in FACTORS} for v in VARIANTS]
    assert is_full_suite(VARIANTS[0])
    assert sum(map(is_full_suite, VARIANTS)) == 1


def test_full_matrix_is_every_combination_that_changes_code():
    code = ("track", "with_rag", "with_demo", "tracking")
    assert len(FULL_MATRIX) == 36
    assert {tuple(v[k] for k in code) for v in FULL_MATRIX} == set(
        itertools.product(*(FACTORS[k] for k in code))
    )
    assert sum(map(is_full_suite, FULL_MATRIX)) == 1


def test_combinations_are_every_combination_that_changes_code_or_files():
    keys = ("track", "language", "with_rag", "with_demo", "tracking")
    assert len(COMBINATIONS) == 72
    assert {tuple(v[k] for k in keys) for v in COMBINATIONS} == set(
        itertools.product(*(FACTORS[k] for k in keys))
    )


def test_every_matrix_has_unique_ids_and_a_long_package_name():
    for matrix in (VARIANTS, FULL_MATRIX, COMBINATIONS):
        assert len({variant_id(v) for v in matrix}) == len(matrix)
        long_names = [
            v for v in matrix if v["project_name"].lower().replace(" ", "_") == LONG_PACKAGE
        ]
        assert long_names
        assert len(LONG_PACKAGE) >= 39  # near the 40-character limit of the package name check
