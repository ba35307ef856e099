"""Every variant: both engines render it, agree byte for byte, leave no Jinja behind, produce
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

from .conftest import ROOT, render_copier
from .variants import VARIANTS, variant_id

ANSWERS_FILE = ".copier-answers.yml"
FULL_SUITE = "applied-rag-demo"  # the default answers: its slow tests run too
BIN = Path(sys.executable).parent
_renders: dict[str, tuple[Path, Path]] = {}


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(cmd)} failed in {cwd}:\n{output[-6000:]}"
    return output


@pytest.fixture
def rendered(request, template, cookies_session, tmp_path_factory) -> tuple[Path, Path]:
    """(copier output, cookiecutter output) for the variant, rendered once per session."""
    answers = request.param
    key = variant_id(answers)
    if key not in _renders:
        copier_dst = render_copier(template, tmp_path_factory.mktemp(f"copier-{key}"), answers)
        result = cookies_session.bake(extra_context=answers, template=str(template / "template"))
        assert result.exception is None, result.exception
        _renders[key] = (copier_dst, Path(result.project_path))
    return _renders[key]


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".venv" not in path.parts
    }


def text_files(root: Path) -> list[tuple[str, bytes]]:
    """Every file but the images (the demo screenshot), which both engines copy byte for byte."""
    return [(name, content) for name, content in tree(root).items() if not name.endswith(".png")]


def expected_files(answers: dict, package: str) -> set[str]:
    """The file set each option calls for, written out independently of copier.yml's _exclude."""
    src = f"src/{package}"
    files = {
        ANSWERS_FILE,
        ".gitignore",
        ".pre-commit-config.yaml",
        "LICENSE",
        "README.md",
        "pyproject.toml",
        f"{src}/__init__.py",
        f"{src}/__main__.py",
        *(f"{src}/{name}.py" for name in CORE_MODULES),
        *(f"tests/{name}.py" for name in CORE_TESTS),
        "configs/tiny.yaml",
        "configs/addition.yaml",
        "benchmarks/bench_train.py",
        "docs/models.md",
        "docs/getting-started.md",
        "docs/device-and-precision.md",
        "docs/experiments.md",
        "docs/faq.md",
        "docs/training.md",
        "tests/__init__.py",
    }
    if answers["ci"] == "github":
        files |= {".github/workflows/ci.yml", ".github/dependabot.yml"}
    if answers["with_rag"]:
        files |= {f"{src}/rag/{name}.py" for name in RAG_MODULES}
        files |= {f"tests/rag/{name}.py" for name in RAG_TESTS}
        files |= {
            "configs/rag.yaml",
            "data/qa.jsonl",
            "benchmarks/bench_rag.py",
            "benchmarks/heldout/qa.jsonl",
            "docs/rag.md",
            "docs/benchmarks-rag.md",
        }
        files |= {f"benchmarks/heldout/docs/{name}.md" for name in HELDOUT_DOCS}
    if answers["with_demo"]:
        files |= {f"{src}/demo.py", "benchmarks/bench_demo.py", "docs/demo.md", "docs/demo.png"}
        files |= {f"tests/demo/{name}.py" for name in DEMO_TESTS}
    if answers["language"] == "zh":  # Chinese translations of the pages the project has
        pages = {f for f in files if f.startswith("docs/") and f.endswith(".md")}
        files |= {f"docs/zh/{page.removeprefix('docs/')}" for page in pages}
    return files


CORE_MODULES = (
    "checkpoint",
    "cli",
    "config",
    "data",
    "device",
    "errors",
    "report",
    "sample",
    "tracking",
    "train",
    "models/__init__",
    "models/gpt",
)
CORE_TESTS = (
    "conftest",
    "test_cli",
    "test_config",
    "test_ddp",
    "test_device",
    "test_model",
    "test_resume_kill",
    "test_train",
)
RAG_MODULES = (
    "__init__",
    "answer",
    "answer_types",
    "chunking",
    "cli",
    "config",
    "embed",
    "errors",
    "evaluate",
    "index",
    "ingest",
    "pipeline",
    "rerank",
    "retrieve",
    "text",
)
RAG_TESTS = (
    "__init__",
    "conftest",
    "test_answer",
    "test_chunking",
    "test_cli",
    "test_evaluate",
    "test_index",
    "test_ingest",
    "test_retrieve",
)
DEMO_TESTS = ("__init__", "conftest", "test_demo", "test_demo_browser", "test_demo_load")
HELDOUT_DOCS = ("kestrel-k2", "kestrel-k3", "lindenhall", "oakmere")

variants = pytest.mark.parametrize(
    "rendered", VARIANTS, ids=[variant_id(v) for v in VARIANTS], indirect=True
)


@variants
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


@variants
def test_exact_file_set(rendered):
    copier_out, _ = rendered
    answers = yaml.safe_load((copier_out / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert set(tree(copier_out)) == expected_files(answers, answers["package_name"])


@variants
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


@variants
def test_no_leftover_jinja(rendered):
    copier_out, _ = rendered
    for name, content in text_files(copier_out):
        text = content.decode("utf-8").replace("${{", "")  # GitHub expressions are fine
        for marker in ("{{", "{%", "{#", "cookiecutter."):
            assert marker not in text, f"{marker!r} left in {name}"


@variants
def test_lint_clean_and_hand_written(rendered):
    copier_out, _ = rendered
    run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=copier_out)
    run([str(BIN / "ruff"), "format", "--check", "--no-cache", "."], cwd=copier_out)
    for name, content in text_files(copier_out):
        text = content.decode("utf-8")
        ends_well = text.endswith("\n") and not text.endswith("\n\n")
        assert not text or ends_well, f"{name}: ragged end of file"
        assert "\n\n\n\n" not in text, f"{name}: a run of blank lines"
        assert not any(line != line.rstrip() for line in text.splitlines()), (
            f"{name}: trailing space"
        )


@variants
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
        run([str(BIN / "zizmor"), "--offline", "."], cwd=copier_out)


@pytest.mark.build
@variants
def test_builds_and_passes_its_own_tests(rendered, uv_env, tmp_path):
    copier_out, _ = rendered
    answers = yaml.safe_load((copier_out / ANSWERS_FILE).read_text(encoding="utf-8"))
    project = tmp_path / "project"
    shutil.copytree(copier_out, project)
    run(["uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist")], cwd=project, env=uv_env)
    assert list((tmp_path / "dist").glob("*.whl"))
    run(["uv", "sync"], cwd=project, env=uv_env)
    # One variant runs its whole suite, slow tests included; the others their default (fast) one.
    select = ["-m", "slow or not slow"] if variant_id(answers) == FULL_SUITE else []
    # Its own temp root: pytest prunes old numbered temp folders, which would reach into ours.
    temp = f"--basetemp={tmp_path / 'pytest'}"
    pytest = ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", temp, *select]
    run(pytest, cwd=project, env=uv_env)


def test_readme_listing_is_the_default_variant(template, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listing = readme.split("## What you get", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    dst = render_copier(template, tmp_path / "out", {"project_name": "My AI Map"})
    assert listing.split() == sorted(tree(dst))
