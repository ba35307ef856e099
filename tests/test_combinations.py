"""Every combination of the answers that change code or the file set (tests/variants.py:
COMBINATIONS, track x language x with_rag x with_demo x tracking = 72), checked cheaply: both
engines render it, byte for byte the same, with exactly the files its answers call for, no Jinja
left, and `ruff check` and `ruff format --check` clean. Nothing is built here (tests/test_variants.py
builds the pairwise set, or all 36 with `--full-matrix`).

The 144 renders run in a process pool, one worker per core, before the first test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

from .rendering import (
    ANSWERS_FILE,
    expected_files,
    folders,
    hygiene_problems,
    leftover_jinja,
    render_both,
    tree,
)
from .variants import COMBINATIONS, variant_id

# Under pytest-xdist (`-n 2 --dist loadgroup`) these tests share one worker, so the
# session-wide renders run once.
pytestmark = pytest.mark.xdist_group("combinations")
BIN = Path(sys.executable).parent
IDS = [variant_id(answers) for answers in COMBINATIONS]


@pytest.fixture(scope="session")
def combinations(template, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("combinations")
    workers = min(os.cpu_count() or 2, 8)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            key: pool.submit(render_both, template, root / f"{i:02d}", answers)
            for i, (key, answers) in enumerate(zip(IDS, COMBINATIONS, strict=True))
        }
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("answers", COMBINATIONS, ids=IDS)
def test_engines_agree_and_files_are_exact(combinations, template, answers):
    copier_out, cookie_out = combinations[variant_id(answers)]
    copier_tree, cookie_tree = tree(copier_out), tree(cookie_out)
    assert copier_tree.pop(ANSWERS_FILE)
    assert copier_tree.keys() == cookie_tree.keys()
    assert not [name for name in copier_tree if copier_tree[name] != cookie_tree[name]]
    assert folders(copier_out) == folders(cookie_out)
    stored = yaml.safe_load((copier_out / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert set(tree(copier_out)) == expected_files(template, stored)
    assert not leftover_jinja(copier_out)
    assert not hygiene_problems(copier_out)


def test_every_combination_is_ruff_clean(combinations):
    """One ruff run over all of them; each file takes the settings of its own project's
    pyproject.toml (ruff's hierarchical configuration)."""
    projects = [str(copier_out) for copier_out, _ in combinations.values()]
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(BIN / "ruff"), *command, "--no-cache", *projects],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
