"""What a rendered project must look like, and the engines that render it.

`expected_files` states the option rules on its own, independently of copier.yml's `_exclude`: it
walks the template's skeleton and keeps what the answers call for. The oldest engine versions the
template declares (`_min_copier_version` in copier.yml; the Cookiecutter floor in pyproject.toml)
run through `uvx`, in a folder and environment of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter

from .conftest import ROOT, render_copier

SKELETON = "template/{{cookiecutter.project_slug}}"
PACKAGE_FOLDER = "{{cookiecutter.package_name}}"
ANSWERS_FILE = ".copier-answers.yml"
TRACKS = ("theory", "applied", "systems")

# The option rules (paths relative to the project; "src/PKG" is the package folder). A folder
# ends in "/" and stands for everything under it.
RAG_PATHS = (
    "src/PKG/rag/",
    "tests/rag/",
    "configs/rag.yaml",
    "data/",
    "benchmarks/bench_rag.py",
    "benchmarks/heldout/",
    "docs/rag.md",
    "docs/benchmarks-rag.md",
)
DEMO_PATHS = (
    "src/PKG/demo.py",
    "src/PKG/demo/",
    "tests/demo/",
    "benchmarks/bench_demo.py",
    "docs/demo.md",
    "docs/demo.png",
)
# File names that are demo-only wherever they are (a track's tab: src/PKG/<track>/demo_tab.py,
# the applied track's demo lab), and the RAG-only one (the applied track's RAG lab).
DEMO_NAMES = ("demo_tab.py", "08-demo.md")
RAG_NAMES = ("06-rag-experiments.md",)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (a project's .venv aside): relative POSIX path -> bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".venv" not in path.parts
    }


def folders(root: Path) -> set[str]:
    """Every folder under root, empty ones included (a file comparison would miss those)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


def text_files(root: Path) -> list[tuple[str, bytes]]:
    """Every file but the images (the demo screenshot), which both engines copy byte for byte."""
    return [(name, content) for name, content in tree(root).items() if not name.endswith(".png")]


def skeleton_paths(template: Path) -> list[str]:
    """Every file of the skeleton, relative to it, with the package folder's name unrendered."""
    root = template / SKELETON
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _in(path: str, rules: tuple[str, ...]) -> bool:
    return any(path == rule or (rule.endswith("/") and path.startswith(rule)) for rule in rules)


def wanted(path: str, answers: dict) -> bool:
    """Whether the answers keep this skeleton file (package folder spelled "src/PKG")."""
    parts = path.split("/")
    # A folder named after a track, at any depth, belongs to that track alone.
    if any(part in TRACKS and part != answers["track"] for part in parts):
        return False
    if parts[0] == ".github":
        return answers["ci"] == "github"
    if path.startswith("docs/zh/"):
        if answers["language"] != "zh":
            return False
        # A translation comes and goes with the page it translates.
        path = "docs/" + path.removeprefix("docs/zh/")
    if _in(path, RAG_PATHS) or parts[-1] in RAG_NAMES:
        return answers["with_rag"]
    if _in(path, DEMO_PATHS) or parts[-1] in DEMO_NAMES:
        return answers["with_demo"]
    return True


def expected_files(template: Path, answers: dict) -> set[str]:
    """The file set the answers call for: the skeleton's files that `wanted` keeps."""
    package = answers["package_name"]
    files = set()
    for path in skeleton_paths(template):
        generic = path.replace(f"src/{PACKAGE_FOLDER}", "src/PKG")
        if wanted(generic, answers):
            files.add(generic.replace("src/PKG", f"src/{package}"))
    return files


def hygiene_problems(root: Path) -> list[str]:
    """Hand-written text: one final newline, no runs of blank lines, no trailing spaces."""
    problems = []
    for name, content in text_files(root):
        text = content.decode("utf-8")
        if text and not (text.endswith("\n") and not text.endswith("\n\n")):
            problems.append(f"{name}: ragged end of file")
        if "\n\n\n\n" in text:
            problems.append(f"{name}: a run of blank lines")
        if any(line != line.rstrip() for line in text.splitlines()):
            problems.append(f"{name}: trailing space")
    return problems


def leftover_jinja(root: Path) -> list[str]:
    problems = []
    for name, content in text_files(root):
        text = content.decode("utf-8").replace("${{", "")  # GitHub expressions are fine
        problems += [
            f"{m!r} left in {name}" for m in ("{{", "{%", "{#", "cookiecutter.") if m in text
        ]
    return problems


def render_both(template: Path, out: Path, answers: dict) -> tuple[Path, Path]:
    """Copier and Cookiecutter (both in this process's versions) render one combination."""
    out.mkdir(parents=True, exist_ok=True)
    copier_dst = render_copier(template, out / "copier", answers)
    config = out / "cookiecutter-config.yml"
    config.write_text(
        yaml.safe_dump({"cookiecutters_dir": str(out / "cc"), "replay_dir": str(out / "replay")}),
        encoding="utf-8",
    )
    project = cookiecutter(
        str(template / "template"),
        no_input=True,
        extra_context=answers,
        output_dir=str(out / "cookiecutter"),
        config_file=str(config),
    )
    return copier_dst, Path(project)


# The oldest engines the template declares.
OLDEST_COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))[
    "_min_copier_version"
]


def _floor(requirement_name: str) -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in pyproject["dependency-groups"]["dev"]:
        match = re.fullmatch(rf"{requirement_name}>=([\d.]+)", requirement)
        if match:
            return match.group(1)
    raise LookupError(f"no {requirement_name}>=X in pyproject.toml's dev group")


OLDEST_COOKIECUTTER = _floor("cookiecutter")


def isolated_env(home: Path) -> dict:
    """An environment that keeps this venv and the user's engine settings out of a uvx run."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("COPIER_", "COOKIECUTTER_"))
    }
    home.mkdir(parents=True, exist_ok=True)
    config = home / "cookiecutter-config.yml"
    config.write_text(
        yaml.safe_dump(
            {"cookiecutters_dir": str(home / "cookiecutters"), "replay_dir": str(home / "replay")}
        ),
        encoding="utf-8",
    )
    env["COOKIECUTTER_CONFIG"] = str(config)
    env["COPIER_SETTINGS_PATH"] = str(home / "no-copier-settings.yml")  # absent: the defaults
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _cli_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def uvx(spec: str, args: list[str], home: Path) -> None:
    result = subprocess.run(
        ["uvx", "--from", spec, *args],
        cwd=home,
        env=isolated_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"uvx --from {spec} {args} failed:\n{result.stderr[-4000:]}"


def render_oldest_copier(template: Path, dst: Path, answers: dict, home: Path) -> Path:
    data = [arg for k, v in answers.items() for arg in ("--data", f"{k}={_cli_value(v)}")]
    args = ["copier", "copy", "--quiet", "--vcs-ref", "HEAD", "--defaults", *data]
    uvx(f"copier=={OLDEST_COPIER}", [*args, str(template), str(dst)], home)
    return dst


def render_oldest_cookiecutter(template: Path, out: Path, answers: dict, home: Path) -> Path:
    context = [f"{k}={_cli_value(v)}" for k, v in answers.items()]
    args = ["cookiecutter", "--no-input", str(template / "template"), "-o", str(out), *context]
    uvx(f"cookiecutter=={OLDEST_COOKIECUTTER}", args, home)
    (project,) = out.iterdir()
    return project
