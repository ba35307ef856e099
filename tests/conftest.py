"""Fixtures that render the template with Copier and Cookiecutter from a snapshot of this tree.

Copier renders git revisions, not working trees, so the session starts by committing a copy of the
template's tracked and untracked (not ignored) files into a temporary repository. Cookiecutter
renders the `template/` folder of that same copy, so both engines see exactly the same source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import copier
import pytest

ROOT = Path(__file__).resolve().parents[1]
GIT_IDENTITY = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return result.stdout


def snapshot_template(dst: Path) -> Path:
    """Copy the template's files (as git would see them) into a fresh repository at dst."""
    files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, files.split("\0")):
        src = ROOT / name
        if src.is_file():
            target = dst / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
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
def uv_env() -> dict:
    """Environment for commands run inside a rendered project: its own venv, the shared uv cache."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
