"""The engine versions the template declares are the ones it is tested with.

The oldest Copier that copier.yml allows (`_min_copier_version`) and the oldest Cookiecutter that
pyproject.toml allows render every variant of the build matrix through their own command lines
(`uvx --from copier==X copier copy ...`, `uvx --from cookiecutter==Y cookiecutter --no-input ...`),
in a folder and environment of their own; their output must be byte for byte what this
environment's (the newest locked) engines render. uvx caches each tool's environment, so only the
first run of a machine downloads them.
"""

from __future__ import annotations

import re
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, build_matrix
from .rendering import (
    ANSWERS_FILE,
    OLDEST_COOKIECUTTER,
    OLDEST_COPIER,
    folders,
    render_oldest_cookiecutter,
    render_oldest_copier,
    tree,
)
from .variants import variant_id

# Under pytest-xdist (`-n 2 --dist loadgroup`) these tests share one worker, so the
# session-wide renders run once.
pytestmark = pytest.mark.xdist_group("oldest-engines")
COPIER_YML = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "answers" in metafunc.fixturenames:
        matrix = build_matrix(metafunc.config)
        metafunc.parametrize("answers", matrix, ids=[variant_id(v) for v in matrix])


@pytest.fixture(scope="session")
def oldest_renders(request, template, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every variant of the build matrix, rendered by the oldest engines (two at a time)."""
    root = tmp_path_factory.mktemp("oldest")

    def render(i: int, answers: dict) -> tuple[Path, Path]:
        home = root / f"{i:02d}"
        copier_dst = render_oldest_copier(template, home / "copier", answers, home)
        cookie_dst = render_oldest_cookiecutter(template, home / "cookiecutter", answers, home)
        return copier_dst, cookie_dst

    matrix = build_matrix(request.config)
    # Two at a time: each render is mostly the start-up of a Python process (uv locks its cache).
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(render, range(len(matrix)), matrix))
    return {variant_id(a): r for a, r in zip(matrix, results, strict=True)}


def test_oldest_engines_render_what_the_newest_do(answers, oldest_renders, render_variant):
    old_copier, old_cookie = oldest_renders[variant_id(answers)]
    new_copier, _ = render_variant(answers)
    new = tree(new_copier)
    assert tree(old_copier).keys() == new.keys()
    assert [name for name, content in tree(old_copier).items() if content != new[name]] == []
    assert folders(old_copier) == folders(new_copier)
    new.pop(ANSWERS_FILE)
    assert tree(old_cookie).keys() == new.keys()
    assert [name for name, content in tree(old_cookie).items() if content != new[name]] == []
    assert folders(old_cookie) == folders(new_copier)


def test_declared_floors_agree():
    """The dev environment allows no Copier older than the one copier.yml declares."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = pyproject["dependency-groups"]["dev"]
    assert f"copier>={COPIER_YML['_min_copier_version']}" in dev
    assert re.fullmatch(r"\d+\.\d+\.\d+", OLDEST_COPIER)
    assert re.fullmatch(r"\d+\.\d+\.\d+", OLDEST_COOKIECUTTER)
