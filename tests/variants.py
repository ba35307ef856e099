"""The variant matrix, declared once.

Every track x with_rag x with_demo, with the remaining questions cycled so that each of their values
appears at least once. Every entry is rendered by both engines, compared, linted, built and tested.
"""

from __future__ import annotations

import itertools

TRACKS = ("theory", "applied", "systems")
LANGUAGES = ("en", "zh")
TRACKING = ("jsonl", "tensorboard", "wandb")
LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary")
CI = ("github", "none")
# Display names exercise the derivations: plain, with digits, Chinese only, mixed, and one whose
# package name is near the 40-character limit (long names must not push lines past ruff's limit).
NAMES = (
    "My AI Map",
    "GPT Lab 2",
    "数据项目",
    "Ça va, RAG!",
    "Workshop Cohort Twenty Twenty Six Alpha",
)


def _matrix() -> list[dict]:
    variants = []
    for i, (track, with_rag, with_demo) in enumerate(
        itertools.product(TRACKS, (True, False), (True, False))
    ):
        variants.append(
            {
                "project_name": NAMES[i % len(NAMES)],
                "track": track,
                "with_rag": with_rag,
                "with_demo": with_demo,
                "language": LANGUAGES[i % len(LANGUAGES)],
                "tracking": TRACKING[i % len(TRACKING)],
                "license": LICENSES[i % len(LICENSES)],
                "ci": CI[(i // 2) % len(CI)],
            }
        )
    return variants


VARIANTS = _matrix()


def variant_id(answers: dict) -> str:
    rag = "rag" if answers["with_rag"] else "norag"
    demo = "demo" if answers["with_demo"] else "nodemo"
    return f"{answers['track']}-{rag}-{demo}"
