"""`copier update` months later: template improvements arrive, the owner's edits stay, and
re-answering a question adds or removes the right files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import copier
import pytest

from .conftest import ROOT, commit_all, git, snapshot_template


@pytest.fixture
def project(tmp_path) -> tuple[Path, Path]:
    """A template snapshot tagged v1 and a project rendered from it, committed like a user would."""
    template = snapshot_template(tmp_path / "template")
    dst = tmp_path / "project"
    copier.run_copy(
        str(template), str(dst), data={"project_name": "Update Me"}, defaults=True, quiet=True
    )
    git("init", "-q", "-b", "main", cwd=dst)
    git("add", "-A", cwd=dst)
    git("commit", "-q", "-m", "rendered from v1", cwd=dst)
    return template, dst


def conflicts(root: Path) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.parts and "<<<<<<<" in p.read_text(errors="ignore")
    ]


def test_update_brings_template_changes_and_keeps_user_edits(project):
    template, dst = project
    readme = dst / "README.md"
    readme.write_text(readme.read_text() + "\n## My notes\n\nWeek 1 went well.\n")
    (dst / "notes.md").write_text("my own file\n")
    commit_all(dst, "my edits")

    skeleton_gitignore = template / "template/{{cookiecutter.project_slug}}/.gitignore"
    skeleton_gitignore.write_text(skeleton_gitignore.read_text() + "\n# Added in v2\n*.ckpt\n")
    commit_all(template, "v2: ignore checkpoints")
    git("tag", "v2", cwd=template)

    copier.run_update(str(dst), defaults=True, overwrite=True, quiet=True)

    assert "*.ckpt" in (dst / ".gitignore").read_text()
    assert "Week 1 went well." in readme.read_text()
    assert (dst / "notes.md").read_text() == "my own file\n"
    assert "_commit: v2" in (dst / ".copier-answers.yml").read_text()
    assert not conflicts(dst)


def test_reanswering_a_question_adds_and_removes_files(project):
    _, dst = project
    assert (dst / ".github/workflows/ci.yml").is_file()

    copier.run_update(str(dst), data={"ci": "none"}, defaults=True, overwrite=True, quiet=True)
    assert not (dst / ".github").exists()
    assert "ci: none" in (dst / ".copier-answers.yml").read_text()
    commit_all(dst, "drop CI")

    copier.run_update(str(dst), data={"ci": "github"}, defaults=True, overwrite=True, quiet=True)
    assert (dst / ".github/workflows/ci.yml").is_file()
    assert not conflicts(dst)


def test_switching_track_swaps_the_track_folders(tmp_path):
    """Re-answering `track` removes the old track's folders (at any depth) and adds the new one's."""
    skeleton = "template/{{cookiecutter.project_slug}}"
    probes = {
        f"{skeleton}/configs/applied/probe.txt": "applied\n",
        f"{skeleton}/src/{{{{cookiecutter.package_name}}}}/theory/probe.txt": "theory\n",
        f"{skeleton}/labs/theory/probe.txt": "theory\n",
    }
    template = snapshot_template(tmp_path / "template", probes)
    dst = tmp_path / "project"
    copier.run_copy(
        str(template), str(dst), data={"project_name": "Switch Me"}, defaults=True, quiet=True
    )
    (dst / "labs/my-notes.md").write_text("my own file\n")
    commit_all_new(dst)
    assert (dst / "configs/applied/probe.txt").is_file()
    assert not (dst / "labs/theory").exists()

    copier.run_update(str(dst), data={"track": "theory"}, defaults=True, overwrite=True, quiet=True)
    assert not (dst / "configs/applied").exists()
    assert (dst / "src/switch_me/theory/probe.txt").is_file()
    assert (dst / "labs/theory/probe.txt").is_file()
    assert "track: theory" in (dst / ".copier-answers.yml").read_text()
    assert (dst / "labs/my-notes.md").read_text() == "my own file\n"
    assert not conflicts(dst)


def commit_all_new(path: Path) -> None:
    git("init", "-q", "-b", "main", cwd=path)
    commit_all(path, "rendered")


def released_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]


def test_the_changelog_and_pyproject_name_the_same_release():
    """One version, in pyproject.toml; the changelog's newest release heading agrees with it."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[(.+?)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.MULTILINE)
    assert headings[0] == ("Unreleased", "")
    releases = headings[1:]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) and d for v, d in releases), releases
    assert releases[0][0] == released_version()
    ordered = [tuple(map(int, v.split("."))) for v, _ in releases]
    assert ordered == sorted(ordered, reverse=True)  # newest first


def test_a_project_rendered_from_a_release_tag_records_it(tmp_path):
    template = snapshot_template(tmp_path / "template")
    tag = f"v{released_version()}"
    git("tag", tag, cwd=template)
    dst = tmp_path / "project"
    copier.run_copy(
        str(template),
        str(dst),
        data={"project_name": "Pinned"},
        vcs_ref=tag,
        defaults=True,
        quiet=True,
    )
    assert f"_commit: {tag}" in (dst / ".copier-answers.yml").read_text()


def test_edits_to_a_config_and_a_module_survive_and_a_clash_is_marked(project):
    """The owner edits a config, a module and the README; the template changes other lines of
    the config and the same line of the module. The first merges; the clash gets markers, and
    Copier still exits 0, so `git grep '<<<<<<<'` is the check after every update."""
    template, dst = project
    config, module = dst / "configs/tiny.yaml", dst / "src/update_me/errors.py"
    config.write_text(config.read_text().replace("max_steps:", "max_steps: 500  # mine\n  _was:"))
    config.write_text(config.read_text().replace("  _was:", "  # was:"))
    first = module.read_text().splitlines()[0]
    module.write_text(module.read_text().replace(first, '"""My own docstring."""', 1))
    commit_all(dst, "my edits")

    skeleton = template / "template/{{cookiecutter.project_slug}}"
    tiny = skeleton / "configs/tiny.yaml"
    tiny.write_text(tiny.read_text() + "# v2: a new closing comment\n")
    errors = skeleton / "src/{{cookiecutter.package_name}}/errors.py"
    errors.write_text(errors.read_text().replace(first, '"""The v2 docstring."""', 1))
    commit_all(template, "v2")
    git("tag", "v2", cwd=template)

    copier.run_update(str(dst), defaults=True, overwrite=True, quiet=True)
    text = config.read_text()
    assert "max_steps: 500  # mine" in text and "# v2: a new closing comment" in text
    assert conflicts(dst) == ["src/update_me/errors.py"]
    clash = module.read_text()
    assert "My own docstring" in clash and "The v2 docstring" in clash
    assert git("grep", "-n", "<<<<<<<", cwd=dst).startswith("src/update_me/errors.py:")


@pytest.mark.parametrize("component", ["with_rag", "with_demo"])
def test_turning_a_component_off_and_on_moves_only_its_files(project, component):
    _, dst = project
    (dst / "notes.md").write_text("my own file\n")
    commit_all(dst, "my notes")
    owned = {"with_rag": "src/update_me/rag/index.py", "with_demo": "src/update_me/demo.py"}
    before = set(files(dst))

    copier.run_update(str(dst), data={component: False}, defaults=True, overwrite=True, quiet=True)
    off = set(files(dst))
    assert owned[component] in before - off
    assert "notes.md" in off and "pyproject.toml" in off
    commit_all(dst, f"{component} off")

    copier.run_update(str(dst), data={component: True}, defaults=True, overwrite=True, quiet=True)
    assert set(files(dst)) == before
    assert not conflicts(dst)


def files(root: Path) -> list[str]:
    return [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.parts
    ]
