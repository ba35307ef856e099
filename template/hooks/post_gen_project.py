"""Cookiecutter post-generation hook: make the project exactly what Copier renders.

1. Render the text files Cookiecutter copied without rendering: it guesses "binary" from a file's
   first 512 bytes, and a cut through a multi-byte character (Chinese docs) can fool the guess,
   while Copier renders every file that reads as UTF-8.
2. Drop what Copier leaves out: the paths under `_exclude` in copier.yml, rendered with the same
   answers.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import jinja2
import yaml

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
JINJA_MARKERS = ("{" + "{", "{" + "%")  # spelled apart: Cookiecutter renders this hook too


def template_root() -> Path:
    """The template repository's root, where copier.yml lies, one level above Cookiecutter's folder.

    Cookiecutter says where the template folder is (`_repo_dir`). cruft does not; it records
    the template's location (`_template`), which is the repository root when it is a local clone.
    """
    if "_repo_dir" not in ANSWERS:
        root = Path(ANSWERS.get("_template", ""))
        if root.is_absolute() and (root / "copier.yml").is_file():
            return root
        sys.exit(
            "ERROR cruft needs the template as a local clone: git clone it, then "
            "`cruft create PATH/ai-map-template --directory template`."
        )
    repo_dir = Path(ANSWERS["_repo_dir"])
    if not repo_dir.is_absolute():
        # A relative template path is relative to where cookiecutter started, not to this hook.
        repo_dir = Path(os.environ.get("PWD", ".")) / repo_dir
    root = repo_dir.resolve().parent
    if not (root / "copier.yml").is_file():
        sys.exit(f"ERROR no copier.yml in {root}: give cookiecutter the template's absolute path.")
    return root


def render_skipped_text_files(project: Path) -> None:
    from binaryornot.check import is_binary  # what Cookiecutter itself asks

    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    for path in sorted(project.rglob("*")):
        if not path.is_file() or not is_binary(str(path)):
            continue
        try:
            text = path.read_bytes().decode("utf-8")  # bytes: line endings stay as they are
        except UnicodeDecodeError:
            continue  # really binary (an image): both engines copy it as it is
        if any(marker in text for marker in JINJA_MARKERS):
            path.write_bytes(env.from_string(text).render(cookiecutter=ANSWERS).encode("utf-8"))


def excluded(project: Path, pattern: str) -> list[Path]:
    """What one rendered `_exclude` entry matches, deepest first.

    One entry is one pattern (Copier before 9.18 never splits an entry into lines). As in
    .gitignore and Copier: a pattern with a slash (leading or inside) is anchored at the project
    root; one without matches a file or folder of that name at any depth (the track folders).
    """
    pattern = pattern.strip()
    if not pattern:
        return []
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    matches = project.glob(pattern) if anchored else project.rglob(pattern)
    return sorted(matches, reverse=True)


def main() -> int:
    root = template_root()
    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    env = jinja2.Environment()
    project = Path.cwd()
    render_skipped_text_files(project)
    # Copier writes its answers file itself; this copy is only Copier's template of it.
    (project / ".copier-answers.yml").unlink()
    for entry in config["_exclude"]:
        for path in excluded(project, env.from_string(entry).render(cookiecutter=ANSWERS)):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
