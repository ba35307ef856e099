"""Cookiecutter post-generation hook: drop what Copier leaves out, so both engines agree.

The paths come from `_exclude` in copier.yml at the template root, rendered with the same answers.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import jinja2
import yaml

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def template_root() -> Path:
    """The template repository's root, where copier.yml lies, one level above Cookiecutter's folder."""
    repo_dir = Path(ANSWERS["_repo_dir"])
    if not repo_dir.is_absolute():
        # A relative template path is relative to where cookiecutter started, not to this hook.
        repo_dir = Path(os.environ.get("PWD", ".")) / repo_dir
    root = repo_dir.resolve().parent
    if not (root / "copier.yml").is_file():
        sys.exit(f"ERROR no copier.yml in {root}: give cookiecutter the template's absolute path.")
    return root


def main() -> int:
    root = template_root()
    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    env = jinja2.Environment()
    project = Path.cwd()
    # Copier writes its answers file itself; this copy is only Copier's template of it.
    (project / ".copier-answers.yml").unlink()
    for entry in config["_exclude"]:
        for line in env.from_string(entry).render(cookiecutter=ANSWERS).splitlines():
            pattern = line.strip().strip("/")
            if not pattern:
                continue
            # As in .gitignore (and Copier): a pattern with a slash is anchored at the project
            # root, one without matches at any depth.
            matches = project.glob(pattern) if "/" in pattern else project.rglob(pattern)
            for path in sorted(matches, reverse=True):
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
