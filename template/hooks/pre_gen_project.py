"""Cookiecutter pre-generation hook: the answer checks Copier runs, applied to these answers.

The checks live once, as Jinja macros in hooks/answers.jinja at the template root, called by the
validators in copier.yml. This hook renders those same validators with the answers, prints every
message and stops the generation (Cookiecutter then removes the half-made folder).
"""

import json
import os
import sys
from pathlib import Path

import jinja2
import yaml

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


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


def main() -> int:
    root = template_root()
    questions = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)))
    errors = []
    for name, question in questions.items():
        if name.startswith("_") or not isinstance(question, dict) or "validator" not in question:
            continue
        message = env.from_string(question["validator"]).render(**ANSWERS).strip()
        if message:
            errors.append(f"{name}: {message}")
    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
