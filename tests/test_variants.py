"""Every variant of the build matrix (tests/variants.py: the pairwise set, or all 36 with
`--full-matrix`): both engines render it, agree byte for byte, leave no Jinja behind, produce
exactly the files its answers call for, are lint-clean and pass the third-party checkers; then
(marked `build`) it builds a wheel, installs into its own environment and passes its own tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, build_matrix, render_copier
from .rendering import (
    ANSWERS_FILE,
    expected_files,
    folders,
    hygiene_problems,
    leftover_jinja,
    tree,
)
from .variants import is_full_suite, runs_track_slow_tests, variant_id

BIN = Path(sys.executable).parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rendered" in metafunc.fixturenames:
        # One xdist group per variant: under `-n 2 --dist loadgroup` a variant's checks and its
        # build run on one worker, which renders it once; two variants build at a time.
        params = [
            pytest.param(v, id=variant_id(v), marks=pytest.mark.xdist_group(variant_id(v)))
            for v in build_matrix(metafunc.config)
        ]
        metafunc.parametrize("rendered", params, indirect=True)


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(cmd)} failed in {cwd}:\n{output[-6000:]}"
    return output


@pytest.fixture
def rendered(request, render_variant) -> tuple[Path, Path]:
    """(copier output, cookiecutter output) for the variant, rendered once per session."""
    return render_variant(request.param)


def test_engines_agree_byte_for_byte(rendered):
    copier_out, cookie_out = rendered
    copier_tree, cookie_tree = tree(copier_out), tree(cookie_out)
    assert copier_tree.pop(ANSWERS_FILE)
    assert ANSWERS_FILE not in cookie_tree, (
        "the cookiecutter hook must remove Copier's answers file"
    )
    assert copier_tree.keys() == cookie_tree.keys()
    differing = [name for name in copier_tree if copier_tree[name] != cookie_tree[name]]
    assert not differing
    assert folders(copier_out) == folders(cookie_out)


def test_exact_file_set(rendered, template):
    copier_out, _ = rendered
    answers = yaml.safe_load((copier_out / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert set(tree(copier_out)) == expected_files(template, answers)


def test_dependencies_follow_the_components(rendered):
    copier_out, _ = rendered
    answers = yaml.safe_load((copier_out / ANSWERS_FILE).read_text(encoding="utf-8"))
    project = tomllib.loads((copier_out / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=\[ ]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    assert {"torch", "numpy", "pyyaml", "matplotlib", "tqdm"} <= names
    assert ("faiss-cpu" in names) == ("sentence-transformers" in names) == answers["with_rag"]
    assert ("gradio" in names) == answers["with_demo"]
    assert ("tensorboard" in names) == (answers["tracking"] == "tensorboard")
    assert ("wandb" in names) == (answers["tracking"] == "wandb")


def test_no_leftover_jinja(rendered):
    copier_out, _ = rendered
    assert not leftover_jinja(copier_out)


def test_lint_clean_and_hand_written(rendered):
    copier_out, _ = rendered
    run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=copier_out)
    run([str(BIN / "ruff"), "format", "--check", "--no-cache", "."], cwd=copier_out)
    assert not hygiene_problems(copier_out)


def test_third_party_checkers(rendered):
    copier_out, _ = rendered
    run([str(BIN / "validate-pyproject"), "pyproject.toml"], cwd=copier_out)
    review = subprocess.run(
        [str(BIN / "repo-review"), ".", "--format", "json"],
        cwd=copier_out,
        capture_output=True,
        text=True,
        check=False,
    )
    checks = json.loads(review.stdout)["checks"]
    failed = {
        code: check["description"] for code, check in checks.items() if check["result"] is False
    }
    assert not failed, failed
    # The spelling hook of the project's pre-commit config, with the project's own settings.
    run([str(BIN / "codespell")], cwd=copier_out)
    if (copier_out / ".github").exists():
        workflows = sorted(str(p) for p in (copier_out / ".github/workflows").glob("*.yml"))
        run(
            [
                str(BIN / "check-jsonschema"),
                "--builtin-schema",
                "vendor.github-workflows",
                *workflows,
            ],
            cwd=copier_out,
        )
        dependabot = str(copier_out / ".github/dependabot.yml")
        run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", dependabot],
            cwd=copier_out,
        )
        run([str(BIN / "zizmor"), "--offline", "."], cwd=copier_out)


@pytest.mark.build
def test_builds_and_passes_its_own_tests(rendered, uv_env, tmp_path):
    copier_out, _ = rendered
    answers = yaml.safe_load((copier_out / ANSWERS_FILE).read_text(encoding="utf-8"))
    project = tmp_path / "project"
    shutil.copytree(copier_out, project)
    run(["uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist")], cwd=project, env=uv_env)
    assert list((tmp_path / "dist").glob("*.whl"))
    run(["uv", "sync"], cwd=project, env=uv_env)
    # One variant runs its whole suite, slow tests included; the others their default (fast) one.
    select = ["-m", "slow or not slow"] if is_full_suite(answers) else []
    # Its own temp root: pytest prunes old numbered temp folders, which would reach into ours.
    temp = f"--basetemp={tmp_path / 'pytest'}"
    pytest = ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", temp]
    run([*pytest, *select], cwd=project, env=uv_env)
    if runs_track_slow_tests(answers):  # e.g. the systems labs' servers and torchrun runs
        # The labs' own commands, not the deeper DDP-against-FSDP equivalence (five torchrun
        # launches, about a minute here): the 20-minute budget has no room for it.
        heavy = "not test_ddp_and_fsdp_take_the_same_steps_and_resume"
        track_tests = ["-m", "slow", "-k", heavy, f"tests/{answers['track']}"]
        run([*pytest, *track_tests], cwd=project, env=uv_env)


def test_readme_listing_is_the_default_variant(template, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listing = readme.split("## What you get", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    dst = render_copier(template, tmp_path / "out", {"project_name": "My AI Map"})
    assert listing.split() == sorted(tree(dst))
