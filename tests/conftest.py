"""Fixtures that render the template with Copier and Cookiecutter from a snapshot of this tree.

Copier renders git revisions, not working trees, so the session starts by committing a copy of the
template's tracked and untracked (not ignored) files into a temporary repository. Cookiecutter
renders the `template/` folder of that same copy, so both engines see exactly the same source.

`uv run pytest --full-matrix` builds and tests every combination of the answers that change code
(tests/variants.py: FULL_MATRIX, 36) instead of the pairwise set (VARIANTS, 12).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import copier
import pytest

from .variants import FULL_MATRIX, VARIANTS, variant_id

ROOT = Path(__file__).resolve().parents[1]
GIT_IDENTITY = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        help="build and test every combination of the answers that change code (36 variants) "
        "instead of the pairwise set",
    )


def build_matrix(config: pytest.Config) -> list[dict]:
    """The variants this run builds and tests: pairwise by default, all 36 with --full-matrix."""
    return FULL_MATRIX if config.getoption("full_matrix") else VARIANTS


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return result.stdout


def commit_all(path: Path, message: str) -> None:
    """`git add -A` and commit, as a project's owner (or the template's maintainer) would."""
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", message, cwd=path)


def snapshot_template(dst: Path, extra: dict[str, str] | None = None) -> Path:
    """Copy the template's files (as git would see them) into a fresh repository at dst.

    `extra` adds files (path relative to the template root: text) before the commit.
    """
    files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, files.split("\0")):
        src = ROOT / name
        if src.is_file():
            target = dst / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    for name, text in (extra or {}).items():
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=dst)
    git("add", "-A", cwd=dst)
    git("commit", "-q", "-m", "snapshot", cwd=dst)
    git("tag", "v1", cwd=dst)
    return dst


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template"))


def render_copier(template: Path, dst: Path, answers: dict, **kwargs) -> Path:
    copier.run_copy(
        str(template),
        str(dst),
        data=answers,
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
        **kwargs,
    )
    return dst


@pytest.fixture(scope="session")
def render_variant(template, cookies_session, tmp_path_factory):
    """render_variant(answers) -> (copier output, cookiecutter output), once per session."""
    renders: dict[str, tuple[Path, Path]] = {}

    def render(answers: dict) -> tuple[Path, Path]:
        key = variant_id(answers)
        if key not in renders:
            copier_dst = render_copier(template, tmp_path_factory.mktemp(f"copier-{key}"), answers)
            result = cookies_session.bake(
                extra_context=answers, template=str(template / "template")
            )
            assert result.exception is None, result.exception
            renders[key] = (copier_dst, Path(result.project_path))
        return renders[key]

    return render


@pytest.fixture(scope="session")
def uv_env() -> dict:
    """Environment for commands run inside a rendered project: its own venv, the shared uv cache."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    # Let each project's venv cache bytecode: its tests start Python (and import torch) dozens
    # of times, and compiling torch's modules afresh costs about 2 s of CPU on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
