"""cruft, for Cookiecutter users who want `update`: create, check and update a project.

cruft runs Cookiecutter on a clone of the template (`--directory template`: the Cookiecutter
folder is one level down) and records the template's commit in `.cruft.json`. The template's
hooks find copier.yml through the location cruft records, so the template must be a local
clone (docs/cookiecutter.md).
"""

from __future__ import annotations

import cruft

from .conftest import commit_all, git, render_copier, snapshot_template
from .rendering import tree

ANSWERS = {"project_name": "Cruft Me"}


def test_cruft_creates_checks_and_updates_a_project(tmp_path):
    template = snapshot_template(tmp_path / "template")
    project = cruft.create(
        str(template),
        output_dir=tmp_path / "out",
        directory="template",
        no_input=True,
        extra_context=ANSWERS,
    )
    made = tree(project)
    assert made.pop(".cruft.json")
    expected = tree(render_copier(template, tmp_path / "copier", ANSWERS))
    expected.pop(".copier-answers.yml")
    assert made == expected  # the same project as Copier's, byte for byte

    git("init", "-q", "-b", "main", cwd=project)
    commit_all(project, "created with cruft")
    assert cruft.check(project)  # up to date

    skeleton = template / "template/{{cookiecutter.project_slug}}"
    (skeleton / ".gitignore").write_text((skeleton / ".gitignore").read_text() + "*.ckpt\n")
    commit_all(template, "v2: ignore checkpoints")
    assert not cruft.check(project)

    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## My notes\n")
    commit_all(project, "my notes")
    assert cruft.update(project, skip_apply_ask=True)
    assert "*.ckpt" in (project / ".gitignore").read_text()
    assert "## My notes" in readme.read_text()
    assert cruft.check(project)
