"""The variant matrices, declared once.

- `VARIANTS` (the default, and what CI builds): a pairwise set. Every pair of answer values (any
  two questions of `FACTORS`, every value of each) appears in at least one variant, so an option
  that breaks only next to another is caught without building every combination. It starts with
  the default answers (`FULL_SUITE`), whose slow tests run too.
- `FULL_MATRIX` (`uv run pytest --full-matrix`): every combination of the answers that change code
  (track x with_rag x with_demo x tracking, 36), the others cycled.
- `COMBINATIONS`: every combination of the answers that change code or the file set (track x
  language x with_rag x with_demo x tracking, 72). Cheap checks only: both engines render each one.

Every variant is rendered by both engines, compared, linted, built and tested. Display names cycle
through `NAMES` so that each matrix exercises the derivations, a long package name included.
"""

from __future__ import annotations

import itertools
import random

TRACKS = ("theory", "applied", "systems")
LANGUAGES = ("en", "zh")
TRACKING = ("jsonl", "tensorboard", "wandb")
LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary")
CI = ("github", "none")
BOOLS = (True, False)
# Each question of the matrix with all its values, the default first (as in cookiecutter.json).
FACTORS: dict[str, tuple] = {
    "track": ("applied", "theory", "systems"),
    "language": LANGUAGES,
    "with_rag": BOOLS,
    "with_demo": BOOLS,
    "tracking": TRACKING,
    "license": LICENSES,
    "ci": CI,
}
# The default answers: the variant whose slow tests run too.
FULL_SUITE = {name: values[0] for name, values in FACTORS.items()}
# Display names exercise the derivations: plain, with digits, Chinese only, mixed, and one whose
# package name is near the 40-character limit (long names must not push lines past ruff's limit).
NAMES = (
    "My AI Map",
    "GPT Lab 2",
    "数据项目",
    "Ça va, RAG!",
    "Workshop Cohort Twenty Twenty Six Alpha",
)
LONG_PACKAGE = "workshop_cohort_twenty_twenty_six_alpha"


def value_pairs(answers: dict) -> set[tuple]:
    """The pairs of (question, value) that one combination of answers covers."""
    items = [(name, answers[name]) for name in FACTORS]
    return set(itertools.combinations(items, 2))


def every_combination() -> list[dict]:
    return [
        dict(zip(FACTORS, values, strict=True)) for values in itertools.product(*FACTORS.values())
    ]


def all_value_pairs() -> set[tuple]:
    return set().union(*map(value_pairs, every_combination()))


# What building and testing a variant costs, in seconds on 2 cores (measured; docs/benchmarks.md):
# the components decide it. The pairwise generator prefers the cheaper of two equally useful
# candidates, so the suite covers every pair of values at the least build time it finds.
BUILD_SECONDS = {(False, False): 55, (False, True): 75, (True, False): 95, (True, True): 135}


def build_seconds(answers: dict) -> int:
    return BUILD_SECONDS[(answers["with_rag"], answers["with_demo"])]


def pairwise(start: dict, tries: int = 200) -> list[dict]:
    """A small set of answer combinations covering every pair of values, deterministically.

    Greedy: begin with `start`, then repeatedly add the combination (of all 576) that covers the
    most pairs not yet covered (of those, the cheapest to build; then the first), until none is
    left. Greedy is not optimal and its result depends on the order of the candidates, so it runs
    over fixed shuffles (seeds 0, 1, 2, ...) and keeps the smallest set, stopping at the first that
    reaches the lower bound: the two largest questions' sizes multiplied (4 licences x 3 tracks =
    12). Pairs are bits of an integer, so each try takes a few milliseconds.
    """
    pairs = {pair: 1 << i for i, pair in enumerate(sorted(all_value_pairs(), key=repr))}

    def mask(answers: dict) -> int:
        return sum(pairs[pair] for pair in value_pairs(answers))

    sizes = sorted((len(values) for values in FACTORS.values()), reverse=True)
    bound = sizes[0] * sizes[1]
    combinations = every_combination()
    masks = [mask(c) for c in combinations]
    costs = [build_seconds(c) for c in combinations]
    best: list[dict] = []
    for seed in range(tries):
        order = list(range(len(combinations)))
        random.Random(seed).shuffle(order)
        chosen, uncovered = [dict(start)], ((1 << len(pairs)) - 1) & ~mask(start)
        while uncovered:
            i = max(order, key=lambda i: ((masks[i] & uncovered).bit_count(), -costs[i]))
            chosen.append(combinations[i])
            uncovered &= ~masks[i]
        if not best or len(chosen) < len(best):
            best = chosen
        if len(best) <= bound:
            break
    return best


def _named(combinations: list[dict]) -> list[dict]:
    return [{"project_name": NAMES[i % len(NAMES)], **c} for i, c in enumerate(combinations)]


def _cycled(keys: tuple[str, ...]) -> list[dict]:
    """Every combination of `keys`; the other questions cycled so each value appears (the
    default answers where `keys` have their defaults, so that `FULL_SUITE` is one of them)."""
    combinations = []
    for i, values in enumerate(itertools.product(*(FACTORS[k] for k in keys))):
        answers = dict(zip(keys, values, strict=True))
        if all(FULL_SUITE[k] == v for k, v in answers.items()):
            answers = dict(FULL_SUITE)
        for name, choices in FACTORS.items():
            answers.setdefault(name, choices[i % len(choices)])
        combinations.append({name: answers[name] for name in FACTORS})
    return _named(combinations)


VARIANTS = _named(pairwise(FULL_SUITE))
FULL_MATRIX = _cycled(("track", "with_rag", "with_demo", "tracking"))
COMBINATIONS = _cycled(("track", "language", "with_rag", "with_demo", "tracking"))


def is_full_suite(answers: dict) -> bool:
    return all(answers[name] == value for name, value in FULL_SUITE.items())


# Tracks whose own slow tests also run, in their first variant: the systems track's lab commands
# start servers, compile with inductor and launch torchrun processes, so their smoke runs are
# slow tests; the default track's run with the full suite already.
TRACK_SUITES = ("systems",)


def runs_track_slow_tests(answers: dict) -> bool:
    """True for the first variant of each track in TRACK_SUITES (its tests/<track> slow ones)."""
    track = answers["track"]
    first = next((v for v in VARIANTS if v["track"] == track), None)
    return (
        track in TRACK_SUITES
        and first is not None
        and all(answers[name] == first[name] for name in FACTORS)
    )


def variant_id(answers: dict) -> str:
    rag = "rag" if answers["with_rag"] else "norag"
    demo = "demo" if answers["with_demo"] else "nodemo"
    rest = (answers[k] for k in ("tracking", "language", "license", "ci"))
    return "-".join((answers["track"], rag, demo, *rest))
